"""`cxgw decode FILE|-`: print Diameter messages as trees with their validation verdict.

Input is raw bytes or hex (spaces, colons, newlines and a ``0x`` prefix are ignored);
several messages back to back are printed one after the other. Exit status 0 when every
message is valid, 1 when one is not, 2 when the input cannot be read.
"""

from __future__ import annotations

import argparse
import re
import sys

_HEX = re.compile(rb"(?:0x)?[0-9a-fA-F\s:]+")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="file with the message, raw or hex; - for standard input")
    parser.add_argument("--sample", metavar="NAME", help="decode a built-in sample instead (MAR, MAA, CER, ...; 'list' names them)")
    parser.add_argument("--hex", dest="force_hex", action="store_true", help="the input is hex even if it looks binary")


def read_input(path: str, force_hex: bool = False) -> bytes:
    raw = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()  # noqa: SIM115
    if force_hex or (raw and _HEX.fullmatch(raw.strip())):
        text = re.sub(rb"0x|[\s:]", b"", raw)
        return bytes.fromhex(text.decode("ascii"))
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


def run(args: argparse.Namespace) -> int:
    from cx_codec.errors import RESULT_CODE_NAMES, DecodeError
    from cx_codec.message import decode, decode_lazy
    from cx_codec.pretty import format_message

    if args.sample:
        from cx_codec.samples import all_samples

        samples = all_samples()
        if args.sample not in samples:
            print(f"samples: {', '.join(samples)}", file=sys.stderr if args.sample != "list" else sys.stdout)
            return 0 if args.sample == "list" else 2
        data = samples[args.sample].encode()
        args.file = f"sample {args.sample}"
    elif not args.file:
        print("cxgw decode: give a FILE (or - for standard input) or --sample NAME", file=sys.stderr)
        return 2
    else:
        try:
            data = read_input(args.file, args.force_hex)
        except (OSError, ValueError) as error:
            print(f"cxgw decode: cannot read {args.file}: {error}", file=sys.stderr)
            return 2
    if not data:
        print(f"cxgw decode: {args.file} is empty; give a Diameter message as hex or raw bytes", file=sys.stderr)
        return 2
    status = 0
    for number, chunk in enumerate(split_stream(data), 1):
        if number > 1:
            print()
        try:
            print(format_message(decode_lazy(chunk)))
        except DecodeError as error:
            print(f"message {number}: {len(chunk)} bytes, framing unreadable")
            print(f"verdict: invalid: {error}")
            status = 1
            continue
        try:
            decode(chunk)
        except DecodeError as error:
            status = 1
            print(f"verdict: invalid: {error.result_code} {RESULT_CODE_NAMES.get(error.result_code, '')}: {error.reason}")
            if error.failed_avp is not None:
                print(f"  Failed-AVP: 0x{error.failed_avp.hex()}")
        else:
            print("verdict: valid")
    return status
