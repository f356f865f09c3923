"""What the node counts, and how it reaches Prometheus (gateway.observe.metrics).

The relay path only bumps plain counters (a dict keyed by (peer, direction, command,
result)) and observes latencies; ``NodeMetrics.collect`` copies everything into the
registry when /metrics is scraped, so a scrape costs the node nothing between scrapes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from cx_codec.errors import DecodeError
from cx_codec.rewrite import top_level
from gateway.observe.metrics import GatewayMetrics

RESULT_CODE = (268, 0)
EXPERIMENTAL_RESULT = (297, 0)
_RESULT_AVPS = frozenset({RESULT_CODE})
_EXPERIMENTAL = frozenset({EXPERIMENTAL_RESULT})
_EXPERIMENTAL_RESULT_CODE = (298).to_bytes(4, "big")

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


def answer_result(data: bytes) -> str:
    """Result-Code of an answer as a label: "2001", or "e5001" for Experimental-Result-Code
    (same numbers, other meanings: kept apart), or "" if it has neither."""
    try:
        found = top_level(data, _RESULT_AVPS, complete=False)
        if found:
            return str(int.from_bytes(found[RESULT_CODE][0], "big"))
        grouped = top_level(data, _EXPERIMENTAL, complete=False).get(EXPERIMENTAL_RESULT)
    except DecodeError:
        return "malformed"
    if grouped:
        inner = grouped[0]
        index = inner.find(_EXPERIMENTAL_RESULT_CODE)
        if index >= 0 and len(inner) >= index + 12:
            return "e" + str(int.from_bytes(inner[index + 8 : index + 12], "big"))
    return ""


class MessageCounts(Counter):
    """(peer, direction, command code, result label) -> messages."""

    def count(self, peer: str, direction: str, command: int, result: str) -> None:
        self[(peer, direction, command, result)] += 1


class CountingNode(Protocol):
    """What is exported of a node (gateway.node.DiameterNode)."""

    peers: dict[str, Any]
    pending: Any  # gateway.routing.pending.PendingRequests: outstanding(peer)
    message_counts: MessageCounts
    counters: Any  # gateway.node.Counters


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
