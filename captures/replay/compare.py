"""Comparing an answer with the one recorded for the same request: what differs, in
lines a person reads ("Result-Code: recorded 2001, got 5001").

Compared: the command and its R, P and E flags (the T flag says only that a request was
re-sent, RFC 6733 §3), the AVP structure (which AVPs, how many of each, their members)
and every value except those of the mask. The mask holds AVP names (or codes) and the
header fields ``hop-by-hop`` and ``end-to-end``; it masks values only: a masked AVP that
is missing or extra is still a difference. The default mask is what differs between
two runs by design: identifiers chosen per request or per node (Session-Id, the header
ids, Origin-Host/-Realm/-State-Id) and the key material of IMS-AKA (RAND || AUTN, XRES,
CK and IK, TS 33.203: random per vector, and redacted in the project's recordings).
AVP order is not compared (RFC 6733 §3: only Session-Id's place is fixed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cx_codec import DEFAULT_DICTIONARY, Avp, DecodeError, Message
from cx_codec.pretty import describe_value

HEADER_FIELDS = ("hop-by-hop", "end-to-end")
DEFAULT_MASK = (
    "Session-Id", "hop-by-hop", "end-to-end", "Origin-Host", "Origin-Realm", "Origin-State-Id",
    "SIP-Authenticate", "SIP-Authorization", "Confidentiality-Key", "Integrity-Key",
)
COMPARED_FLAGS = 0xE0  # R, P, E


def mask_names(names: Iterable[str], *, default: bool = True) -> frozenset[str]:
    """The mask as AVP names and header fields; ValueError naming an unknown entry."""
    mask = set(DEFAULT_MASK if default else ())
    by_code = {definition.code: definition.name for definition in DEFAULT_DICTIONARY.avps.values()}
    for name in names:
        if name in HEADER_FIELDS or name in DEFAULT_DICTIONARY.by_name:
            mask.add(name)
        elif name.isdigit() and int(name) in by_code:
            mask.add(by_code[int(name)])
        else:
            raise ValueError(f"--mask {name!r} is not an AVP of the dictionary; use a name such as "
                             "User-Name, a code such as 1, or hop-by-hop / end-to-end")
    return frozenset(mask)


def differences(recorded: Message, got: Message, mask: frozenset[str], sent: bytes | None = None) -> list[str]:
    """What differs between the recorded answer and the one received, one line each;
    empty when they agree. ``sent``: the request as sent, whose ids the answer must
    carry (RFC 6733 §6.2) when they are not masked."""
    lines = []
    if recorded.command_code != got.command_code:
        lines.append(f"command: recorded {recorded.command_code}, got {got.command_code}")
    if recorded.flags & COMPARED_FLAGS != got.flags & COMPARED_FLAGS:
        lines.append(f"flags: recorded {_flags(recorded.flags)}, got {_flags(got.flags)}")
    if sent is not None:
        for name, start in (("hop-by-hop", 12), ("end-to-end", 16)):
            expected = int.from_bytes(sent[start : start + 4], "big")
            value = got.hop_by_hop if start == 12 else got.end_to_end
            if name not in mask and value != expected:
                lines.append(f"{name}: the request carried 0x{expected:08x}, the answer 0x{value:08x}")
    try:
        lines += _avp_differences(list(recorded.avps), list(got.avps), mask, "")
    except DecodeError as error:
        lines.append(f"unreadable AVPs: {error.reason}")
    return lines


def _flags(flags: int) -> str:
    return "".join(letter if flags & bit else "-" for bit, letter in ((0x80, "R"), (0x40, "P"), (0x20, "E")))


def _avp_differences(recorded: Sequence[Avp], got: Sequence[Avp], mask: frozenset[str], path: str) -> list[str]:
    lines: list[str] = []
    keys = list(dict.fromkeys([avp.key for avp in recorded] + [avp.key for avp in got]))
    for key in keys:
        before = [avp for avp in recorded if avp.key == key]
        after = [avp for avp in got if avp.key == key]
        several = max(len(before), len(after)) > 1
        for index in range(max(len(before), len(after))):
            avp = (before or after)[0]
            label = f"{path}{avp.name}" + (f"[{index}]" if several else "")
            if index >= len(after):
                lines.append(f"{label}: recorded {_value(before[index])}, missing in the answer")
            elif index >= len(before):
                lines.append(f"{label}: not recorded, got {_value(after[index])}")
            elif before[index].is_grouped and after[index].is_grouped:
                lines += _avp_differences(before[index].children, after[index].children, mask, label + " / ")
            elif avp.name not in mask and before[index].data != after[index].data:
                lines.append(f"{label}: {_changed(before[index], after[index])}")
    return lines


def _value(avp: Avp) -> str:
    if avp.is_grouped:
        return "(grouped)"
    return describe_value(avp)


def _changed(before: Avp, after: Avp) -> str:
    """Both values; long texts (User-Data's XML) from a little before where they part."""
    old, new = _text(before.data), _text(after.data)
    if old is None or new is None or max(len(old), len(new)) <= CONTEXT * 2:
        return f"recorded {_value(before)}, got {_value(after)}"
    start = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    start = max(0, start - CONTEXT // 2)
    def cut(text: str) -> str:
        return ("..." if start else "") + text[start : start + CONTEXT * 2] + ("..." if len(text) > start + CONTEXT * 2 else "")
    return f"recorded {cut(old)!r}, got {cut(new)!r}"


CONTEXT = 30  # characters of a long text shown either side of where two values part


def _text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


__all__ = ["DEFAULT_MASK", "differences", "mask_names"]
