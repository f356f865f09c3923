"""`cxgw capture replay FILE --target HOST:PORT`: re-send a capture's requests to a node
and compare its answers with the recorded ones (docs/captures.md, "Inspecting and
replaying").

- Which requests: those the capture's client sent on its connections (CER, DWR and DPR
  excepted: the replaying peer does its own), narrowed by ``--command``,
  ``--application``, ``--peer`` (the client's Origin-Host or address) and ``--stream``.
  When several clients sent requests, the first one's are replayed (and the others named).
- How: after a CER like the client's (its Origin-Host/-Realm unless ``--origin-host`` /
  ``--origin-realm``), as fast as the window allows (``--window``), with the original
  timing (``--timing original``) or at ``--rate N`` per second (captures.replay.client).
- Compared (captures.replay.compare): each answer with the one recorded for its request,
  except the values of the mask. ``--map FILE`` rewrites identities and realms of the
  requests and of the recorded answers (captures.replay.identities).
- A request whose key material the recorder redacted (RAND || AUTS of a
  re-synchronisation) is not sent: the target would refuse the markers; it is listed
  as skipped (record with ``keep_key_material = true`` to replay it).
- Exit status 0 when every answer agrees, 1 on a difference, a missing answer or an
  unexpected one, 2 when the replay could not run (file, map, connection, CEA).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from captures.replay.compare import differences, mask_names
from captures.replay.identities import IdentityMap, MapError, load_map
from captures.show import BASE, CER, Item, items_of, node_names, pair_answers, percentile, result_of
from cx_codec import DecodeError, decode_lazy

KEY_MATERIAL = ("SIP-Authenticate", "SIP-Authorization", "Confidentiality-Key", "Integrity-Key")
MARKER = b"REDACTED"  # captures.recorder's marker
APPLICATIONS = {"cx": 16777216, "base": 0}
PROGRESS_FROM = 100  # requests: shorter replays show no progress bar


@dataclass(slots=True)
class Planned:
    item: Item  # the request in the capture
    request: bytes  # as it will be sent (mapped, our Origin-Host)
    recorded: bytes | None  # the recorded answer, mapped; None: the capture has none


@dataclass(slots=True)
class Report:
    target: str
    file: str
    client: str
    target_identity: str = ""
    matched: list[dict[str, Any]] = field(default_factory=list)
    differing: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    unrecorded: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    unexpected_answers: int = 0
    unexpected_requests: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, sorted
    duration: float = 0.0  # seconds from the first request sent to the last answer
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.differing or self.missing or self.unexpected_answers)

    def as_json(self) -> dict[str, Any]:
        latency = {f"p{p}": round(percentile(self.latencies, p / 100) * 1000, 3) for p in (50, 90, 99)}
        return {
            "file": self.file, "target": self.target, "target_identity": self.target_identity, "client": self.client,
            "sent": len(self.matched) + len(self.differing) + len(self.missing) + len(self.unrecorded),
            "matched": len(self.matched), "differing": self.differing, "missing": self.missing,
            "unrecorded": self.unrecorded, "skipped": self.skipped,
            "unexpected_answers": self.unexpected_answers, "unexpected_requests": self.unexpected_requests,
            "latency_ms": latency, "duration_s": round(self.duration, 6), "notes": self.notes, "ok": not self.failed,
        }


# -- what to send -------------------------------------------------------------------------
def redacted(data: bytes) -> list[str]:
    """Names of the key AVPs of ``data`` that carry the recorder's markers."""
    try:
        message = decode_lazy(data)
        found = []
        for item in message.find_all("SIP-Auth-Data-Item"):
            for member in item.children:
                if member.name in KEY_MATERIAL and member.data and MARKER.startswith(member.data[:8]):
                    found.append(member.name)
        return found
    except DecodeError:
        return []


def plan(
    items: list[Item], streams: dict[int, Any], names: dict[tuple[int, Any], str], *, commands: set[int],
    applications: set[int], peers: set[str], stream_numbers: set[int],
) -> tuple[list[Item], str, list[str]]:
    """The requests to replay, the client's name, and notes for the person."""
    chosen: list[Item] = []
    for item in items:
        captured = item.captured
        known = streams.get(captured.stream)
        if not item.is_request or item.code in BASE or known is None or captured.source != known[1]:
            continue  # only what the client of each connection sent
        client = names[(captured.stream, captured.source)]
        if commands and item.code not in commands:
            continue
        if applications and item.application not in applications:
            continue
        if peers and client.lower() not in peers and captured.source.address not in peers:
            continue
        if stream_numbers and captured.stream not in stream_numbers:
            continue
        chosen.append(item)
    notes = []
    clients = list(dict.fromkeys(names[(item.captured.stream, item.captured.source)] for item in chosen))
    if len(clients) > 1:
        notes.append(f"the capture has requests of {len(clients)} clients ({', '.join(clients)}); replaying "
                     f"those of {clients[0]}: choose with --peer or --stream")
        chosen = [item for item in chosen if names[(item.captured.stream, item.captured.source)] == clients[0]]
    return chosen, clients[0] if clients else "", notes


