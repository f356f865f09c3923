"""A small Prometheus registry: Counter, Gauge, Histogram with labels, text format 0.0.4.

No dependency on prometheus_client. The hot path is cheap: ``metric.labels(*values)``
is one dict lookup keyed by the tuple of label values (keep the child if you call it in a
loop), and ``inc()`` / ``set()`` are one attribute update; ``observe()`` is a bisect over
the bucket bounds. Rendering (:meth:`Registry.expose`) does the work: cumulative buckets,
escaping, sorting nothing (series appear in creation order).

The metrics the Diameter node updates are created together by :class:`GatewayMetrics`.
Exposition format: https://prometheus.io/docs/instrumenting/exposition_formats/ (0.0.4).
"""

from __future__ import annotations

import bisect
import enum
import math
import re
from collections.abc import Iterable, Iterator, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# 100 us to 10 s: a local answer takes tens of microseconds, a forwarded one across an
# interconnect tens of milliseconds, and Tx (the request timeout) is a few seconds.
DURATION_BUCKETS = (
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: integers without ".0", +Inf/-Inf/NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def escape_help(text: str) -> str:
    """HELP text: backslash and line feed escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label_value(text: str) -> str:
    """Label values: backslash, double quote and line feed escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label_value(value: object) -> str:
    """A label value from a str, an enum member (its name) or anything else (str())."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    return str(value)


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


class _Metric:
    """A metric family: its name, help, label names and one child per label-value tuple."""

    kind = "untyped"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"metric name {name!r} is invalid; use [a-zA-Z_:][a-zA-Z0-9_:]*")
        for label in labelnames:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(
                    f"{name}: label name {label!r} is invalid; use [a-zA-Z_][a-zA-Z0-9_]*"
                )
        if len(set(labelnames)) != len(labelnames):
            raise ValueError(f"{name}: label names {list(labelnames)} repeat; give each once")
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], object] = {}
        self._default = None if labelnames else self.labels()

    def labels(self, *values: object) -> object:
        """The child for these label values, created at first use (see :func:`label_value`)."""
        child = self._children.get(values)  # the fast path: values already seen
        if child is not None:
            return child
        if len(values) != len(self.labelnames):
            raise ValueError(
                f"{self.name}: got {len(values)} label values for {list(self.labelnames)}; "
                f"pass one value per label"
            )
        key = tuple(label_value(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        self._children[values] = child  # also under the caller's (non-str) values
        return child

    def remove(self, *values: object) -> None:
        """Forget one series (a peer removed on reload)."""
        key = tuple(label_value(v) for v in values)
        child = self._children.pop(key, None)
        for other in [k for k, c in self._children.items() if c is child]:
            del self._children[other]

    def clear(self) -> None:
        self._children.clear()
        if not self.labelnames:
            self._default = self.labels()

    def series(self) -> Iterator[tuple[tuple[str, ...], object]]:
        """(label values, child) once per series, in creation order."""
        seen: set[int] = set()
        for key, child in self._children.items():
            if id(child) not in seen and all(isinstance(v, str) for v in key):
                seen.add(id(child))
                yield key, child

    def _new_child(self) -> object:  # each metric kind provides its own
        raise TypeError(f"{type(self).__name__} is abstract: use Counter, Gauge or Histogram")

    def _samples(self, values: tuple[str, ...], child: object) -> Iterable[str]:
        raise TypeError(f"{type(self).__name__} is abstract: use Counter, Gauge or Histogram")

    def expose(self) -> str:
        lines = [
            f"# HELP {self.name} {escape_help(self.documentation)}",
            f"# TYPE {self.name} {self.kind}",
        ]
        for values, child in self.series():
            lines.extend(self._samples(values, child))
        return "\n".join(lines) + "\n"


class CounterChild:
    """One counter series; only goes up."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"a counter only goes up; inc({amount}) is negative")
        self.value += amount


class GaugeChild:
    """One gauge series; goes up and down."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramChild:
    """One histogram series: per-bucket counts (made cumulative when rendered), sum, count."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        # le is "less than or equal": a value equal to a bound falls in that bucket
        self.counts[bisect.bisect_left(self.bounds, value)] += times
        self.sum += value * times
        self.count += times

    def cumulative(self) -> list[int]:
        total, result = 0, []
        for n in self.counts:
            total += n
            result.append(total)
        return result


class Counter(_Metric):
    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def labels(self, *values: object) -> CounterChild:  # type: ignore[override]
        return super().labels(*values)  # type: ignore[return-value]

    def inc(self, amount: float = 1.0) -> None:
        """For a counter without labels."""
        self._unlabelled().inc(amount)

    def _unlabelled(self) -> CounterChild:
        if self._default is None:
            raise ValueError(f"{self.name} has labels {list(self.labelnames)}; use .labels(...)")
        return self._default  # type: ignore[return-value]

    def _samples(self, values: tuple[str, ...], child: object) -> Iterable[str]:
        assert isinstance(child, CounterChild)
        yield f"{self.name}{_label_text(self.labelnames, values)} {format_value(child.value)}"


class Gauge(_Metric):
    kind = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def labels(self, *values: object) -> GaugeChild:  # type: ignore[override]
        return super().labels(*values)  # type: ignore[return-value]

    def set(self, value: float) -> None:
        """For a gauge without labels."""
        self._unlabelled().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._unlabelled().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._unlabelled().dec(amount)

    def _unlabelled(self) -> GaugeChild:
        if self._default is None:
            raise ValueError(f"{self.name} has labels {list(self.labelnames)}; use .labels(...)")
        return self._default  # type: ignore[return-value]

    def _samples(self, values: tuple[str, ...], child: object) -> Iterable[str]:
        assert isinstance(child, GaugeChild)
        yield f"{self.name}{_label_text(self.labelnames, values)} {format_value(child.value)}"


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"{name}: buckets {list(buckets)} must be increasing and not empty")
        if "le" in labelnames:
            raise ValueError(f"{name}: 'le' is reserved for histogram buckets; rename the label")
        self.bounds = bounds
        self._le = tuple(format_value(b) for b in bounds) + ("+Inf",)
        super().__init__(name, documentation, labelnames)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def labels(self, *values: object) -> HistogramChild:  # type: ignore[override]
        return super().labels(*values)  # type: ignore[return-value]

    def observe(self, value: float) -> None:
        """For a histogram without labels."""
        if self._default is None:
            raise ValueError(f"{self.name} has labels {list(self.labelnames)}; use .labels(...)")
        self._default.observe(value)  # type: ignore[attr-defined]

    def _samples(self, values: tuple[str, ...], child: object) -> Iterable[str]:
        assert isinstance(child, HistogramChild)
        names = (*self.labelnames, "le")
        for le, total in zip(self._le, child.cumulative(), strict=True):
            yield f"{self.name}_bucket{_label_text(names, (*values, le))} {total}"
        labels = _label_text(self.labelnames, values)
        yield f"{self.name}_sum{labels} {format_value(child.sum)}"
        yield f"{self.name}_count{labels} {child.count}"


