"""gateway.observe.logs: text and JSON lines from twisted.logger events."""

from __future__ import annotations

import enum
import io
import json
import re

import pytest
import pytest_twisted
from twisted.logger import Logger, LogLevel, LogPublisher, formatEvent

from gateway.observe.logs import (
    GatewayLogObserver,
    format_json,
    format_text,
    is_twisted_chatter,
    setup_logging,
)

T = 1795705200.0  # 2026-11-26T15:00:00Z


def event(fmt="answer forwarded", level=LogLevel.info, **keys):
    return {"log_format": fmt, "log_level": level, "log_time": T, "log_namespace": "gateway.x", **keys}


@pytest.fixture
def capture():
    publisher = LogPublisher()
    stream = io.StringIO()
    return publisher, stream, Logger(namespace="gateway.test", observer=publisher)


def test_text_line_layout():
    line = format_text(event(peer="hss.b.net", command="MAR", hop_by_hop=1, result=2001))
    assert line == "2026-11-26T15:00:00.000Z INFO peer=hss.b.net command=MAR hbh=0x1 result=2001 answer forwarded"


def test_known_fields_first_in_order_then_others_sorted():
    line = format_text(
        event(result=2001, zone="z", peer="p", end_to_end=0xABCDEF01, realm="b.net", alpha=1.5, flag=True,
              user="impi@b.net", session_id="gw;1;2", hop_by_hop=0x10, command="MAA")
    )
    assert line == (
        "2026-11-26T15:00:00.000Z INFO peer=p realm=b.net command=MAA hbh=0x10 e2e=0xabcdef01 "
        "session=gw;1;2 user=impi@b.net result=2001 alpha=1.5 flag=true zone=z answer forwarded"
    )


def test_text_quotes_values_with_spaces_and_skips_objects():
    line = format_text(event(reason="no route to realm", empty="", obj=object(), items=[1, 2], peer=None))
    assert line == '2026-11-26T15:00:00.000Z INFO empty="" reason="no route to realm" answer forwarded'


def test_message_formats_from_the_keys_and_enums_show_names():
    class State(enum.Enum):
        I_OPEN = 1

    line = format_text(event("peer {peer} is {state.name}", peer="hss.b.net", state=State.I_OPEN))
    assert line.endswith("INFO peer=hss.b.net state=I_OPEN peer hss.b.net is I_OPEN")


def test_levels_and_milliseconds():
    assert " WARN " in format_text(event(level=LogLevel.warn))
    assert " ERROR " in format_text(event(level=LogLevel.error))
    assert " DEBUG " in format_text(event(level=LogLevel.debug))
    assert format_text({**event(), "log_time": T + 0.2345}).startswith("2026-11-26T15:00:00.234Z ")


def test_json_same_fields():
    record = json.loads(format_json(event(peer="hss.b.net", command="MAR", hop_by_hop=1, result=2001, extra="x y")))
    assert record == {
        "time": "2026-11-26T15:00:00.000Z",
        "level": "INFO",
        "peer": "hss.b.net",
        "command": "MAR",
        "hbh": "0x1",
        "result": 2001,
        "extra": "x y",
        "message": "answer forwarded",
    }
    assert list(record)[:3] == ["time", "level", "peer"]


def test_text_through_twisted_logger(capture):
    publisher, stream, log = capture
    setup_logging("info", "text", stream, publisher=publisher)
    log.info("MAA {result} to {peer}", peer="scscf.a.net", command="MAA", hop_by_hop=0x2A, result=2001)
    log.debug("not shown", peer="x")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO peer=scscf.a.net command=MAA hbh=0x2a result=2001 "
        r"MAA 2001 to scscf.a.net",
        lines[0],
    )


def test_json_through_twisted_logger(capture):
    publisher, stream, log = capture
    setup_logging("debug", "json", stream, publisher=publisher)
    log.debug("decoded", peer="hss.b.net", command="MAR")
    log.warn("slow answer", peer="hss.b.net", seconds=2.5)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["level"], r["message"], r["peer"]) for r in records] == [
        ("DEBUG", "decoded", "hss.b.net"),
        ("WARN", "slow answer", "hss.b.net"),
    ]
    assert records[1]["seconds"] == 2.5