def client_cer(items: list[Item], names: dict[tuple[int, Any], str], client: str) -> Item | None:
    return next((item for item in items if item.code == CER and item.is_request
                 and names[(item.captured.stream, item.captured.source)] == client), None)


def prepare(chosen: list[Item], identity: IdentityMap, origin: tuple[str, str], client: tuple[str, str]) -> list[Planned]:
    """Each request mapped and sent as ``origin`` where it came from ``client``."""
    from cx_codec.rewrite import rewrite, top_level

    planned = []
    for item in chosen:
        request = identity.message(item.captured.data)
        found = top_level(request, ((264, 0), (296, 0)))
        values = {}
        if found.get((264, 0), [b""])[0].decode("utf-8", "replace").lower() == identity.host(client[0]).lower():
            values[(264, 0)] = origin[0].encode()
            if (296, 0) in found:
                values[(296, 0)] = origin[1].encode()
        if values:
            request = rewrite(request, values)
        recorded = identity.message(item.answer.captured.data) if item.answer is not None else None
        planned.append(Planned(item, request, recorded))
    return planned


# -- the run --------------------------------------------------------------------------------
def compare(planned: list[Planned], outcome: Any, report: Report, mask: frozenset[str]) -> None:
    lazy = decode_lazy
    for exchanged in outcome.exchanged:
        entry = planned[exchanged.index]
        item = entry.item
        about: dict[str, Any] = {"frame": item.captured.frame, "number": item.number, "command": item.name,
                                 "stream": item.captured.stream, "user": item.field("User-Name")}
        if exchanged.answer is None:
            report.missing.append(about)
            continue
        report.latencies.append((exchanged.answered_at or exchanged.sent_at) - exchanged.sent_at)
        try:
            got = lazy(exchanged.answer)
        except DecodeError as error:
            report.differing.append({**about, "differences": [f"the answer is unreadable: {error.reason}"]})
            continue
        about["result"] = result_of(got)
        if entry.recorded is None:
            report.unrecorded.append(about)
            continue
        try:
            found = differences(lazy(entry.recorded), got, mask, exchanged.sent)
        except DecodeError as error:
            found = [f"the recorded answer is unreadable: {error.reason}"]
        if found:
            report.differing.append({**about, "differences": found})
        else:
            report.matched.append(about)
    report.latencies.sort()
    if outcome.exchanged:
        ends = [exchanged.answered_at for exchanged in outcome.exchanged if exchanged.answered_at is not None]
        report.duration = max(ends, default=0.0) - outcome.exchanged[0].sent_at if ends else 0.0
    report.unexpected_answers = len(outcome.unexpected_answers)
    report.unexpected_requests = len(outcome.unexpected_requests)
    if outcome.closed_early:
        report.notes.append(outcome.closed_early)


def summary_lines(report: Report) -> list[str]:
    sent = len(report.matched) + len(report.differing) + len(report.missing) + len(report.unrecorded)
    lines = [f"replayed {sent} requests of {report.client} from {report.file} to {report.target}"
             + (f" ({report.target_identity})" if report.target_identity else "")]
    lines.append(f"  matched    {len(report.matched)}")
    lines.append(f"  differing  {len(report.differing)}")
    for entry in report.differing:
        lines.append(f"    #{entry['number']} {entry['command']} (frame {entry['frame']}, user {entry['user']}):")
        lines += [f"      {text}" for text in entry["differences"]]
    lines.append(f"  missing    {len(report.missing)}" + (" (no answer within the timeout)" if report.missing else ""))
    for entry in report.missing:
        lines.append(f"    #{entry['number']} {entry['command']} (frame {entry['frame']}, user {entry['user']})")
    if report.unrecorded:
        lines.append(f"  answered, nothing recorded to compare with: {len(report.unrecorded)}")
    lines.append(f"  unexpected answers {report.unexpected_answers}, requests from the target {report.unexpected_requests}")
    for entry in report.skipped:
        lines.append(f"  skipped #{entry['number']} {entry['command']} (frame {entry['frame']}): {entry['reason']}")
    if report.latencies:
        values = report.latencies
        lines.append("  latency ms p50 {:.3f}  p90 {:.3f}  p99 {:.3f}".format(
            *(percentile(values, p) * 1000 for p in (0.5, 0.9, 0.99))))
        if report.duration > 0:
            lines.append(f"  {len(values)} answers in {report.duration:.3f} s ({len(values) / report.duration:,.0f}/s)")
    lines += [f"  note: {note}" for note in report.notes]
    lines.append("result: " + ("DIFFERENCES" if report.failed else "no differences"))
    return lines


