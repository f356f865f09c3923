"""`cxgw capture show FILE`: the Diameter messages of a capture, for people.

One line per message (time, stream, direction, command and flags, hop-by-hop and
end-to-end ids, User-Name, Public-Identity, result); ``--tree`` adds each message's AVP
tree (cx_codec.pretty); ``--ladder`` draws the sessions across the nodes of the capture;
``--stats`` counts requests and answers by command and result, with the latency from
request to answer. The capture is read by captures.reader: the project's recordings
and captures from elsewhere alike; what the reader could not read is listed at the end,
on standard error.

The ladder's columns are the Diameter nodes of the capture, named by the Origin-Host of
the base protocol's messages (CER/CEA, DWR/DWA, DPR/DPA) each end sent on its
connection, else by address and port; they are
ordered along the connections (a node that only opens connections first: the S-CSCF,
then the partner gateway, the primary gateway, the HSS). A request that a node sent on
after receiving one (a translated MAR on the interconnect leg) is drawn in the session of
the request it came from. The rule (docs/captures.md, "Inspecting and replaying"):

1. a request that node N sends whose pcapng comment starts with ``translated:`` belongs
   with the oldest request not matched yet that N received on another connection with
   the same command and comment (the recorder puts it on both: captures.recorder);
2. otherwise a request that node N sends belongs with the oldest request of the same
   command that N received on another connection, that is not answered yet when this
   one is sent and not matched yet (N known by its name, or by its IP address where the
   capture has no CER, CEA, DWR, DWA, DPR or DPA of the connection) (a gateway forwards in the order it receives, and
   the topology hiding of the interconnect replaces Session-Id and End-to-End id, so
   neither can be used);
3. an answer belongs with its request: same connection, the other direction, the same
   hop-by-hop id (RFC 6733 §6.2).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cx_codec import DecodeError, Message, decode_lazy
from cx_codec.pretty import message_lines

REQUEST, PROXIABLE, ERROR, RETRANSMIT = 0x80, 0x40, 0x20, 0x10
FLAG_LETTERS = ((REQUEST, "R"), (PROXIABLE, "P"), (ERROR, "E"), (RETRANSMIT, "T"))
CER, DWR, DPR = 257, 280, 282
BASE = frozenset({CER, DWR, DPR})  # RFC 6733 §5: between peers, never forwarded
# RFC 6733 §3.1 and TS 29.229 §6.1: the short names operators use, request / answer
SHORT_NAMES: dict[int, tuple[str, str]] = {
    257: ("CER", "CEA"), 258: ("RAR", "RAA"), 271: ("ACR", "ACA"), 274: ("ASR", "ASA"),
    275: ("STR", "STA"), 280: ("DWR", "DWA"), 282: ("DPR", "DPA"),
    300: ("UAR", "UAA"), 301: ("SAR", "SAA"), 302: ("LIR", "LIA"), 303: ("MAR", "MAA"),
    304: ("RTR", "RTA"), 305: ("PPR", "PPA"),
}
TRANSLATED = "translated:"  # the comment the partner role has the recorder put on both legs


def command_name(code: int, request: bool) -> str:
    names = SHORT_NAMES.get(code)
    if names is None:
        return f"{code}-{'R' if request else 'A'}"
    return names[0 if request else 1]


def pair_name(code: int) -> str:
    names = SHORT_NAMES.get(code)
    return f"{names[0]}/{names[1]}" if names else str(code)


def flag_letters(flags: int) -> str:
    return "".join(letter if flags & bit else "-" for bit, letter in FLAG_LETTERS)


def result_of(message: Message) -> str | None:
    """"2001", or "5001 (exp, 10415)" for an Experimental-Result-Code; None without one."""
    try:
        code = message.result_code
        if code is not None:
            return str(code)
        experimental = message.experimental_result
    except (DecodeError, KeyError, TypeError):
        return "?"
    if experimental is not None:
        return f"{experimental[1]} (exp)"
    return None


def text_of(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
    except DecodeError:
        return "?"
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(slots=True)
class Item:
    """One captured message and what show needs of it."""

    number: int  # position in the capture (1-based), the number in the ladder and the diff
    captured: Any  # captures.reader.CapturedMessage
    message: Message | None  # None: the header or the AVPs could not be read
    error: str | None = None
    flags: int = 0
    code: int = 0
    application: int = 0
    hop_by_hop: int = 0
    end_to_end: int = 0
    answer: Item | None = None  # for a request: its answer in the capture
    request: Item | None = None  # for an answer: its request
    origin: Item | None = None  # for a request sent on by a node: the request it came from
    forwarded: list[Item] = field(default_factory=list)

    @property
    def is_request(self) -> bool:
        return bool(self.flags & REQUEST)

    @property
    def name(self) -> str:
        return command_name(self.code, self.is_request)

    def field(self, name: str) -> str | None:
        return text_of(self.message, name) if self.message is not None else None

    @property
    def result(self) -> str | None:
        return result_of(self.message) if self.message is not None and not self.is_request else None


def items_of(messages: Iterable[Any]) -> list[Item]:
    """Each captured message decoded leniently (cx_codec.decode_lazy: values when asked)."""
    items = []
    for number, captured in enumerate(messages, 1):
        data = captured.data
        item = Item(number, captured, None)
        if len(data) >= 20:
            item.flags, item.code = data[4], int.from_bytes(data[5:8], "big")
            item.application = int.from_bytes(data[8:12], "big")
            item.hop_by_hop, item.end_to_end = int.from_bytes(data[12:16], "big"), int.from_bytes(data[16:20], "big")
        try:
            item.message = decode_lazy(data)
        except DecodeError as error:
            item.error = f"unreadable: {error.reason}"
        items.append(item)
    return items


def pair_answers(items: list[Item]) -> None:
    """Rule 3: an answer goes with the request of its connection sent the other way with
    its hop-by-hop id (RFC 6733 §6.2), the latest one before it."""
    waiting: dict[tuple[int, Any, int], Item] = {}
    for item in items:
        captured = item.captured
        if item.is_request:
            waiting[(captured.stream, captured.source, item.hop_by_hop)] = item
        else:
            request = waiting.pop((captured.stream, captured.destination, item.hop_by_hop), None)
            if request is not None:
                request.answer, item.request = item, request


# -- nodes: who is at each end of each connection ------------------------------------------
def node_names(items: list[Item], streams: dict[int, Any]) -> dict[tuple[int, Any], str]:
    """(stream, endpoint) -> the node's name: the Origin-Host of the CER, CEA, DWR, DWA,
    DPR or DPA it sent on that connection (RFC 6733 §5: between peers only), else
    ``address:port`` (a capture that starts after the connection opened)."""
    names: dict[tuple[int, Any], str] = {}
    for item in items:  # CER/CEA, DWR/DWA, DPR/DPA are never forwarded: their Origin-Host is their sender
        if item.code in BASE and item.message is not None:
            host = item.field("Origin-Host")
            if host and host != "?":
                names.setdefault((item.captured.stream, item.captured.source), host)
    for stream, (_transport, client, server) in streams.items():
        for endpoint in (client, server):
            names.setdefault((stream, endpoint), f"{endpoint.address}:{endpoint.port}")
    for item in items:  # streams the reader saw only through their messages
        captured = item.captured
        for endpoint in (captured.source, captured.destination):
            names.setdefault((captured.stream, endpoint), f"{endpoint.address}:{endpoint.port}")
    return names


def column_order(streams: dict[int, Any], names: dict[tuple[int, Any], str]) -> list[str]:
    """Nodes along the connections: those that only open connections first, then each
    server one further than the furthest client that connects to it."""
    edges = []
    for stream, (_transport, client, server) in streams.items():
        edges.append((names[(stream, client)], names[(stream, server)]))
    nodes = list(dict.fromkeys(name for name in names.values()))
    depth = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):  # longest path, bounded: a cycle stops growing after len(nodes) rounds
        changed = False
        for client, server in edges:
            if client != server and depth[server] < depth[client] + 1 and depth[client] + 1 <= len(nodes):
                depth[server] = depth[client] + 1
                changed = True
        if not changed:
            break
    return sorted(nodes, key=lambda name: (depth[name], nodes.index(name)))


def same_node(names: dict[tuple[int, Any], str], stream: int, endpoint: Any, other_stream: int, other: Any) -> bool:
    """Whether two endpoints are one node: the same name when both are named by the base
    protocol, else the same IP address (a connection whose CER was not captured)."""
    name, other_name = names[(stream, endpoint)], names[(other_stream, other)]
    if _named(name, endpoint) and _named(other_name, other):
        return name == other_name
    return bool(endpoint.address == other.address)


def _named(name: str, endpoint: Any) -> bool:
    return name != f"{endpoint.address}:{endpoint.port}"


def match_forwarded(items: list[Item], names: dict[tuple[int, Any], str]) -> None:
    """Rules 1 and 2 of the module docstring: each request a node sent on, with the
    request it received that caused it."""
    # requests received, oldest first, neither matched nor answered yet (an answered one
    # caused nothing later): the in-flight requests, so each look is short
    received: dict[int, Item] = {}
    for item in items:
        if not item.is_request:
            if item.request is not None:
                received.pop(item.request.number, None)
            continue
        if item.code in BASE:
            continue
        captured = item.captured
        comment = captured.comment or ""
        origin = None
        candidates = [r for r in received.values() if r.code == item.code and r.captured.stream != captured.stream
                      and same_node(names, r.captured.stream, r.captured.destination, captured.stream, captured.source)]
        if comment.startswith(TRANSLATED):
            origin = next((r for r in candidates if r.captured.comment == comment), None)
        if origin is None:
            origin = next((r for r in candidates if not (r.captured.comment or "").startswith(TRANSLATED)), None)
        if origin is not None:
            del received[origin.number]
            item.origin = origin
            origin.forwarded.append(item)
        received[item.number] = item


# -- output ------------------------------------------------------------------------------
def clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(when)) + f".{int(when * 1_000_000) % 1_000_000:06d}"


def summary_line(item: Item, names: dict[tuple[int, Any], str]) -> str:
    captured = item.captured
    source, destination = captured.source, captured.destination
    arrow = f"{_end(names, captured.stream, source)} -> {_end(names, captured.stream, destination)}"
    parts = [f"#{item.number:<4} {clock(captured.time)} s{captured.stream:<3} {arrow}"]
    if item.message is None and item.code == 0:
        parts.append(f"{len(captured.data)} bytes, {item.error}")
        return "  ".join(parts)
    parts.append(f"{item.name} {flag_letters(item.flags)}")
    parts.append(f"hbh=0x{item.hop_by_hop:08x} e2e=0x{item.end_to_end:08x}")
    for label, name in (("user", "User-Name"), ("impu", "Public-Identity")):
        value = item.field(name)
        if value is not None:
            parts.append(f"{label}={value}")
    if item.result is not None:
        parts.append(f"result={item.result}")
    if item.error:
        parts.append(item.error)
    return "  ".join(parts)


def _end(names: dict[tuple[int, Any], str], stream: int, endpoint: Any) -> str:
    name = names.get((stream, endpoint), "?")
    return f"{name} ({endpoint.address}:{endpoint.port})" if _named(name, endpoint) else name


def show_lines(items: list[Item], names: dict[tuple[int, Any], str], tree: bool) -> Iterator[str]:
    for item in items:
        yield summary_line(item, names)
        if item.captured.comment:
            yield f"      comment: {item.captured.comment}"
        if tree and item.message is not None:
            try:
                for line in message_lines(item.message):
                    yield "      " + line
            except DecodeError as error:
                yield f"      <unreadable: {error.reason}>"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (0 for none)."""
    if not values:
        return 0.0
    rank = max(1, min(len(values), int(fraction * len(values) + 0.999999)))
    return values[rank - 1]


