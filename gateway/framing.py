"""Splitting a TCP/TLS byte stream into Diameter messages (RFC 6733 §3), sans-IO.

The only thing a stream tells us is the 3-byte length after the version byte. A length
below 20, not a multiple of 4, above the configured maximum, or a version other than 1
means the framing is lost: nothing after it can be trusted, so the connection must be
closed (after a best-effort answer, RFC 6733 §7 and §3).
"""

from __future__ import annotations

from cx_codec.errors import DecodeError, ResultCode

HEADER_LENGTH = 20


class FramingError(DecodeError):
    """The stream cannot be split any further; carries the prefix that broke it."""

    def __init__(self, result_code: int, reason: str, prefix: bytes) -> None:
        super().__init__(result_code, reason, fatal=True)
        self.prefix = prefix


class Framer:
    """Accumulates bytes and returns whole messages; memory is bounded by ``max_message``."""

    __slots__ = ("max_message", "_buffer")

    def __init__(self, max_message: int = 65536) -> None:
        self.max_message = max_message
        self._buffer = b""

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Messages completed by ``data``, in order. Raises FramingError when lost;
        the messages completed before the broken one are in ``error.complete``."""
        buffer = self._buffer + data if self._buffer else data
        messages: list[bytes] = []
        offset = 0
        end = len(buffer)
        max_message = self.max_message
        while end - offset >= 4:
            length = int.from_bytes(buffer[offset + 1 : offset + 4], "big")
            if buffer[offset] != 1 or length < HEADER_LENGTH or length & 3 or length > max_message:
                self._buffer = b""
                error = FramingError(*_why(buffer[offset], length, max_message), buffer[offset : offset + HEADER_LENGTH])
                error.complete = messages  # type: ignore[attr-defined]
                raise error
            if end - offset < length:
                break
            messages.append(buffer[offset : offset + length] if offset or length != end else buffer)
            offset += length
        self._buffer = buffer[offset:] if offset < end else b""
        return messages


def _why(version: int, length: int, max_message: int) -> tuple[int, str]:
    if version != 1:
        return ResultCode.DIAMETER_UNSUPPORTED_VERSION, f"version {version} (only 1 exists); stream out of step"
    if length > max_message:
        return (
            ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH,
            f"message of {length} bytes exceeds limits.max_message_size = {max_message}",
        )
    return ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH, f"message length {length} is below 20 or not a multiple of 4"