def progress_bar(total: int) -> Callable[[int, int], None] | None:
    if total < PROGRESS_FROM or not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        filled = 30 * done // max(total, 1)
        end = "\n" if done >= total else ""
        print(f"\rreplay [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a pcap or pcapng file")
    parser.add_argument("--target", required=True, metavar="HOST:PORT", help="the node to replay to")
    parser.add_argument("--origin-host", help="our Origin-Host (default: the capture's client's)")
    parser.add_argument("--origin-realm", help="our Origin-Realm (default: the capture's client's)")
    parser.add_argument("--command", action="append", default=[], metavar="NAME", help="only this command (repeatable)")
    parser.add_argument("--application", action="append", default=[], metavar="ID",
                        help="only this Application-Id (a number, or cx; repeatable)")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME",
                        help="only requests of this client (Origin-Host of its CER, or IP address; repeatable)")
    parser.add_argument("--stream", action="append", default=[], type=int, metavar="N",
                        help="only this connection (stream numbers of cxgw capture show; repeatable)")
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument("--timing", choices=["fast", "original"], default="fast",
                        help="fast (default: as fast as the window allows) or the capture's own spacing")
    timing.add_argument("--rate", type=float, metavar="N", help="N requests per second")
    parser.add_argument("--window", type=int, default=32, help="requests outstanding at most (default 32)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each answer (default 5)")
    parser.add_argument("--mask", action="append", default=[], metavar="AVP",
                        help="also ignore this AVP's value (name or code; repeatable)")
    parser.add_argument("--no-default-mask", action="store_true",
                        help="compare Session-Id, ids, Origin-*, and AKA key material too")
    parser.add_argument("--map", metavar="FILE", help="identity map (TOML: [identities] and [realms])")
    parser.add_argument("--json", action="store_true", help="the report as JSON on standard output (for CI)")


def target_of(text: str) -> tuple[str, int] | None:
    host, colon, port = text.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    return host, int(port)


class Refused(Exception):
    """The replay cannot run; the text is the one line to print."""


@dataclass(frozen=True, slots=True)
class Options:
    target: tuple[str, int]
    mask: frozenset[str]
    commands: set[int]
    applications: set[int]
    identity: IdentityMap


def options(args: argparse.Namespace) -> Options:
    """The arguments checked; Refused naming the first that is wrong and the fix."""
    from captures.cli import command_filter

    target = target_of(args.target)
    if target is None:
        raise Refused(f"--target {args.target!r} is not HOST:PORT; write it as 127.0.0.1:3868")
    if args.rate is not None and not args.rate > 0:
        raise Refused(f"--rate {args.rate:g} must be above 0 (requests per second)")
    if args.window < 1 or not args.timeout > 0:
        raise Refused("--window must be 1 or more and --timeout above 0")
    try:
        mask = mask_names(args.mask, default=not args.no_default_mask)
        identity = load_map(args.map) if args.map else IdentityMap()
    except (ValueError, MapError) as problem:
        raise Refused(str(problem)) from None
    applications = set()
    for value in args.application:
        if value.lower() not in APPLICATIONS and not value.isdigit():
            raise Refused(f"--application {value!r} is not an Application-Id; use a number such as 16777216, or cx")
        applications.add(APPLICATIONS[value.lower()] if value.lower() in APPLICATIONS else int(value))
    commands = command_filter(args.command, quiet=True)
    if commands is None:
        bad = next(value for value in args.command if command_filter([value], quiet=True) is None)
        raise Refused(f"--command {bad!r} is not a Diameter command; use a name such as MAR, MAR/MAA or a code such as 303")
    return Options(target, mask, commands, applications, identity)


@dataclass(slots=True)
class Setup:
    planned: list[Planned]
    sendable: list[int]  # indexes into planned: what is sent (not redacted)
    cer: bytes
    origin: tuple[str, str]
    report: Report


