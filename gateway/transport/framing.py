"""Splitting a TCP/TLS byte stream into Diameter messages (RFC 6733 §3), sans-IO.

The only thing a stream tells us is the 3-byte length after the version byte. A length
below 20, not a multiple of 4, above the configured maximum, or a version other than 1
means the framing is lost: nothing after it can be trusted, so the connection must be
closed (after a best-effort answer, RFC 6733 §7 and §3).
"""

from __future__ import annotations

import struct

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
        messages: list[bytes] = []
        offset = 0
        if self._buffer:
            message, offset = self.complete(data)
            if message is None:
                return messages
            messages.append(message)
        end = len(data)
        if offset == 0 and end >= HEADER_LENGTH and _WORD.unpack_from(data)[0] & 0xFFFFFF == end:
            if data[0] == 1 and not end & 3 and end <= self.max_message:
                messages.append(data)  # one whole message, the common case at low load
                self._buffer = b""
                return messages
        unpack = _WORD.unpack_from
        append = messages.append
        # word = version << 24 | length: valid words lie in [V1_MIN, V1_MAX] with length & 3 == 0
        low, high = V1_MIN, V1 | self.max_message
        while end - offset >= 4:
            word = unpack(data, offset)[0]
            if word < low or word > high or word & 3:
                self._check(word, data[offset : offset + HEADER_LENGTH], messages)
            length = word & 0xFFFFFF
            if end - offset < length:
                break
            append(data[offset : offset + length])
            offset += length
        self._buffer = data[offset:] if offset < end else b""
        return messages

    def complete(self, data: bytes) -> tuple[bytes | None, int]:
        """Finish the buffered partial message with the head of ``data`` only (joining all
        of ``data`` to it would copy every byte of every large read once more): the
        message, or None when ``data`` did not finish it (then all of it is buffered),
        and how many bytes of ``data`` were used. Raises FramingError when lost."""
        pending = self._buffer
        used = 0
        if len(pending) < 4:
            used = 4 - len(pending)
            pending += data[:used]
            used = len(pending) - len(self._buffer)
            if len(pending) < 4:
                self._buffer = pending
                return None, used
        length = _WORD.unpack_from(pending)[0]
        self._check(length, pending, [])
        needed = (length & 0xFFFFFF) - len(pending)
        if len(data) - used < needed:
            self._buffer = pending + data[used:]
            return None, len(data)
        self._buffer = b""
        return pending + data[used : used + needed], used + needed

    def _check(self, word: int, prefix: bytes, complete: list[bytes]) -> None:
        length = word & 0xFFFFFF
        if word >> 24 != 1 or length < HEADER_LENGTH or length & 3 or length > self.max_message:
            self._buffer = b""
            error = FramingError(*_why(word >> 24, length, self.max_message), prefix[:HEADER_LENGTH])
            error.complete = complete  # type: ignore[attr-defined]
            raise error


_WORD = struct.Struct(">I")
V1 = 1 << 24  # version 1 in the first header word (RFC 6733 §3)
V1_MIN = V1 | HEADER_LENGTH  # the smallest valid first word: version 1, a bare header


def _why(version: int, length: int, max_message: int) -> tuple[int, str]:
    if version != 1:
        return ResultCode.DIAMETER_UNSUPPORTED_VERSION, f"version {version} (only 1 exists); stream out of step"
    if length > max_message:
        return (
            ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH,
            f"message of {length} bytes exceeds limits.max_message_size = {max_message}",
        )
    return ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH, f"message length {length} is below 20 or not a multiple of 4"
