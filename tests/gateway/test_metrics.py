"""gateway.observe.metrics: counters, gauges, histograms and the text exposition format 0.0.4."""

from __future__ import annotations

import enum
import math
import re

import pytest

from gateway.observe.metrics import (
    CONTENT_TYPE,
    DURATION_BUCKETS,
    Counter,
    GatewayMetrics,
    Registry,
    escape_help,
    escape_label_value,
    format_value,
)


def test_counter_with_labels_exposition():
    registry = Registry()
    c = registry.counter("diameter_messages_total", "Messages.", ("peer", "direction"))
    c.labels("hss.b.net", "in").inc()
    c.labels("hss.b.net", "in").inc(2)
    c.labels("scscf.a.net", "out").inc(0.5)
    assert registry.expose() == (
        "# HELP diameter_messages_total Messages.\n"
        "# TYPE diameter_messages_total counter\n"
        'diameter_messages_total{peer="hss.b.net",direction="in"} 3\n'
        'diameter_messages_total{peer="scscf.a.net",direction="out"} 0.5\n'
    )


def test_unlabelled_metrics():
    registry = Registry()
    registry.counter("c_total", "c").inc()
    g = registry.gauge("g", "g")
    g.set(5)
    g.inc(2)
    g.dec(0.5)
    h = registry.histogram("h_seconds", "h", buckets=(1,))
    h.observe(0.5)
    assert registry.expose() == (
        "# HELP c_total c\n# TYPE c_total counter\nc_total 1\n"
        "# HELP g g\n# TYPE g gauge\ng 6.5\n"
        "# HELP h_seconds h\n# TYPE h_seconds histogram\n"
        'h_seconds_bucket{le="1"} 1\nh_seconds_bucket{le="+Inf"} 1\nh_seconds_sum 0.5\nh_seconds_count 1\n'
    )


def test_metric_without_series_has_only_help_and_type():
    registry = Registry()
    registry.gauge("diameter_pending_requests", "Pending.", ("peer",))
    assert registry.expose() == (
        "# HELP diameter_pending_requests Pending.\n# TYPE diameter_pending_requests gauge\n"
    )


def test_escaping_in_help_and_label_values():
    registry = Registry()
    c = registry.counter("x_total", 'help with \\ backslash\nand "quotes"', ("v",))
    c.labels('a"b\\c\nd').inc()
    text = registry.expose()
    assert '# HELP x_total help with \\\\ backslash\\nand "quotes"\n' in text
    assert 'x_total{v="a\\"b\\\\c\\nd"} 1\n' in text
    assert escape_help("a\\b\nc") == "a\\\\b\\nc"
    assert escape_label_value('"\\\n') == '\\"\\\\\\n'


def test_format_value():
    assert format_value(1.0) == "1" and format_value(0) == "0" and format_value(-2) == "-2"
    assert format_value(0.25) == "0.25" and format_value(1e-4) == "0.0001"
    assert format_value(math.inf) == "+Inf" and format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
    assert format_value(1e20) == "1e+20"


def test_histogram_buckets_are_cumulative_with_inf():
    registry = Registry()
    h = registry.histogram("d_seconds", "d", ("command",), buckets=(0.001, 0.01, 0.1))
    child = h.labels("MAR")
    for value in (0.0005, 0.001, 0.005, 0.05, 0.05, 3.0):
        child.observe(value)
    lines = registry.expose().splitlines()[2:]
    assert lines == [
        'd_seconds_bucket{command="MAR",le="0.001"} 2',  # le: 0.001 itself counts
        'd_seconds_bucket{command="MAR",le="0.01"} 3',
        'd_seconds_bucket{command="MAR",le="0.1"} 5',
        'd_seconds_bucket{command="MAR",le="+Inf"} 6',
        f'd_seconds_sum{{command="MAR"}} {format_value(0.0005 + 0.001 + 0.005 + 0.05 + 0.05 + 3.0)}',
        'd_seconds_count{command="MAR"} 6',
    ]


def test_labels_are_cached_and_accept_non_strings():
    class Cmd(enum.Enum):
        MAR = 303

    registry = Registry()
    c = registry.counter("m_total", "m", ("command", "result"))
    assert c.labels(Cmd.MAR, 2001) is c.labels("MAR", "2001") is c.labels(Cmd.MAR, 2001)
    c.labels(Cmd.MAR, 2001).inc()
    c.labels("MAR", "2001").inc()
    assert registry.expose().endswith('m_total{command="MAR",result="2001"} 2\n')  # one series


