"""Receiving an upload: the multipart body parsed as it streams in, never read whole first.

The file part goes to a private temporary file under DATA_DIR while it is hashed and counted;
the small text fields are kept in memory. Refusals come as early as the bytes allow: a declared
Content-Length over the limit before anything is read, a file whose first bytes are no JPEG,
PNG or WebP as soon as they arrive, and a file over the limit at the chunk that crosses it. The
parser is python-multipart's streaming `MultipartParser` (the one Starlette builds its form
parser on), fed chunk by chunk; disk writes and hashing run in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from creativeflow.assets.errors import (
    MalformedUpload,
    MultipartRequired,
    UnsupportedImage,
    UploadTooLarge,
)
from creativeflow.assets.imaging import ACCEPTED, MAGIC_LENGTH, sniff_format
from creativeflow.shared.core.exceptions import ValidationException

FILE_FIELD = "file"
# Room in the body for everything but the file: boundaries, part headers, the text fields.
FORM_ALLOWANCE_BYTES = 64 * 1024
MAX_FIELD_BYTES = 4096
MAX_PARTS = 32
_NAME = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_file_bytes: int

    @property
    def max_body_bytes(self) -> int:
        return self.max_file_bytes + FORM_ALLOWANCE_BYTES


@dataclass
class ReceivedUpload:
    """The file part on disk (delete it with `discard`), and the text fields by name."""

    path: Path
    size: int
    sha256: str
    image_format: str
    filename: str | None
    fields: dict[str, list[str]]

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def _too_large(limits: UploadLimits) -> UploadTooLarge:
    return UploadTooLarge(
        f"The file is larger than {limits.max_file_bytes:,} bytes",
        data={"max_bytes": limits.max_file_bytes},
    )


def check_declared_length(content_length: str | None, limits: UploadLimits) -> None:
    """Refuse at once a body whose declared length cannot fit, before reading any of it."""
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise MalformedUpload("Content-Length is not a number") from None
    if declared > limits.max_body_bytes:
        raise _too_large(limits)


def boundary_of(content_type: str | None) -> bytes:
    media_type, options = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        raise MultipartRequired(
            "Send the image as multipart/form-data, in a part named `file`",
            data={"content_type": (content_type or "")[:100]},
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise MalformedUpload("the multipart Content-Type has no boundary")
    return boundary


def _clean_filename(raw: bytes | None) -> str | None:
    """The client's name for the file, for display only: never a storage name."""
    if not raw:
        return None
    name = unicodedata.normalize("NFC", raw.decode("utf-8", "replace"))
    name = _NAME.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:255] or None


@dataclass
class _Part:
    name: str | None = None
    filename: bytes | None = None
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    data: bytearray = field(default_factory=bytearray)