def setup(args: argparse.Namespace, chosen_options: Options) -> Setup:
    """What to send, as whom, from the capture; Refused when there is nothing to do."""
    from captures.cli import open_capture

    opened = open_capture(args.file, quiet=True)
    if isinstance(opened, str):
        raise Refused(opened)
    reader, messages = opened
    items = items_of(messages)
    pair_answers(items)
    names = node_names(items, reader.streams)
    chosen, client, notes = plan(items, reader.streams, names, commands=chosen_options.commands,
                                 applications=chosen_options.applications,
                                 peers={peer.lower() for peer in args.peer}, stream_numbers=set(args.stream))
    if not chosen:
        raise Refused(f"{args.file}: no request to replay (after the filters)")
    cer = client_cer(items, names, client)
    if cer is None and not (args.origin_host and args.origin_realm):
        raise Refused(f"{args.file}: no CER of {client} in the capture; give --origin-host and --origin-realm")
    identity = chosen_options.identity
    captured = (cer.field("Origin-Host") or client, cer.field("Origin-Realm") or "") if cer else (client, "")
    origin = (args.origin_host or identity.host(captured[0]), args.origin_realm or identity.realm(captured[1]))
    try:
        planned = prepare(chosen, identity, origin, captured)
    except DecodeError as problem:
        raise Refused(f"{args.file}: a request cannot be rewritten: {problem.reason}") from None
    report = Report(args.target, args.file, client, notes=notes)
    report.notes += [f"{args.file}: {problem.text}" for problem in reader.problems]
    if reader.problems_omitted:
        report.notes.append(f"{args.file}: ... and {reader.problems_omitted} more problems")
    sendable = []
    for index, entry in enumerate(planned):
        hidden = redacted(entry.request)
        if hidden:
            report.skipped.append({"frame": entry.item.captured.frame, "number": entry.item.number,
                                   "command": entry.item.name, "reason": f"{', '.join(hidden)} redacted in the "
                                   "capture (record with keep_key_material = true to replay it)"})
        else:
            sendable.append(index)
    return Setup(planned, sendable, cer.captured.data if cer is not None else default_cer(origin), origin, report)


def run(args: argparse.Namespace) -> int:
    from captures.replay.client import ReplayError

    try:
        chosen = options(args)
        ready = setup(args, chosen)
        outcome = run_replay(chosen.target, ready.cer, ready.origin, ready.planned, ready.sendable, args)
    except Refused as problem:
        print(f"cxgw capture replay: {problem}", file=sys.stderr)
        return 2
    except ReplayError as problem:
        print(f"cxgw capture replay: {args.target}: {problem}", file=sys.stderr)
        return 2
    report = ready.report
    compare(ready.planned, outcome, report, chosen.mask)
    report.target_identity = outcome.target_identity
    print(json.dumps(report.as_json(), indent=2) if args.json else "\n".join(summary_lines(report)))
    return 1 if report.failed else 0


def default_cer(origin: tuple[str, str]) -> bytes:
    """A CER for a capture without one (RFC 6733 §5.3.1), advertising Cx (TS 29.229 §6)."""
    from cx_codec.commands import CapabilitiesExchangeRequest

    return CapabilitiesExchangeRequest(
        hop_by_hop=0, end_to_end=0, origin_host=origin[0], origin_realm=origin[1], host_ip_address=["127.0.0.1"],
        vendor_id=0, product_name="cxgw capture replay", auth_application_id=[16777216],
        vendor_specific_application_id=[{"vendor_id": 10415, "auth_application_id": 16777216}],
    ).encode()


def run_replay(target: tuple[str, int], cer: bytes, origin: tuple[str, str], planned: list[Planned],
               sendable: list[int], args: argparse.Namespace) -> Any:
    """Run the replay in a reactor of its own (the command line); the Outcome."""
    from twisted.internet import task

    from captures.replay.client import ReplayError

    result: dict[str, Any] = {}

    def main(reactor: Any) -> Any:
        client = make_client(reactor, cer, origin, planned, sendable, args)
        from captures.replay.client import replay

        deferred = replay(reactor, target[0], target[1], client)
        deferred.addCallbacks(lambda outcome: result.update(outcome=outcome),
                              lambda failure: result.update(error=failure.value))
        return deferred

    try:
        task.react(main)
    except SystemExit:
        pass
    if "error" in result:
        if isinstance(result["error"], ReplayError):
            raise result["error"]
        raise ReplayError(str(result["error"]))
    return result["outcome"]


def make_client(reactor: Any, cer: bytes, origin: tuple[str, str], planned: list[Planned], sendable: list[int],
                args: argparse.Namespace) -> Any:
    from captures.replay.client import Outgoing, ReplayClient

    outgoing = []
    first = planned[sendable[0]].item.captured.time if sendable else 0.0
    for position, index in enumerate(sendable):
        at = 0.0
        if args.rate:
            at = position / args.rate
        elif args.timing == "original":
            at = planned[index].item.captured.time - first
        outgoing.append(Outgoing(index, planned[index].request, at))
    window = args.window if not (args.rate or args.timing == "original") else max(args.window, len(outgoing))
    return ReplayClient(reactor, cer, origin, outgoing, window=window, timeout=args.timeout,
                        progress=progress_bar(len(outgoing)))


__all__ = ["Report", "add_arguments", "compare", "plan", "prepare", "run", "summary_lines"]