def stats_lines(items: list[Item]) -> Iterator[str]:
    requests: dict[str, int] = defaultdict(int)
    answers: dict[tuple[str, str], list[float]] = defaultdict(list)
    unanswered: dict[str, int] = defaultdict(int)
    for item in items:
        if item.message is None and item.code == 0:
            continue
        if item.is_request:
            requests[pair_name(item.code)] += 1
            if item.answer is None:
                unanswered[pair_name(item.code)] += 1
        elif item.request is not None:
            latency = (item.captured.time - item.request.captured.time) * 1000
            answers[(pair_name(item.code), item.result or "-")].append(latency)
        else:
            answers[(pair_name(item.code), item.result or "-")].append(float("nan"))
    yield f"{'command':<10} {'requests':>8} {'unanswered':>10}"
    for name, count in sorted(requests.items()):
        yield f"{name:<10} {count:>8} {unanswered.get(name, 0):>10}"
    yield ""
    yield f"{'command':<10} {'result':<12} {'answers':>7} {'p50 ms':>9} {'p99 ms':>9}"
    for (name, result), latencies in sorted(answers.items()):
        known = sorted(value for value in latencies if value == value)
        p50 = f"{percentile(known, 0.5):9.3f}" if known else f"{'-':>9}"
        p99 = f"{percentile(known, 0.99):9.3f}" if known else f"{'-':>9}"
        yield f"{name:<10} {result:<12} {len(latencies):>7} {p50} {p99}"