class Registry:
    """The metrics one node exposes, rendered in registration order."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def register(self, metric: _Metric) -> _Metric:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered; register it once")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        return self.register(Counter(name, documentation, labelnames))  # type: ignore[return-value]

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self.register(Gauge(name, documentation, labelnames))  # type: ignore[return-value]

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> Histogram:
        metric = Histogram(name, documentation, labelnames, buckets)
        return self.register(metric)  # type: ignore[return-value]

    def get(self, name: str) -> _Metric | None:
        return self._metrics.get(name)

    def expose(self) -> str:
        """All metrics in the text exposition format 0.0.4."""
        return "".join(metric.expose() for metric in self._metrics.values())


class GatewayMetrics:
    """The metrics the Diameter node updates, created in one registry."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else Registry()
        r = self.registry
        self.peer_state = r.gauge(
            "diameter_peer_state",
            "RFC 6733 §5.6 peer state: 1 for the state the peer is in, 0 for states it left.",
            ("peer", "state"),
        )
        self.messages = r.counter(
            "diameter_messages_total",
            "Diameter messages sent (direction=out) and received (direction=in).",
            ("peer", "direction", "command", "result"),
        )
        self.pending_requests = r.gauge(
            "diameter_pending_requests",
            "Requests sent to the peer and not answered yet.",
            ("peer",),
        )
        self.request_duration = r.histogram(
            "diameter_request_duration_seconds",
            "Time from receiving a request to sending its answer.",
            ("command",),
            DURATION_BUCKETS,
        )
        self.answers_generated = r.counter(
            "diameter_answers_generated_total",
            "Answers this node generated itself (errors, local answers), by Result-Code.",
            ("result",),
        )
        self.overload_rejections = r.counter(
            "diameter_overload_rejections_total",
            "Requests refused because a limit was reached (scope=peer|node|connections).",
            ("scope",),
        )
        self.translations = r.counter(
            "cxgw_translations_total",
            "Cx requests of migrated users by role (partner, primary) and outcome: forwarded or "
            "answered, or the Experimental-Result-Code of a refusal (5001, 5002, 5006).",
            ("role", "result"),
        )
        self._peer_states: dict[str, str] = {}

    def capture_dropped(self) -> Counter:
        """``cxgw_capture_dropped_total``, registered when first asked for: exported only by
        a node that records ([capture], captures.recorder)."""
        metric = self.registry.get("cxgw_capture_dropped_total")
        if metric is None:
            metric = self.registry.counter(
                "cxgw_capture_dropped_total",
                "Reads and writes of Diameter connections not recorded: the [capture] buffer was full.",
            )
        return metric  # type: ignore[return-value]

    def set_peer_state(self, peer: str, state: str) -> None:
        """Mark ``state`` as the peer's current state (1) and its previous one as left (0)."""
        previous = self._peer_states.get(peer)
        if previous == state:
            return
        if previous is not None:
            self.peer_state.labels(peer, previous).set(0)
        self.peer_state.labels(peer, state).set(1)
        self._peer_states[peer] = state

    def forget_peer(self, peer: str) -> None:
        """Drop every series of a peer removed from the configuration."""
        self._peer_states.pop(peer, None)
        for metric in (self.peer_state, self.messages, self.pending_requests):
            for values in [v for v, _ in metric.series() if v[0] == peer]:
                metric.remove(*values)
