"""Images and bodies for the assets tests, built with Pillow (or by hand where Pillow would refuse
to write them: a PNG declaring a huge size), and a subject type with readers and writers."""

from __future__ import annotations

import io
import random
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from PIL import ExifTags, Image
from sqlalchemy import Select, select

from creativeflow.access import register_subject_type, unregister_subject_type
from creativeflow.identity.models import User
from creativeflow.identity.principal import Principal

UPLOAD = "/api/v1/images/upload"
RED, BLUE = (220, 20, 60), (30, 60, 200)


def solid(size: tuple[int, int] = (64, 48), colour: tuple[int, ...] = RED, mode: str = "RGB"):
    return Image.new(mode, size, colour)


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png(size: tuple[int, int] = (64, 48), colour: tuple[int, ...] = RED) -> bytes:
    return encoded(solid(size, colour), "PNG")


def jpeg(size: tuple[int, int] = (64, 48), colour: tuple[int, ...] = RED) -> bytes:
    return encoded(solid(size, colour), "JPEG", quality=90)


def webp(size: tuple[int, int] = (64, 48), colour: tuple[int, ...] = RED, **options: Any) -> bytes:
    return encoded(solid(size, colour), "WEBP", **options)


def noise_png(size: tuple[int, int], seed: int = 1) -> bytes:
    """Incompressible: the PNG is about width x height x 3 bytes."""
    generator = random.Random(seed)
    image = Image.frombytes("RGB", size, generator.randbytes(size[0] * size[1] * 3))
    return encoded(image, "PNG", compress_level=1)


def two_colours(size: tuple[int, int] = (200, 100), split: float = 0.75) -> Image.Image:
    """The left `split` of the picture red, the rest blue."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, round(size[0] * split), size[1]))
    return image


def oriented_jpeg() -> bytes:
    """A 60x30 JPEG (left half red, right half blue) whose EXIF says "rotate 90 degrees
    clockwise to display" (orientation 6), with a camera, a GPS position, XMP and a comment."""
    image = two_colours((60, 30), split=0.5)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.Model] = "Spy 3000"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description Creator="Jane Doe"/>'
    xmp += b"</rdf:RDF></x:xmpmeta>"
    return encoded(image, "JPEG", exif=exif, xmp=xmp, comment=b"shot at home", quality=95)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def declared_png(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG header claiming `width` x `height` pixels (a decompression
    bomb's shape: a few hundred bytes that would decode to gigabytes)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", rows)
        + _chunk(b"IEND", b"")
    )


def gif() -> bytes:
    return encoded(solid(), "GIF")


def truncated_png() -> bytes:
    data = noise_png((64, 64))
    return data[: len(data) * 6 // 10]


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# -- a multipart body streamed in chunks, counting what the server pulled -----------------------

BOUNDARY = "test-boundary-7d1f"


@dataclass
class CountingBody:
    """A multipart body with one `file` part of `file_size` bytes (a PNG signature, then filler),
    yielded in chunks; `consumed` is how many bytes the server has asked for."""

    file_size: int
    chunk_size: int = 64 * 1024
    consumed: int = 0
    chunks: list[int] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={BOUNDARY}"

    def parts(self) -> Iterator[bytes]:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        remaining = self.file_size
        first = b"\x89PNG\r\n\x1a\n"
        while remaining > 0:
            size = min(self.chunk_size, remaining)
            chunk = (first + b"\x00" * size)[:size]
            first = b""
            remaining -= size
            yield chunk
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    @property
    def total(self) -> int:
        return sum(len(part) for part in self.parts())

    async def stream(self) -> AsyncIterator[bytes]:
        for part in self.parts():
            self.consumed += len(part)
            yield part


# -- a subject type with readers and writers -----------------------------------------------------

FOLDER = "tests.folder"


class Folders:
    """`tests.folder` subjects: a folder's id is its owner's user id (so it names a row the
    subject selects can return); others are granted `read` or `write` in Python."""

    def __init__(self) -> None:
        self.grants: dict[uuid.UUID, dict[uuid.UUID, str]] = {}

    def create(self, owner_id: str) -> uuid.UUID:
        folder = uuid.UUID(owner_id)
        self.grants[folder] = {folder: "write"}
        return folder

    def grant(self, folder: uuid.UUID, user_id: str, access: str) -> None:
        self.grants[folder][uuid.UUID(user_id)] = access

    def _ids(self, principal: Principal, *, writing: bool) -> Select[Any]:
        ids = [
            folder
            for folder, members in self.grants.items()
            if (access := members.get(principal.user_id)) and (access == "write" or not writing)
        ]
        return select(User.id).where(User.id.in_(ids))

    @contextmanager
    def registered(self) -> Iterator[Folders]:
        register_subject_type(
            FOLDER,
            readable=lambda principal: self._ids(principal, writing=False),
            writable=lambda principal: self._ids(principal, writing=True),
        )
        try:
            yield self
        finally:
            unregister_subject_type(FOLDER)