def test_level_filter_and_reconfigure(capture):
    publisher, stream, log = capture
    observer = setup_logging("warn", "text", stream, publisher=publisher)
    log.info("quiet")
    log.warn("loud")
    log.error("louder")
    observer.configure("error", "json")
    log.warn("now quiet")
    log.critical("critical")
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 2)[1] for line in lines[:2]] == ["WARN", "ERROR"]
    assert json.loads(lines[2])["level"] == "CRITICAL" and len(lines) == 3


def test_failure_traceback_in_both_formats(capture):
    publisher, stream, log = capture
    observer = setup_logging("info", "text", stream, publisher=publisher)
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.failure("decode failed", peer="hss.b.net")
    observer.configure("info", "json")
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.failure("decode failed", peer="hss.b.net")
    text, record = stream.getvalue().split("\n", 1)[0], stream.getvalue()
    assert text.endswith("CRITICAL peer=hss.b.net decode failed")
    assert "\n    Traceback (most recent call last):" in record
    assert "ZeroDivisionError" in json.loads(record.splitlines()[-1])["traceback"]


def test_multiline_message_stays_one_record():
    line = format_text(event("first\nsecond"))
    assert line.endswith("INFO first\n    second")
    assert "\n" not in format_json(event("first\nsecond"))


def test_broken_format_and_unloggable_event_do_not_raise():
    stream = io.StringIO()
    observer = GatewayLogObserver("debug", "text", stream)
    observer(event("{missing} key"))
    observer({"log_level": LogLevel.info, "log_time": "not a time"})
    lines = stream.getvalue().splitlines()
    assert "Unable to format event" in lines[0]
    assert "ERROR unloggable event (TypeError(" in lines[1]


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="log level 'loud' is unknown"):
        GatewayLogObserver("loud", "text", io.StringIO())
    with pytest.raises(ValueError, match="log format 'xml' is unknown"):
        GatewayLogObserver("info", "xml", io.StringIO())


# --- Twisted's chatter about its factories and ports is not the operator's business


@pytest_twisted.ensureDeferred
async def test_twisted_factory_and_port_lines_are_dropped():
    from twisted.internet import reactor
    from twisted.internet.protocol import Factory, Protocol
    from twisted.logger import globalLogPublisher

    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        factory = Factory.forProtocol(Protocol)
        factory.noisy = True  # the default of every Factory: "Starting factory ..."
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        await port.stopListening()
    finally:
        globalLogPublisher.removeObserver(events.append)
    said = [formatEvent(event) for event in events]
    assert any(re.fullmatch(r"Factory starting on \d+", text) for text in said), said
    assert any(text.startswith("Starting factory ") for text in said), said
    assert any(re.fullmatch(r"\(TCP Port \d+ Closed\)", text) for text in said), said
    stream = io.StringIO()
    observer = GatewayLogObserver("debug", "text", stream)
    for chatter in events:
        observer(chatter)
    assert stream.getvalue() == ""


def test_chatter_filter_keeps_everything_else():
    legacy = {"log_namespace": "log_legacy", "log_format": "{log_text}", "log_level": LogLevel.info,
              "log_time": T, "message": ("_QuietSite starting on 9090",), "log_text": "_QuietSite starting on 9090"}
    assert is_twisted_chatter(legacy)
    assert not is_twisted_chatter({**legacy, "log_level": LogLevel.warn})  # a warning is always said
    other = {**legacy, "message": ("peer hss.b.net starting on its own",), "log_text": "x"}
    assert not is_twisted_chatter(other)
    assert not is_twisted_chatter(event("Factory starting on 3868"))  # our own namespace
    assert not is_twisted_chatter(event("listening on {address}:{port}", address="127.0.0.1", port=3868))
