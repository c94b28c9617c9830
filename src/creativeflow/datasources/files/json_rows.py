"""The rows of a JSON document read as a stream: an array of objects, or an object whose first
array-valued member holds them (`{"data": [...], "meta": {...}}`). Only the elements a preview
needs are decoded, so a large file is not read whole; one element may be at most
MAX_VALUE_CHARS long."""

from __future__ import annotations

import codecs
import json
from typing import Any, BinaryIO

from creativeflow.datasources.base import SourceError, SourceErrorCode

MAX_VALUE_CHARS = 16 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024
_NEAR_END = 64
_WHITESPACE = " \t\r\n"
_DECODER = json.JSONDecoder()


def _invalid(message: str) -> SourceError:
    return SourceError(SourceErrorCode.INVALID_OBJECT, f"the JSON {message}")


class JsonStream:
    """Text decoded from `handle` on demand, with JSON values taken off its front."""

    def __init__(self, handle: BinaryIO, encoding: str) -> None:
        self._handle = handle
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._buffer = ""
        self._position = 0
        self._dropped = 0  # characters before the buffer, for positions in messages
        self._ended = False

    @property
    def offset(self) -> int:
        return self._dropped + self._position

    def _fill(self) -> bool:
        """Read more text (more at a time the longer the value being decoded); False at EOF."""
        if self._ended:
            return False
        pending = len(self._buffer) - self._position
        chunk = self._handle.read(max(_CHUNK_BYTES, pending))
        text = self._decoder.decode(chunk, final=not chunk)
        self._ended = not chunk
        self._dropped += self._position
        self._buffer = self._buffer[self._position :] + text
        self._position = 0
        if len(self._buffer) > MAX_VALUE_CHARS:
            raise _invalid(
                f"holds a value longer than {MAX_VALUE_CHARS // 2**20} Mi characters near "
                f"character {self.offset}; too large to preview"
            )
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end), left in place."""
        while True:
            while self._position < len(self._buffer) and self._buffer[self._position] in (
                _WHITESPACE
            ):
                self._position += 1
            if self._position < len(self._buffer):
                return self._buffer[self._position]
            if not self._fill():
                return ""

    def expect(self, expected: str, what: str) -> None:
        found = self.peek()
        if found != expected:
            shown = repr(found) if found else "the end"
            raise _invalid(f"is malformed at character {self.offset}: expected {what}, not {shown}")
        self._position += 1

    def value(self) -> Any:
        """The next complete JSON value."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self._buffer, self._position)
            except json.JSONDecodeError as exc:
                # Where the text ends mid-value, more of it may complete the value; an error
                # well before the end is the document's own.
                cut = len(self._buffer) - exc.pos < _NEAR_END or exc.msg.startswith(
                    "Unterminated string"
                )
                if cut and self._fill():
                    continue
                raise _invalid(
                    f"is malformed at character {self._dropped + exc.pos} ({exc.msg})"
                ) from None
            # A number at the buffer's end may go on in the next chunk ("12" of "125").
            if end == len(self._buffer) and self._fill():
                continue
            self._position = end
            return value


def _array_rows(stream: JsonStream, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """The first `limit` objects of the array at the stream's front, and whether more follow."""
    stream.expect("[", "'['")
    rows: list[dict[str, Any]] = []
    if stream.peek() == "]":
        return rows, False
    while True:
        if len(rows) == limit:
            return rows, True
        start = stream.offset
        element = stream.value()
        if not isinstance(element, dict):
            raise _invalid(
                f"array's element {len(rows) + 1} (at character {start}) is not an object"
            )
        rows.append(element)
        separator = stream.peek()
        if separator == "]":
            return rows, False
        stream.expect(",", "',' or ']'")


def json_rows(handle: BinaryIO, encoding: str, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """The first `limit` rows of the document, and whether it holds more."""
    stream = JsonStream(handle, encoding)
    first = stream.peek()
    if first == "[":
        return _array_rows(stream, limit)
    if first != "{":
        raise _invalid("is neither an array of objects nor an object holding one")
    stream.expect("{", "'{'")
    if stream.peek() == "}":
        raise _invalid("object holds no array of objects")
    while True:
        key = stream.value()
        if not isinstance(key, str):
            raise _invalid(f"is malformed at character {stream.offset}: a key must be a string")
        stream.expect(":", "':'")
        if stream.peek() == "[":
            return _array_rows(stream, limit)
        stream.value()  # a member that is not the array: skipped
        if stream.peek() == "}":
            raise _invalid("object holds no array of objects")
        stream.expect(",", "',' or '}'")
