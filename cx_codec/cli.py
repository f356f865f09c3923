"""`cxgw decode FILE|-`: print Diameter messages as trees with their validation verdict.

The input is one of:

- a capture (pcap or pcapng, recognised by its magic number): every Diameter message in
  it (captures.reader: TCP and SCTP, any link layer) with its frame, time, stream and
  direction, then what the reader found damaged or unreadable;
- hex text: a file whose bytes are all printable text is read as hex (spaces, colons,
  newlines and ``0x`` prefixes are ignored), and any other character is an error naming
  its offset; ``--hex`` forces it;
- otherwise raw bytes.

Several messages back to back are printed one after the other. Exit status 0 when every
message is valid (and a capture was read without problems), 1 when one is not, 2 when
the input cannot be read.
"""

from __future__ import annotations

import argparse
import io
import sys
from datetime import UTC, datetime
from typing import BinaryIO

_PRINTABLE = frozenset(range(0x20, 0x7F)) | frozenset(b"\t\n\r\f\v")
_SEPARATORS = frozenset(b" \t\n\r\f\v:")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", nargs="?", help="file with the message(s), raw or hex, or a pcap/pcapng capture; - for standard input"
    )
    parser.add_argument(
        "--sample", metavar="NAME", help="decode a built-in sample instead (MAR, MAA, CER, ...; 'list' names them)"
    )
    parser.add_argument("--hex", dest="force_hex", action="store_true", help="the input is hex even if it looks binary")


def looks_like_hex(raw: bytes) -> bool:
    """A file of printable text only is taken as hex (a binary Diameter message starts
    with the version byte 0x01, which is not printable)."""
    return bool(raw) and all(byte in _PRINTABLE for byte in set(raw))


def parse_hex(raw: bytes) -> bytes:
    """Hex text to bytes; ValueError naming the offset of the first character that is
    neither a hex digit, a separator (white space, ':') nor a ``0x`` prefix."""
    digits = bytearray()
    at, end = 0, len(raw)
    while at < end:
        byte = raw[at]
        if byte in _SEPARATORS:
            at += 1
        elif byte == 0x30 and at + 1 < end and raw[at + 1] in b"xX" and (at == 0 or raw[at - 1] in _SEPARATORS):
            at += 2  # a 0x prefix
        elif byte in _HEX_DIGITS:
            digits.append(byte)
            at += 1
        else:
            character = chr(byte) if byte < 0x80 else f"\\x{byte:02x}"
            raise ValueError(f"not hexadecimal at offset {at}: {character!r}")
    if len(digits) & 1:
        raise ValueError(f"an odd number of hex digits ({len(digits)}): the last byte is cut in half")
    return bytes.fromhex(digits.decode("ascii"))


def read_input(path: str, force_hex: bool = False) -> bytes:
    """The bytes of a file (``-``: standard input), from hex when it is hex text.

    ValueError says what is wrong and what was assumed; OSError when it cannot be read.
    """
    if path == "-":
        raw = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as file:
            raw = file.read()
    if force_hex:
        return parse_hex(raw)
    if looks_like_hex(raw):
        try:
            return parse_hex(raw)
        except ValueError as error:
            raise ValueError(f"{error} (read as hex because every byte of it is printable text)") from None
    return raw


def split_stream(data: bytes) -> list[bytes]:
    """Messages back to back, by their length field; a broken tail is returned as is."""
    messages = []
    offset = 0
    while offset < len(data):
        length = int.from_bytes(data[offset + 1 : offset + 4], "big") if len(data) - offset >= 4 else 0
        if length < 20 or offset + length > len(data):
            messages.append(data[offset:])
            break
        messages.append(data[offset : offset + length])
        offset += length
    return messages


