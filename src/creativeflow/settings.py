"""One typed settings object for the whole platform, read from the environment and `.env`."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# OWASP's argon2id parameters (identity/passwords.py hashes with them by default).
OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class ConfigurationError(RuntimeError):
    """The settings cannot run the platform; the message names what to fix."""


class Settings(BaseSettings):
    # Empty values (`SECRET_KEY=` copied from .env.example) count as unset, never as "".
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    environment: Environment = Environment.DEVELOPMENT
    service_name: str = "creativeflow"
    log_level: str = "INFO"
    data_dir: Path = Path("./var")

    database_url: str | None = None
    database_pool_size: int = 20
    database_max_overflow: int = 20
    database_echo: bool = False

    redis_url: str | None = None

    secret_key: SecretStr | None = None
    access_token_expire_minutes: int = 30
    refresh_token_expire_days: int = 7
    token_issuer: str = "creativeflow"
    # How long a resolved credential is trusted without re-reading the database. Changes made
    # in this process apply at once; other workers see them within this time (revocations at
    # once when REDIS_URL is set). 0 turns the cache off.
    principal_cache_seconds: float = Field(default=5.0, ge=0, le=60)

    # External identity provider (creatorvault.md): RS256 tokens verified with a PEM key or a JWKS.
    jwt_public_key: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # -- rate limits (graphic-novel-api.md "Rate Limiting") -------------------------------------
    # Every request of a user (of a client address when anonymous) counts in the default
    # window; generation requests count in the generation window as well. `limits` notation:
    # "1000/hour", "10 per minute", several as "10/minute;200/day". Shared by every worker
    # through Redis when REDIS_URL is set, per process otherwise. Probes and /metrics are free.
    rate_limit_enabled: bool = True
    rate_limit_default: str = "1000/hour"
    rate_limit_generation: str = "10/minute"
    # argon2id's cost for new password hashes. OWASP's (19 MiB, 2 passes: the same numbers as
    # identity/passwords.py) by default; lower only for test suites, where every fixture user
    # pays it (production refuses less).
    password_hash_memory_kib: int = Field(default=OWASP_MEMORY_KIB, ge=8, le=1024 * 1024)
    password_hash_time_cost: int = Field(default=OWASP_TIME_COST, ge=1, le=20)

    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    login_failure_window_seconds: int = 900

    # -- jobs ----------------------------------------------------------------------------------
    # Unset: jobs run in the API process (JOB_CONCURRENCY at a time). Set (redis://... or
    # amqp://...): `creativeflow worker` processes run them and the API process runs none.
    celery_broker_url: str | None = None
    job_concurrency: int = Field(default=4, ge=1, le=256)
    # Threads for CPU-heavy job kinds (image rendering, PDFs) so the event loop keeps serving.
    job_cpu_threads: int = Field(default=2, ge=1, le=64)
    # Processes that render the local provider's images. Rendering in threads holds the GIL
    # long enough to delay the event loop (10 ms timer, four 1024x1024 renders: p99 25.5 ms
    # late; in processes 6.6 ms, bench/jobs.py). 0 renders in threads (small machines, tests).
    image_render_processes: int = Field(default=2, ge=0, le=64)
    job_retention_days: int = Field(default=30, ge=1)
    job_default_max_attempts: int = Field(default=3, ge=1, le=20)
    # A running job's holder writes a heartbeat this often; one silent for the timeout is lost.
    job_heartbeat_seconds: float = Field(default=5.0, gt=0)
    job_heartbeat_timeout_seconds: float = Field(default=30.0, gt=0)
    # How often the sweeper looks for lost workers, lost wake-ups and due retries.
    job_sweep_seconds: float = Field(default=5.0, gt=0)
    # A queued job not claimed this long after its wake-up gets another one (Celery mode).
    job_wakeup_resend_seconds: float = Field(default=60.0, gt=0)
    # Extra modules imported at start-up that register job kinds (plug-ins, tests).
    job_modules: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # -- AI providers --------------------------------------------------------------------------
    # One provider, or a fallback chain tried in order (TEXT_PROVIDERS=openai,local).
    text_provider: str = "local"
    text_providers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    image_provider: str = "local"
    image_providers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # artnex.md: interactive AI calls finish within 5 s; calls made by jobs may take longer.
    provider_interactive_timeout_seconds: float = Field(default=5.0, gt=0)
    provider_job_timeout_seconds: float = Field(default=120.0, gt=0)
    # Retries of one call on 429, 5xx and connection errors, with exponential backoff.
    provider_max_retries: int = Field(default=2, ge=0, le=10)
    provider_retry_backoff_seconds: float = Field(default=0.5, ge=0)

    # OpenAI-compatible API: OpenAI, Ollama (http://localhost:11434/v1), vLLM, LM Studio, LocalAI.
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: SecretStr | None = None
    openai_text_model: str = "gpt-4o-mini"
    openai_image_model: str = "gpt-image-1"
    ideogram_base_url: str = "https://api.ideogram.ai"
    ideogram_api_key: SecretStr | None = None
    ideogram_model: str = "V_2"
    # ComfyUI server; its workflow is the shipped template unless COMFYUI_WORKFLOW_FILE is set.
    # Image embeddings for character drift (providers/embeddings.py): a multimodal embeddings
    # API in Jina's form; unset, drift is measured from image features alone.
    image_embedding_url: str | None = None
    image_embedding_model: str = "jina-clip-v2"
    image_embedding_api_key: SecretStr | None = None
    comfyui_url: str | None = None
    comfyui_workflow_file: Path | None = None
    comfyui_checkpoint: str = "sd_xl_base_1.0.safetensors"
    # AUTOMATIC1111 / Forge web UI started with --api.
    automatic1111_url: str | None = None
    automatic1111_steps: int = Field(default=25, ge=1, le=150)

    # -- outbox and webhooks -------------------------------------------------------------------
    # Every process dispatches the events it commits at once; this often it also sweeps up
    # events another process committed but never dispatched (it crashed in between).
    outbox_sweep_seconds: float = Field(default=5.0, gt=0)
    # Dispatched outbox rows are kept this long (for inspection), then pruned daily.
    outbox_retention_hours: float = Field(default=72.0, gt=0)
    # Webhook targets must resolve to public addresses only; true allows private, loopback
    # and link-local ones too (a webhook receiver on the same host or network).
    webhook_allow_private_targets: bool = False
    # One delivery attempt's connect, read and write time-outs.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_max_endpoints_per_user: int = Field(default=20, ge=1, le=1000)
    # Finished deliveries (delivered or given up) are kept this long, then pruned daily.
    webhook_delivery_retention_days: int = Field(default=30, ge=1)
    # Keys for secrets stored encrypted (webhook secrets, data-source credentials): URL-safe
    # base64 of 32 random bytes, comma-separated, the first encrypts. Unset: a key derived
    # from SECRET_KEY (always kept as the last key, so values it encrypted still open).
    field_encryption_keys: SecretStr | None = None

    # -- data sources ----------------------------------------------------------------------------
    # Files a `local_file` or `sqlite` source may read lie inside this directory (default:
    # DATA_DIR/files); paths outside it are refused, symlinks resolved.
    datasource_file_root: Path | None = None
    # Connection tests, discovery and preview reach public addresses only, unless this is true
    # (unset: true in development, where databases live on localhost, false otherwise).
    datasource_allow_private_hosts: bool | None = None
    # One connection test, discovery or preview gives up after this long (TIMEOUT).
    datasource_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Checks kept per source; older ones are dropped as new ones arrive.
    datasource_check_history: int = Field(default=100, ge=1, le=10_000)
    # The shortest check interval a source may ask for.
    datasource_min_check_interval_seconds: int = Field(default=60, ge=1)

    # -- story studio --------------------------------------------------------------------------
    # A PDF or CBZ export of a project with at most this many panels is answered in the
    # request; a larger one runs as a job (`stories.export`) whose file is downloaded after.
    story_export_inline_panels: int = Field(default=60, ge=0, le=2000)
    # The long side of generated story images, in pixels; the short side follows the style
    # guide's aspect ratio (rounded to a multiple of 64, as diffusion models want).
    story_image_long_side: int = Field(default=1024, ge=256, le=4096)
    # Drift (0..1, image features against a character's primary design) above which a panel
    # is flagged: by the consistency check, and on a locked character's new images. The
    # default is `stories.consistency.features.DEFAULT_DRIFT_THRESHOLD`, measured there.
    story_drift_threshold: float = Field(default=0.1, ge=0.0, le=1.0)
    # A consistency check comparing at most this many panel images is answered in the
    # request; a larger one runs as a job (`stories.consistency_check`).
    story_consistency_inline_panels: int = Field(default=40, ge=0, le=5000)
    # With image embeddings configured: the cosine distance from a character's closest primary
    # design above which a panel is flagged too.
    story_embedding_threshold: float = Field(default=0.25, ge=0.0, le=1.0)

    # -- realtime (WebSockets) -----------------------------------------------------------------
    # Each channel keeps its last REALTIME_REPLAY_EVENTS messages, none older than
    # REALTIME_REPLAY_SECONDS, for clients reconnecting with `since` (in Redis when REDIS_URL
    # is set, else in process). 0 events: no replay, a reconnecting client reloads.
    realtime_replay_events: int = Field(default=1000, ge=0, le=100_000)
    realtime_replay_seconds: float = Field(default=600.0, gt=0)
    # Messages waiting for one socket; a client that falls further behind is disconnected
    # (close code 4413) so it cannot hold up anyone else.
    realtime_queue_size: int = Field(default=256, ge=1, le=100_000)
    # The server sends {"type": "ping"} this often, keeping idle connections open through
    # proxies.
    realtime_ping_seconds: float = Field(default=20.0, gt=0)
    # Without a `token` query parameter, the first message must authenticate within this time.
    realtime_auth_timeout_seconds: float = Field(default=5.0, gt=0)

    # -- object storage ------------------------------------------------------------------------
    # Unset: files live under DATA_DIR/objects. Set: an S3-compatible bucket (needs the s3 extra).
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = ""

    # -- images (assets) -----------------------------------------------------------------------
    # The largest file POST /images/upload accepts; bigger ones are refused while streaming.
    image_upload_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024**3)
    # Decompression-bomb cap: images with more pixels are refused before they are decoded.
    # The local provider's variations accept sources up to 40 megapixels too.
    image_max_pixels: int = Field(default=40_000_000, ge=64 * 64, le=170_000_000)
    # Uploads decoded and re-encoded at the same time (each holds its pixels, up to
    # IMAGE_MAX_PIXELS x 4 bytes); more wait their turn.
    image_decode_concurrency: int = Field(default=4, ge=1, le=64)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Comma-separated (or a JSON list). Browsers send `Origin` without a trailing slash,
        so `https://app.example.com/` is stored as `https://app.example.com`."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            origins = (str(origin).strip().rstrip("/") for origin in value)
            return [origin for origin in origins if origin]
        return value

    @field_validator("job_modules", "text_providers", "image_providers", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            return [str(name).strip() for name in value if str(name).strip()]
        return value

    @field_validator("rate_limit_default", "rate_limit_generation")
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        items = parse_many(value)  # ValueError names the string it could not read
        if any(item.amount < 1 for item in items):
            raise ValueError(f"a rate limit allows at least one request: '{value}'")
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _lower_environment(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _production_needs_explicit_secrets(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            missing = [
                name
                for name, value in (
                    ("SECRET_KEY", self.secret_key),
                    ("DATABASE_URL", self.database_url),
                    ("ALLOWED_ORIGINS", self.allowed_origins),
                )
                if not value
            ]
            if missing:
                raise ConfigurationError(
                    "ENVIRONMENT=production requires " + ", ".join(missing) + " to be set"
                )
            assert self.secret_key is not None
            if len(self.secret_key.get_secret_value()) < 32:
                raise ConfigurationError("SECRET_KEY must be at least 32 characters")
            if (
                self.password_hash_memory_kib < OWASP_MEMORY_KIB
                or self.password_hash_time_cost < OWASP_TIME_COST
            ):
                raise ConfigurationError(
                    "PASSWORD_HASH_MEMORY_KIB and PASSWORD_HASH_TIME_COST may not be below "
                    f"OWASP's {OWASP_MEMORY_KIB} KiB and {OWASP_TIME_COST} in production"
                )
        if "*" in self.allowed_origins:
            # Credentialed CORS for every site would let any page act as the signed-in user.
            raise ConfigurationError("ALLOWED_ORIGINS must list origins; '*' is not accepted")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def text_provider_chain(self) -> list[str]:
        return self.text_providers or [self.text_provider]

    @property
    def image_provider_chain(self) -> list[str]:
        return self.image_providers or [self.image_provider]

    @property
    def external_tokens_enabled(self) -> bool:
        return bool(self.jwt_public_key or self.jwt_jwks_url)

    @property
    def datasource_private_hosts_allowed(self) -> bool:
        if self.datasource_allow_private_hosts is not None:
            return self.datasource_allow_private_hosts
        return self.environment is Environment.DEVELOPMENT

    def resolved_datasource_file_root(self) -> Path:
        return (self.datasource_file_root or self.data_dir / "files").resolve()

    def resolved_database_url(self) -> str:
        """DATABASE_URL, or a SQLite file in the data directory when none is set."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'creativeflow.db').resolve()}"

    def ensure_data_dir(self) -> Path:
        """Create the data directory on first run, private to this user: it holds the database
        (password and key hashes) and the generated signing key. An existing one is kept as
        it is."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.data_dir

    def signing_key(self) -> str:
        """SECRET_KEY, or in development a random key generated once and kept in the data dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.is_production:  # unreachable after validation; kept as a guard
            raise ConfigurationError("SECRET_KEY is required in production")
        key_file = self.ensure_data_dir() / "secret_key"
        if not key_file.exists():
            _create_key_file(key_file)
        key = key_file.read_text().strip()
        if len(key) < 32:
            raise ConfigurationError(
                f"{key_file} holds no usable key: set SECRET_KEY, or delete the file to have a "
                "new key generated (tokens signed with the old one stop working)"
            )
        return key


def _create_key_file(path: Path) -> None:
    """Write a new random key that only this user can read, atomically: the file is complete
    and 0600 from the moment it appears, and when several workers start at once exactly one
    key wins and every worker uses it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another worker won: use its key
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
