"""What the node counts, and how it reaches Prometheus (gateway.observe.metrics).

The relay path only bumps plain counters (a dict keyed by (peer, direction, command,
result)) and observes latencies; ``NodeMetrics.collect`` copies everything into the
registry when /metrics is scraped, so a scrape costs the node nothing between scrapes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from gateway.observe.metrics import GatewayMetrics

COMMAND_NAMES = {
    257: "CER/CEA",
    280: "DWR/DWA",
    282: "DPR/DPA",
    300: "UAR/UAA",
    301: "SAR/SAA",
    302: "LIR/LIA",
    303: "MAR/MAA",
    304: "RTR/RTA",
    305: "PPR/PPA",
}


# Result-Code (268) and Experimental-Result-Code (298) AVP headers as peers send them:
# M flag, no vendor, length 12 (RFC 6733 §4.1, §7.1, §7.7)
_RESULT_CODE_HEADER = b"\x00\x00\x01\x0c\x40\x00\x00\x0c"
_EXPERIMENTAL_CODE_HEADER = b"\x00\x00\x01\x2a\x40\x00\x00\x0c"


def result_key(data: bytes, start: int, stop: int) -> bytes:
    """The result of the answer in ``data[start:stop]``, raw: the 4 bytes of its
    Result-Code, or b"e" and those of its Experimental-Result-Code, or b"". Found by the
    AVP headers' bytes rather than a walk of the AVPs (a few hundred nanoseconds, so the
    relay's hot loop can count every answer): a value carrying those 8 bytes before the
    real AVP would mislabel a metric, nothing more."""
    at = data.find(_RESULT_CODE_HEADER, start + 20, stop)
    if at >= 0 and at + 12 <= stop:
        return data[at + 8 : at + 12]
    at = data.find(_EXPERIMENTAL_CODE_HEADER, start + 20, stop)
    if at >= 0 and at + 12 <= stop:
        return b"e" + data[at + 8 : at + 12]
    return b""


_LABELS: dict[bytes, str] = {}


def result_label(key: bytes) -> str:
    """A ``result_key`` as a metric label: "2001", or "e5001" for an Experimental-Result-Code
    (same numbers, other meanings: kept apart), or ""."""
    label = _LABELS.get(key)
    if label is None:
        label = ("e" + str(int.from_bytes(key[1:], "big"))) if key[:1] == b"e" else (
            str(int.from_bytes(key, "big")) if key else "")
        if len(_LABELS) < 4096:  # (bounded: a peer chooses these)
            _LABELS[key] = label
    return label


def answer_result(data: bytes) -> str:
    """The result label of one answer (the general path's; the hot loop counts per read)."""
    key = result_key(data, 0, len(data))
    label = _LABELS.get(key)  # (result_label's, without its call for a label known)
    return label if label is not None else result_label(key)


class MessageCounts(Counter):
    """(peer, direction, command code, result label) -> messages."""

    def count(self, peer: str, direction: str, command: int, result: str) -> None:
        self[(peer, direction, command, result)] += 1

    def settle(
        self, peer: str, requests: dict[tuple[Any, int], int], answers: dict[tuple[Any, int, bytes], int]
    ) -> None:
        """What the relay's hot loop relayed in one read from ``peer``: requests by
        (target peer, command), answers by (origin connection, command, result_key),
        counted as the general path counts them one by one."""
        for (target, command), n in requests.items():
            self[(peer, "in", command, "")] += n
            self[(target.host, "out", command, "")] += n
        for (origin, command, key), n in answers.items():
            result = result_label(key)
            self[(peer, "in", command, result)] += n
            self[(origin.peer.host, "out", command, result)] += n


class CountingNode(Protocol):
    """What is exported of a node (gateway.node.DiameterNode)."""

    peers: dict[str, Any]
    pending: Any  # gateway.routing.pending.PendingRequests: outstanding(peer)
    message_counts: MessageCounts
    counters: Any  # gateway.node.Counters
    applications: dict[int, Any]


class NodeMetrics:
    """Bridges a DiameterNode to the Prometheus registry of gateway.observe.metrics."""

    def __init__(self, metrics: GatewayMetrics | None = None) -> None:
        self.metrics = metrics or GatewayMetrics()
        self._exported: Counter[Any] = Counter()
        self._durations: dict[int, Any] = {}

    def observe_request(self, command_code: int, seconds: float) -> None:
        child = self._durations.get(command_code)
        if child is None:
            child = self._durations[command_code] = self.metrics.request_duration.labels(
                COMMAND_NAMES.get(command_code, str(command_code))
            )
        child.observe(seconds)

    def observe_requests(self, entries: list[Any], deadline_now: float) -> None:
        """The request durations of pending entries answered together: each lasted
        ``deadline_now - entry.deadline`` (the deadline of a request sent now, less its
        own). Requests sent in one read share a deadline, so runs are observed at once."""
        run_command, run_deadline, run = None, 0.0, 0
        for entry in entries:
            if entry.command_code == run_command and entry.deadline == run_deadline:
                run += 1
                continue
            if run:
                self._observe_run(run_command, deadline_now - run_deadline, run)  # type: ignore[arg-type]
            run_command, run_deadline, run = entry.command_code, entry.deadline, 1
        if run:
            self._observe_run(run_command, deadline_now - run_deadline, run)  # type: ignore[arg-type]

    def _observe_run(self, command_code: int, seconds: float, count: int) -> None:
        child = self._durations.get(command_code)
        if child is None:
            self.observe_request(command_code, seconds)
            child, count = self._durations[command_code], count - 1
        child.observe(seconds, count)

    def collect(self, node: CountingNode) -> None:
        """Bring the registry up to date with the node (called before each scrape)."""
        metrics = self.metrics
        for peer in node.peers.values():
            metrics.set_peer_state(peer.host, peer.state)
            metrics.pending_requests.labels(peer.host).set(node.pending.outstanding(peer))
        self._export(node.message_counts, lambda key: metrics.messages.labels(
            key[0], key[1], COMMAND_NAMES.get(key[2], str(key[2])), key[3]
        ))
        self._export(
            {("generated", code): n for code, n in node.counters.generated.items()},
            lambda key: metrics.answers_generated.labels(str(key[1])),
        )
        self._export(
            {("overload", scope): n for scope, n in node.counters.overload.items()},
            lambda key: metrics.overload_rejections.labels(key[1]),
        )
        recorder = getattr(node, "recorder", None)  # [capture] (captures.recorder)
        if recorder is not None:
            dropped = metrics.capture_dropped()  # (registered even at 0: a scrape shows it exists)
            self._export({("capture_dropped",): recorder.dropped}, lambda key: dropped)
        for application in node.applications.values():
            outcomes = getattr(application, "outcomes", None)  # the Cx roles (gateway.applications)
            if outcomes is not None:
                self._export(
                    {("translation", role, result): n for (role, result), n in outcomes().items()},
                    lambda key: metrics.translations.labels(key[1], key[2]),
                )

    def forget(self, host: str, counts: MessageCounts) -> None:
        """Drop a forgotten peer's series and counts (unknown peers come and go: their
        series must not pile up in /metrics)."""
        self.metrics.forget_peer(host)
        for key in [key for key in counts if key[0] == host]:
            del counts[key]
            self._exported.pop(key, None)

    def _export(self, counts: Any, child: Any) -> None:
        for key, total in list(counts.items()):
            delta = total - self._exported[key]
            if delta > 0:
                child(key).inc(delta)
                self._exported[key] = total
