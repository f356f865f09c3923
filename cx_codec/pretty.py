"""Human-readable trees of messages, for `cxgw decode`, logs and tests."""

from __future__ import annotations

from collections.abc import Iterator

from cx_codec.avp import FLAG_MANDATORY, FLAG_PROTECTED, FLAG_VENDOR, Avp
from cx_codec.errors import DecodeError
from cx_codec.header import Flags
from cx_codec.message import Message

VENDOR_NAMES = {0: "", 10415: "3GPP", 13019: "ETSI"}
_COMMAND_FLAGS = ((Flags.REQUEST, "R"), (Flags.PROXIABLE, "P"), (Flags.ERROR, "E"), (Flags.RETRANSMIT, "T"))
_AVP_FLAGS = ((FLAG_VENDOR, "V"), (FLAG_MANDATORY, "M"), (FLAG_PROTECTED, "P"))


def describe_value(avp: Avp) -> str:
    try:
        value = avp.value
    except DecodeError as error:
        return f"<invalid: {error.reason}> 0x{avp.data.hex()}"
    if isinstance(value, bytes):
        return f"0x{value.hex()} ({len(value)} bytes)"
    label = avp.enum_name
    return f"{value!r} {label}" if label else repr(value) if isinstance(value, str) else str(value)


def avp_lines(avp: Avp, depth: int = 1) -> Iterator[str]:
    indent = "  " * depth
    flags = "".join(letter for bit, letter in _AVP_FLAGS if avp.flags & bit) or "-"
    vendor = f", {VENDOR_NAMES.get(avp.vendor, avp.vendor)}" if avp.vendor else ""
    where = f"{avp.name} ({avp.code}{vendor}) {flags}"
    if avp.is_grouped:
        yield f"{indent}{where}"
        try:
            children = avp.children
        except DecodeError as error:
            yield f"{indent}  <members unreadable: {error}>"
            return
        for child in children:
            yield from avp_lines(child, depth + 1)
    else:
        yield f"{indent}{where} = {describe_value(avp)}"


def message_lines(message: Message) -> Iterator[str]:
    flags = "".join(letter for bit, letter in _COMMAND_FLAGS if message.flags & bit) or "-"
    application = message.dictionary.applications.get(message.application_id, "")
    yield (
        f"{message.name} (command {message.command_code}, application {message.application_id}"
        f"{' ' + application if application else ''}) flags {flags} (0x{message.flags:02x})"
    )
    yield f"  hop-by-hop 0x{message.hop_by_hop:08x}  end-to-end 0x{message.end_to_end:08x}"
    for avp in message.avps:
        yield from avp_lines(avp)


def format_message(message: Message) -> str:
    return "\n".join(message_lines(message))