def describe(chunk: bytes, number: int) -> tuple[list[str], bool]:
    """The tree and verdict of one message, and whether it is valid."""
    from cx_codec.errors import RESULT_CODE_NAMES, DecodeError
    from cx_codec.message import decode, decode_lazy
    from cx_codec.pretty import format_message

    try:
        lines = [format_message(decode_lazy(chunk))]
    except DecodeError as error:
        return [f"message {number}: {len(chunk)} bytes, framing unreadable", f"verdict: invalid: {error}"], False
    try:
        decode(chunk)
    except DecodeError as error:
        lines.append(
            f"verdict: invalid: {error.result_code} {RESULT_CODE_NAMES.get(error.result_code, '')}: {error.reason}"
        )
        if error.failed_avp is not None:
            lines.append(f"  Failed-AVP: 0x{error.failed_avp.hex()}")
        return lines, False
    lines.append("verdict: valid")
    return lines, True


def _sample(name: str) -> tuple[bytes | None, int]:
    from cx_codec.samples import all_samples

    samples = all_samples()
    if name.lower() == "list":
        print(f"samples: {', '.join(samples)}")
        return None, 0
    by_name = {key.lower(): message for key, message in samples.items()}
    message = by_name.get(name.lower())
    if message is None:
        print(f"cxgw decode: unknown sample {name!r}; known: {', '.join(samples)}", file=sys.stderr)
        return None, 2
    return message.encode(), 0


def _is_capture(path: str) -> bool:
    from captures.reader.files import capture_format

    with open(path, "rb") as file:
        return capture_format(file.read(4)) is not None


def _timestamp(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, OSError, ValueError):
        return f"{seconds:.6f}"


def decode_capture(source: str | BinaryIO, name: str) -> int:
    """Every message of a capture (a path or a binary file), then its problems."""
    from captures.reader import CaptureReader, NotACapture

    try:
        reader = CaptureReader(source)
    except NotACapture as error:
        print(f"cxgw decode: {error}", file=sys.stderr)
        return 2
    status, count, invalid = 0, 0, 0
    for message in reader:
        if count:
            print()
        count += 1
        print(
            f"frame {message.frame}  {_timestamp(message.time)}  stream {message.stream} ({message.transport})  "
            f"{message.source} -> {message.destination}"
        )
        if message.comment:
            print(f"comment: {message.comment}")
        lines, valid = describe(message.data, count)
        print("\n".join(lines))
        if not valid:
            status, invalid = 1, invalid + 1
    problems = len(reader.problems) + reader.problems_omitted
    if count:
        print()
    print(f"{name}: {count} Diameter messages ({invalid} invalid) in {len(reader.streams)} streams; {problems} problems")
    for problem in reader.problems:
        print(f"  {problem.text}")
    if reader.problems_omitted:
        print(f"  ... and {reader.problems_omitted} more")
    return 1 if problems else status


def run(args: argparse.Namespace) -> int:
    if args.sample:
        data, status = _sample(args.sample)
        if data is None:
            return status
        name = f"sample {args.sample}"
    elif not args.file:
        print("cxgw decode: give a FILE (or - for standard input) or --sample NAME", file=sys.stderr)
        return 2
    else:
        name = "standard input" if args.file == "-" else args.file
        try:
            if args.file != "-" and not args.force_hex and _is_capture(args.file):
                return decode_capture(args.file, args.file)
            data = read_input(args.file, args.force_hex)
        except OSError as error:
            print(f"cxgw decode: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
            return 2
        except ValueError as error:
            print(f"cxgw decode: {name}: {error}", file=sys.stderr)
            return 2
        if args.file == "-" and not args.force_hex:
            from captures.reader.files import capture_format

            if capture_format(data[:4]) is not None:
                return decode_capture(io.BytesIO(data), name)
    if not data:
        fix = "pipe a Diameter message into it" if args.file == "-" else "give a Diameter message"
        print(f"cxgw decode: {name} is empty; {fix} as hex or raw bytes, or a pcap/pcapng capture", file=sys.stderr)
        return 2
    status = 0
    for number, chunk in enumerate(split_stream(data), 1):
        if number > 1:
            print()
        lines, valid = describe(chunk, number)
        print("\n".join(lines))
        status |= 0 if valid else 1
    return status