def test_remove_and_clear():
    registry = Registry()
    g = registry.gauge("p", "p", ("peer",))
    g.labels("a").set(1)
    g.labels(1).set(2)
    g.remove("1")
    assert [v for v, _ in g.series()] == [("a",)]
    assert g.labels(1).value == 0  # a fresh series
    g.clear()
    assert list(g.series()) == []


def test_misuse_is_reported():
    registry = Registry()
    c = registry.counter("c_total", "c", ("peer",))
    with pytest.raises(ValueError, match="got 2 label values for \\['peer'\\]"):
        c.labels("a", "b")
    with pytest.raises(ValueError, match="use .labels"):
        c.inc()
    with pytest.raises(ValueError, match="only goes up"):
        c.labels("a").inc(-1)
    with pytest.raises(ValueError, match="already registered"):
        registry.counter("c_total", "again")
    with pytest.raises(ValueError, match="metric name"):
        Counter("bad-name", "x")
    with pytest.raises(ValueError, match="label name"):
        Counter("ok", "x", ("__reserved",))
    with pytest.raises(ValueError, match="repeat"):
        Counter("ok", "x", ("a", "a"))
    with pytest.raises(ValueError, match="reserved"):
        registry.histogram("h", "h", ("le",))
    with pytest.raises(ValueError, match="increasing"):
        registry.histogram("h", "h", buckets=(2, 1))
    with pytest.raises(ValueError, match="use .labels"):
        registry.histogram("h2", "h", ("x",)).observe(1)


def test_gateway_metrics_predefined_names_and_types():
    metrics = GatewayMetrics()
    text = metrics.registry.expose()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert types == {
        "diameter_peer_state": "gauge",
        "diameter_messages_total": "counter",
        "diameter_pending_requests": "gauge",
        "diameter_request_duration_seconds": "histogram",
        "diameter_answers_generated_total": "counter",
        "diameter_overload_rejections_total": "counter",
        "cxgw_translations_total": "counter",
    }
    assert metrics.request_duration.bounds == DURATION_BUCKETS
    assert DURATION_BUCKETS[0] == 0.0001 and DURATION_BUCKETS[-1] == 10.0
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_gateway_metrics_usage():
    metrics = GatewayMetrics()
    metrics.messages.labels("hss.b.net", "in", "MAA", "2001").inc()
    metrics.pending_requests.labels("hss.b.net").inc()
    metrics.request_duration.labels("MAR").observe(0.0003)
    metrics.answers_generated.labels(3002).inc()
    metrics.overload_rejections.labels("peer").inc()
    text = metrics.registry.expose()
    assert 'diameter_messages_total{peer="hss.b.net",direction="in",command="MAA",result="2001"} 1' in text
    assert 'diameter_pending_requests{peer="hss.b.net"} 1' in text
    assert 'diameter_request_duration_seconds_bucket{command="MAR",le="0.00025"} 0' in text
    assert 'diameter_request_duration_seconds_bucket{command="MAR",le="0.0005"} 1' in text
    assert 'diameter_request_duration_seconds_bucket{command="MAR",le="+Inf"} 1' in text
    assert 'diameter_answers_generated_total{result="3002"} 1' in text
    assert 'diameter_overload_rejections_total{scope="peer"} 1' in text


def test_peer_state_gauge_marks_only_the_current_state():
    metrics = GatewayMetrics()
    metrics.set_peer_state("hss.b.net", "Wait-Conn-Ack")
    metrics.set_peer_state("hss.b.net", "I-Open")
    metrics.set_peer_state("hss.b.net", "I-Open")
    metrics.set_peer_state("gw.c.net", "Closed")
    samples = [line for line in metrics.registry.expose().splitlines() if line.startswith("diameter_peer_state")]
    assert samples == [
        'diameter_peer_state{peer="hss.b.net",state="Wait-Conn-Ack"} 0',
        'diameter_peer_state{peer="hss.b.net",state="I-Open"} 1',
        'diameter_peer_state{peer="gw.c.net",state="Closed"} 1',
    ]
    metrics.pending_requests.labels("hss.b.net").set(3)
    metrics.messages.labels("hss.b.net", "out", "MAR", "").inc()
    metrics.forget_peer("hss.b.net")
    assert "hss.b.net" not in metrics.registry.expose()
    metrics.set_peer_state("hss.b.net", "Closed")
    assert 'diameter_peer_state{peer="hss.b.net",state="Closed"} 1' in metrics.registry.expose()


def test_exposition_lines_are_well_formed():
    """Every sample line matches the 0.0.4 grammar: name{labels} value."""
    metrics = GatewayMetrics()
    metrics.set_peer_state('we"ird\\peer\n', "Closed")
    metrics.request_duration.labels("MAR").observe(20)
    sample = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? \S+')
    text = metrics.registry.expose()
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.fullmatch(line), line