def ladder_lines(items: list[Item], names: dict[tuple[int, Any], str], columns: list[str]) -> Iterator[str]:
    """Sessions, each drawn across the columns: one row per message, an arrow from the
    sender's column to the receiver's with the command, hop-by-hop id and result."""
    width = max(26, *(len(name) + 2 for name in columns)) if columns else 26
    position = {name: index * width + width // 2 for index, name in enumerate(columns)}
    total = width * len(columns)
    yield " " * 16 + "".join(name.center(width) for name in columns)
    for title, members in sessions(items):
        yield ""
        yield f"session {title}"
        for item in members:
            captured = item.captured
            start = position[names[(captured.stream, captured.source)]]
            end = position[names[(captured.stream, captured.destination)]]
            row = [" "] * total
            for x in position.values():
                row[x] = "|"
            low, high = sorted((start, end))
            for x in range(low + 1, high):
                row[x] = "-"
            if start < end:
                row[high - 1] = ">"
            elif start > end:
                row[low + 1] = "<"
            label = f" {item.name} #{item.number}"
            if item.result is not None:
                label += f" {item.result}"
            if item.origin is not None:
                label += f" (from #{item.origin.number})"
            label += " "
            at = low + 2
            if high - low - 3 >= len(label):
                at = low + (high - low - len(label)) // 2 + 1
                row[at : at + len(label)] = label
                yield f"{clock(captured.time)} " + "".join(row).rstrip()
            else:
                yield f"{clock(captured.time)} " + "".join(row).rstrip() + label


def sessions(items: list[Item]) -> list[tuple[str, list[Item]]]:
    """The messages grouped by session: the Session-Id of the first request of a chain
    (a request, what was sent on because of it, and their answers), else by connection
    for the base protocol (CER/CEA, DWR/DWA, DPR/DPA)."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        first = item.request or item
        while first.origin is not None:
            first = first.origin
        if item.code in BASE or first.message is None:
            title = f"(connection s{item.captured.stream}: capabilities, watchdog, disconnect)"
        else:
            title = first.field("Session-Id") or f"(no Session-Id, #{first.number})"
        groups.setdefault(title, []).append(item)
    return list(groups.items())


# -- the command ---------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a pcap or pcapng file")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--tree", action="store_true", help="each message's AVP tree too")
    mode.add_argument("--ladder", action="store_true", help="a ladder diagram of the sessions across the nodes")
    mode.add_argument("--stats", action="store_true", help="counts and latency by command and result")
    parser.add_argument("--command", action="append", default=[], metavar="NAME",
                        help="only this command (MAR, MAR/MAA, 303; repeatable)")
    parser.add_argument("--stream", action="append", default=[], type=int, metavar="N",
                        help="only this connection (the stream number shown; repeatable)")


def run(args: argparse.Namespace) -> int:
    from captures.cli import command_filter, open_capture

    commands = command_filter(args.command)
    if commands is None:
        return 2
    opened = open_capture(args.file)
    if isinstance(opened, str):
        return 2
    reader, messages = opened
    items = items_of(messages)
    pair_answers(items)
    names = node_names(items, reader.streams)
    if args.ladder:
        match_forwarded(items, names)
    wanted = [item for item in items
              if (not commands or item.code in commands) and (not args.stream or item.captured.stream in args.stream)]
    if args.stats:
        lines: Iterable[str] = stats_lines(wanted)
    elif args.ladder:
        streams = {number: value for number, value in reader.streams.items()
                   if not args.stream or number in args.stream}
        lines = ladder_lines(wanted, names, column_order(streams, names) or sorted(set(names.values())))
    else:
        lines = show_lines(wanted, names, args.tree)
    for line in lines:
        print(line)
    if not items:
        print(f"{args.file}: no Diameter message found", file=sys.stderr)
    for problem in reader.problems:
        print(f"{args.file}: {problem.text}", file=sys.stderr)
    if reader.problems_omitted:
        print(f"{args.file}: ... and {reader.problems_omitted} more problems", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "run"]