class _Receiver:
    """python-multipart callbacks: parts are told apart by their Content-Disposition; the file
    part's bytes are handed out per chunk (`take_file_chunk`), fields collected whole."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.part = _Part()
        self.parts = 0
        self.in_file = False
        self.file_seen = False
        self.file_chunk: list[bytes] = []
        self.filename: bytes | None = None
        self.fields: dict[str, list[str]] = {}
        self.finished = False

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise MalformedUpload(f"at most {MAX_PARTS} parts are accepted")
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.part.header_field.strip().lower() == b"content-disposition":
            _, options = parse_options_header(bytes(self.part.header_value))
            name = options.get(b"name")
            self.part.name = name.decode("utf-8", "replace") if name is not None else None
            self.part.filename = options.get(b"filename")
        self.part.header_field.clear()
        self.part.header_value.clear()

    def on_headers_finished(self) -> None:
        if self.part.name is None:
            raise MalformedUpload("a part has no Content-Disposition name")
        if self.part.filename is not None and self.part.name != FILE_FIELD:
            raise ValidationException.for_field(
                FILE_FIELD, f"send the image in the part named `file`, not {self.part.name!r}"
            )
        if self.part.name == FILE_FIELD:
            if self.file_seen:
                raise ValidationException.for_field(FILE_FIELD, "send one file per upload")
            self.file_seen = self.in_file = True
            self.filename = self.part.filename

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.file_chunk.append(data[start:end])
            return
        self.part.data += data[start:end]
        if len(self.part.data) > MAX_FIELD_BYTES:
            raise ValidationException.for_field(
                self.part.name or "body", f"at most {MAX_FIELD_BYTES} bytes"
            )

    def on_part_end(self) -> None:
        if self.in_file:
            self.in_file = False
            return
        assert self.part.name is not None  # checked when its headers finished
        try:
            value = self.part.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationException.for_field(self.part.name, "must be UTF-8 text") from None
        self.fields.setdefault(self.part.name, []).append(value)

    def on_end(self) -> None:
        self.finished = True

    def take_file_chunk(self) -> bytes:
        chunk = b"".join(self.file_chunk)
        self.file_chunk.clear()
        return chunk


def upload_directory(data_dir: Path) -> Path:
    """Where uploads are spooled while they stream in (under DATA_DIR, beside the objects)."""
    return data_dir / "uploads"


def remove_abandoned_uploads(directory: Path, *, older_than_seconds: float = 3600.0) -> int:
    """Delete spool files a crashed process left behind (each up to the upload limit). Only
    old ones: another process sharing DATA_DIR may be receiving an upload right now."""
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    removed = 0
    for path in directory.glob("upload-*.part"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


class _SpoolFile:
    """The temporary file the file part is written to, with its running hash and size."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=directory)
        self.path = Path(name)
        self.handle = os.fdopen(descriptor, "wb")
        self.hash = hashlib.sha256()
        self.size = 0
        self.head = b""

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.hash.update(chunk)

    def close(self) -> None:
        self.handle.close()


async def receive_upload(
    stream: AsyncIterator[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
    directory: Path,
    limits: UploadLimits,
) -> ReceivedUpload:
    """Parse the multipart body from `stream`, stopping at the first reason to refuse it."""
    check_declared_length(content_length, limits)
    receiver = _Receiver(limits)
    parser = MultipartParser(boundary_of(content_type), receiver.callbacks())
    spool = _SpoolFile(directory)
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > limits.max_body_bytes:
                raise _too_large(limits)
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise MalformedUpload(f"the multipart body is malformed ({exc})") from None
            data = receiver.take_file_chunk()
            if data:
                await _spool(spool, data, limits)
        if not receiver.finished:
            raise MalformedUpload("the multipart body ended before its closing boundary")
        if not receiver.file_seen:
            raise ValidationException.for_field(FILE_FIELD, "the image file is missing")
        image_format = _sniffed(spool.head, final=True)
        assert image_format is not None
    except BaseException:
        spool.close()
        spool.path.unlink(missing_ok=True)
        raise
    spool.close()
    return ReceivedUpload(
        path=spool.path,
        size=spool.size,
        sha256=spool.hash.hexdigest(),
        image_format=image_format,
        filename=_clean_filename(receiver.filename),
        fields=receiver.fields,
    )


async def _spool(spool: _SpoolFile, data: bytes, limits: UploadLimits) -> None:
    if spool.size + len(data) > limits.max_file_bytes:
        raise _too_large(limits)
    if len(spool.head) < MAGIC_LENGTH:
        spool.head += data[: MAGIC_LENGTH - len(spool.head)]
        _sniffed(spool.head, final=False)
    spool.size += len(data)
    await asyncio.to_thread(spool.write, data)


def _sniffed(head: bytes, *, final: bool) -> str | None:
    """The format the file's first bytes announce; refuses anything else as soon as enough
    bytes are in (or, `final`, when the file ended short)."""
    if not final and len(head) < MAGIC_LENGTH:
        return None
    image_format = sniff_format(head)
    if image_format is None:
        if not head:
            raise ValidationException.for_field(FILE_FIELD, "the file is empty")
        raise UnsupportedImage(
            f"The file is not a {ACCEPTED} image (judged by its content, not its name or "
            "declared type)"
        )
    return image_format
