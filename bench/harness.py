"""Processes the benchmark drives: server processes (pinned to a core), wrk runs, py-spy."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
VENV_BIN = REPO_DIR / ".venv" / "bin"
LUA_SCRIPT = BENCH_DIR / "wrk" / "requests.lua"
HOST = "127.0.0.1"  # every byte of benchmark traffic stays on loopback


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *argv] if cpus else argv


class ServerFailed(RuntimeError):
    pass


@dataclass
class Server:
    """One server process: started pinned, output to a log file, stopped in `stop()`."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    port: int
    cpus: str | None
    health_path: str = "/health"
    proc: subprocess.Popen[bytes] | None = None
    _log: Any = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready_timeout: float = 90.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        # Its own session: a Ctrl-C in the terminal reaches only bench/run.py, whose `finally`
        # stops the servers in order.
        self.proc = subprocess.Popen(
            pinned(self.argv, self.cpus),
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + ready_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ServerFailed(
                        f"{self.name} exited with {self.proc.returncode} before it was ready; "
                        f"log {self.log_path}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + self.health_path).status_code == 200:
                        return
                time.sleep(0.1)
        self.stop()
        raise ServerFailed(
            f"{self.name} did not answer {self.health_path} in {ready_timeout}s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- wrk ----------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    connections: int
    threads: int
    duration_s: float
    requests: int
    rps: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    stdout: str = field(repr=False, default="")
    cpu: dict[str, float] = field(default_factory=dict)
    waited_for_quiet_s: float = 0.0
    attempts: int = 1
    postgres_per_request: dict[str, float] = field(default_factory=dict)

    @property
    def non_2xx(self) -> int:
        return self.errors.get("status", 0)

    @property
    def socket_errors(self) -> int:
        return sum(self.errors.get(k, 0) for k in ("connect", "read", "write", "timeout"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "threads": self.threads,
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "rps": round(self.rps, 1),
            "latency_ms": self.latency_ms,
            "errors": self.errors,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "cpu": self.cpu,
            "waited_for_quiet_s": self.waited_for_quiet_s,
            "attempts": self.attempts,
            "postgres_per_request": self.postgres_per_request,
        }


class WrkFailed(RuntimeError):
    pass


def write_requests_file(path: Path, requests: Sequence[tuple[str, str, str | None]]) -> Path:
    """One `METHOD<TAB>PATH<TAB>BODY` line per request, for bench/wrk/requests.lua."""
    with path.open("w") as out:
        for method, target, body in requests:
            if "\t" in target or "\n" in target or (body and ("\t" in body or "\n" in body)):
                raise ValueError("request paths and bodies must not contain tabs or newlines")
            out.write(f"{method}\t{target}\t{body or ''}\n")
    return path


def run_wrk(
    base_url: str,
    requests_file: Path,
    *,
    connections: int,
    duration: float,
    threads: int = 2,
    token: str | None = None,
    cpus: str | None = None,
    timeout: str = "2s",
) -> WrkResult:
    threads = min(threads, connections)
    argv = pinned(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration:g}s",
            "--latency",
            "--timeout",
            timeout,
            "-s",
            str(LUA_SCRIPT),
            base_url,
            "--",
            str(requests_file),
        ],
        cpus,
    )
    env = {**os.environ, "BENCH_THREADS": str(threads), "BENCH_TOKEN": token or ""}
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=duration + 60, check=False
    )
    match = re.search(r"^WRK_JSON (\{.*\})$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise WrkFailed(f"wrk failed ({proc.returncode}): {proc.stderr.strip()}\n{proc.stdout}")
    data = json.loads(match.group(1))
    duration_s = data["duration_us"] / 1e6
    lat = data["latency_us"]
    return WrkResult(
        connections=connections,
        threads=threads,
        duration_s=duration_s,
        requests=data["requests"],
        rps=data["requests"] / duration_s if duration_s else 0.0,
        latency_ms={k: round(v / 1000, 2) for k, v in lat.items()},
        errors=data["errors"],
        stdout=proc.stdout,
    )


# -- CPU accounting: who used the two cores while wrk ran ---------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    """All CPUs' non-idle time since boot (user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    return sum(values) - values[3] - values[4]  # minus idle and iowait


def _process_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def _process_user_sys(pid: int) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    return int(fields[11]), int(fields[12])


def _context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of all the process's live threads."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as status:
                for line in status:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def _postgres_ticks() -> int:
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm") as comm:
                if comm.read().strip() != "postgres":
                    continue
        except OSError:
            continue
        total += _process_ticks(int(entry.name))
    return total


@dataclass
class CpuMeter:
    """CPU used during one wrk run, in cores: the server, wrk, the PostgreSQL backends serving
    this run's database, and everything else ("foreign": other work on the machine, including
    other databases on the same PostgreSQL, i.e. noise)."""

    server_pid: int
    # The PostgreSQL backend pids of the benchmark's database (None: no database of ours).
    postgres_pids: Callable[[], set[int]] | None = None
    _start: tuple[float, int, int, int, int, float] | None = None
    _server_start: tuple[int, int, int] = (0, 0, 0)
    _pids: set[int] = field(default_factory=set)

    def _ours(self) -> int:
        return sum(_process_ticks(pid) for pid in self._pids)

    def start(self) -> None:
        import resource

        self._pids = self.postgres_pids() if self.postgres_pids else set()
        self._server_start = (
            *_process_user_sys(self.server_pid),
            _context_switches(self.server_pid),
        )
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._start = (
            time.monotonic(),
            _busy_ticks(),
            _process_ticks(self.server_pid),
            self._ours(),
            _postgres_ticks(),
            children.ru_utime + children.ru_stime,
        )

    def stop(self) -> dict[str, float]:
        import resource

        assert self._start is not None
        t0, busy0, server0, ours0, pg0, child0 = self._start
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds = max(time.monotonic() - t0, 1e-6)

        def cores(ticks: float) -> float:
            return max(ticks / CLOCK_TICKS / seconds, 0.0)  # an exited process takes its ticks

        busy = cores(_busy_ticks() - busy0)
        server = cores(_process_ticks(self.server_pid) - server0)
        postgres = cores(self._ours() - ours0)
        postgres_all = cores(_postgres_ticks() - pg0)
        wrk = max((children.ru_utime + children.ru_stime - child0) / seconds, 0.0)
        user1, sys1 = _process_user_sys(self.server_pid)
        user0, sys0, switches0 = self._server_start
        return {
            "server_user_cores": round(cores(user1 - user0), 2),
            "server_sys_cores": round(cores(sys1 - sys0), 2),
            "server_context_switches": _context_switches(self.server_pid) - switches0,
            "total_cores": round(busy, 2),
            "server_cores": round(server, 2),
            "wrk_cores": round(wrk, 2),
            "postgres_cores": round(postgres, 2),
            "postgres_other_cores": round(max(postgres_all - postgres, 0.0), 2),
            "foreign_cores": round(max(busy - server - wrk - postgres, 0.0), 2),
        }


def machine_busy_cores(window: float = 1.0) -> float:
    busy0 = _busy_ticks()
    time.sleep(window)
    return (_busy_ticks() - busy0) / CLOCK_TICKS / window


def wait_for_quiet(threshold: float, max_wait: float) -> float:
    """Wait (bounded) until the machine is nearly idle; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < max_wait:
        if machine_busy_cores() <= threshold:
            break
    return round(time.monotonic() - started, 1)


# -- py-spy -------------------------------------------------------------------------------------


def py_spy_available() -> Path | None:
    candidate = VENV_BIN / "py-spy"
    return candidate if candidate.exists() else None


def start_py_spy(
    pid: int, output: Path, duration: float, rate: int = 250
) -> subprocess.Popen[bytes]:
    exe = py_spy_available()
    if exe is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    # --nonblocking: sample without pausing the server (pausing a process with a dozen threads
    # cuts its throughput by 100x). The event loop's thread waiting in epoll is recognised as
    # idle and not sampled; worker threads blocked in C (aiosqlite waiting on its queue) are not
    # recognised in this mode, so the analysis reads the event loop's thread ("MainThread").
    # (--gil would be the other way to drop idle threads, but it finds almost no samples in a
    # single-threaded server.)
    return subprocess.Popen(
        [
            str(exe),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(duration)),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(output),
            "--threads",
            "--full-filenames",
            "--nonblocking",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _split_frame(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if not match:
        return frame, ""
    return match.group("func"), match.group("file")


def _package(path: str) -> str:
    """Where a frame's code lives, coarse enough to point at a cause."""
    if "site-packages/" in path:
        rest = path.split("site-packages/", 1)[1]
        top = rest.split("/", 1)[0].removesuffix(".py")
        if top == "sqlalchemy":
            parts = rest.split("/")
            return "sqlalchemy." + parts[1].removesuffix(".py") if len(parts) > 2 else top
        return top
    if "/creativeflow/" in path:
        rest = path.split("/creativeflow/", 1)[1]
        return "creativeflow." + rest.split("/", 1)[0].removesuffix(".py")
    if "/bench/" in path:
        return "bench"
    if path.startswith("<"):
        return path
    name = path.rsplit("/", 1)[-1].removesuffix(".py")
    parent = path.rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
    if parent and parent not in {"lib", "python3.11"} and not parent.startswith("python3"):
        return f"stdlib:{parent}"
    return f"stdlib:{name}"


def _short(path: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


MAIN_THREAD = "MainThread"
_SCAFFOLDING = (
    "(typer/",
    "(click/",
    "(uvicorn/",
    "(asyncio/runners.py",
    "Middleware.__call__",
    "(starlette/_exception_handler.py",
    "(fastapi/_body_limit.py",
    "(fastapi/telemetry/",
    "(starlette/middleware/",
    "Starlette.__call__",
    "FastAPI.__call__",
)


def analyse_py_spy(raw_file: Path, *, rate: int, duration: float, top: int = 15) -> dict[str, Any]:
    """Self and inclusive time per function and package on the event loop's thread, from
    py-spy's collapsed stacks; other threads are summarised by their hottest leaf frames."""
    threads: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    incl_pkg: Counter[str] = Counter()
    other_leaf: Counter[str] = Counter()
    main = 0
    for line in raw_file.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = "?"
        if frames and frames[0].startswith("thread ("):
            thread = _thread_name(frames.pop(0))
        if not frames:
            continue
        threads[thread] += count
        parsed = [_split_frame(f) for f in frames]
        leaf_func, leaf_file = parsed[-1]
        leaf = f"{leaf_func} ({_short(leaf_file)})"
        if thread != MAIN_THREAD:
            other_leaf[f"{thread}: {leaf}"] += count
            continue
        main += count
        self_fn[leaf] += count
        self_pkg[_package(leaf_file)] += count
        seen_fn: set[str] = set()
        seen_pkg: set[str] = set()
        for func, path in parsed:
            key = f"{func} ({_short(path)})"
            if key not in seen_fn:
                seen_fn.add(key)
                incl_fn[key] += count
            pkg = _package(path)
            if pkg not in seen_pkg:
                seen_pkg.add(pkg)
                incl_pkg[pkg] += count

    def pct(counter: Counter[str], n: int | None, base: int) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": c, "percent": round(100 * c / base, 1) if base else 0.0}
            for name, c in counter.most_common(n)
        ]

    def scaffolding(name: str) -> bool:
        # The process's and the event loop's frames and the middleware chain are on most
        # stacks and explain nothing; leaving them out lets the frames that do show. (py-spy
        # roots SQLAlchemy's greenlet stacks at `Session.execute` and some coroutine stacks
        # mid-chain, so no frame is on every stack: a share threshold alone does not work.)
        return (
            incl_fn[name] >= 0.6 * main
            or name.startswith(("<module>", "main (creativeflow/cli.py", "serve (creativeflow"))
            or any(part in name for part in _SCAFFOLDING)
        )

    expected = rate * duration
    all_samples = sum(threads.values())
    return {
        "samples": all_samples,
        "main_thread_samples": main,
        # The share of wall time in which the event loop's thread was running (not waiting in
        # epoll). Near 100%: the worker is bound by its Python work (one core, one GIL).
        "main_thread_busy_percent": round(100 * main / expected, 1) if expected else None,
        "threads": pct(threads, 10, all_samples),
        "other_threads_top": pct(other_leaf, 5, all_samples),
        "self_by_package": pct(self_pkg, top, main),
        "inclusive_by_package": pct(incl_pkg, top + 10, main),
        "self_by_function": pct(self_fn, top + 5, main),
        "inclusive_by_function": [
            row for row in pct(incl_fn, None, main) if not scaffolding(row["name"])
        ][: top + 20],
        "inclusive_creativeflow": [
            row
            for row in pct(incl_fn, None, main)
            if "creativeflow/" in row["name"] and "cli.py" not in row["name"]
        ][:top],
    }


def _thread_name(head: str) -> str:
    # "thread (1234): MainThread"; numbered worker threads are folded into one name.
    name = head.split(":", 1)[1].strip() if ":" in head else head
    return re.sub(r"-\d+", "-N", name)
