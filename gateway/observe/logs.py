"""Structured logging on twisted.logger: one line per event, as text or JSON.

Code logs with ``twisted.logger.Logger`` and passes the facts as keys::

    log.info("answer forwarded", peer="hss.b.net", command="MAA", hop_by_hop=1, result=2001)

and the observer installed by :func:`setup_logging` writes::

    2026-11-26T15:00:00.000Z INFO peer=hss.b.net command=MAA hbh=0x1 result=2001 answer forwarded
    {"time": "2026-11-26T15:00:00.000Z", "level": "INFO", "peer": "hss.b.net", ..., "message": "answer forwarded"}

The well-known keys (:data:`FIELDS`) come first, in that order, under their short names;
other keys of simple type follow in alphabetical order; ``log_*`` keys are Twisted's own.
Hop-by-hop and End-to-End identifiers are written in hex, as Wireshark shows them.

Twisted's own chatter about its factories and ports ("Factory starting on 3868",
"Starting factory ...", "(TCP Port 3868 Closed)") is dropped (:func:`is_twisted_chatter`):
the node says once what it serves and once that it stopped (gateway/runner.py).
"""

from __future__ import annotations

import datetime
import enum
import json
import re
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from twisted.logger import (
    ILogObserver,
    LogLevel,
    LogPublisher,
    formatEvent,
    globalLogBeginner,
)
from zope.interface import implementer

# event key -> field name, in output order
FIELDS: tuple[tuple[str, str], ...] = (
    ("peer", "peer"),
    ("realm", "realm"),
    ("command", "command"),
    ("hop_by_hop", "hbh"),
    ("end_to_end", "e2e"),
    ("session_id", "session"),
    ("user", "user"),
    ("result", "result"),
)
_HEX_KEYS = frozenset({"hop_by_hop", "end_to_end"})
_KNOWN_KEYS = frozenset(key for key, _ in FIELDS)
# keys of legacy twisted.python.log events, carried in the message instead
_SKIP_KEYS = frozenset({"message", "format", "isError", "system", "why", "failure", "time"})

LEVELS: dict[str, LogLevel] = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "error": LogLevel.error,
    "critical": LogLevel.critical,
}
_PRIORITY = {level: i for i, level in enumerate(LEVELS.values())}
_LABEL = {level: name.upper() for name, level in LEVELS.items()}
FORMATS = ("text", "json")

# Twisted's informational lines about its own plumbing, said for every port and factory:
# the formats of twisted.internet.protocol.Factory.doStart/doStop, and the legacy
# messages of twisted.internet.tcp.Port (startListening, connectionLost)
_CHATTER_FORMATS = frozenset({"Starting factory {factory!r}", "Stopping factory {factory!r}"})
_CHATTER_LEGACY = re.compile(r"\S+ starting on \d+|\((?:TCP|UDP|UNIX|SSL) Port \S+ Closed\)")


def is_twisted_chatter(event: dict[str, Any]) -> bool:
    """An informational event of Twisted's factories and ports, not worth a line."""
    if _PRIORITY.get(event.get("log_level"), 1) > _PRIORITY[LogLevel.info]:
        return False  # a warning or an error is always worth its line
    if event.get("log_format") in _CHATTER_FORMATS:
        return True
    message = event.get("message")
    return (event.get("log_namespace") == "log_legacy" and isinstance(message, tuple) and len(message) == 1
            and isinstance(message[0], str) and _CHATTER_LEGACY.fullmatch(message[0]) is not None)


def _timestamp(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _simple(value: Any) -> Any:
    """A value worth a field (str, number, bool, enum), or None to leave it out."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, str | int | float | bool):
        return value
    return None


def event_fields(event: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(field name, value) pairs of an event, well-known ones first."""
    for key, name in FIELDS:
        value = _simple(event.get(key))
        if value is None:
            continue
        if key in _HEX_KEYS and isinstance(value, int) and not isinstance(value, bool):
            value = f"0x{value:x}"
        yield name, value
    for key in sorted(event):
        if key in _KNOWN_KEYS or key in _SKIP_KEYS or key.startswith("log_"):
            continue
        value = _simple(event[key])
        if value is not None:
            yield key, value


def _text_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if not text or any(c in text for c in ' ="\\\n\t'):
        return json.dumps(text)
    return text


def _message(event: dict[str, Any]) -> str:
    text = formatEvent(event)  # never raises: it reports a broken format in the text
    if not text and "log_failure" in event:
        text = "unhandled error"
    return text


def _traceback(event: dict[str, Any]) -> str | None:
    failure = event.get("log_failure")
    if failure is None:
        return None
    try:
        return failure.getTraceback().rstrip("\n")
    except Exception:  # a failure that cannot render itself still deserves a line
        return repr(failure)


def format_text(event: dict[str, Any]) -> str:
    """``TIME LEVEL key=value ... message``; a traceback follows on indented lines."""
    level = _LABEL.get(event.get("log_level"), "INFO")
    parts = [_timestamp(event.get("log_time", 0.0)), level]
    parts += [f"{name}={_text_value(value)}" for name, value in event_fields(event)]
    message = _message(event).replace("\n", "\n    ")
    if message:
        parts.append(message)
    line = " ".join(parts)
    traceback = _traceback(event)
    if traceback:
        line += "\n    " + traceback.replace("\n", "\n    ")
    return line


def format_json(event: dict[str, Any]) -> str:
    """One JSON object: time, level, the fields, message (and traceback)."""
    record: dict[str, Any] = {
        "time": _timestamp(event.get("log_time", 0.0)),
        "level": _LABEL.get(event.get("log_level"), "INFO"),
    }
    for name, value in event_fields(event):
        record.setdefault(name, value)
    record["message"] = _message(event)
    traceback = _traceback(event)
    if traceback:
        record["traceback"] = traceback
    return json.dumps(record, default=str)


_FORMATTERS = {"text": format_text, "json": format_json}


@implementer(ILogObserver)
class GatewayLogObserver:
    """Writes events at or above ``level`` to ``stream``, one line (or object) each.

    ``level`` and ``fmt`` can be changed while running (SIGHUP reload).
    """

    def __init__(self, level: str = "info", fmt: str = "text", stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.configure(level, fmt)

    def configure(self, level: str, fmt: str) -> None:
        if level.lower() not in LEVELS:
            raise ValueError(f"log level {level!r} is unknown; use one of {', '.join(LEVELS)}")
        if fmt not in _FORMATTERS:
            raise ValueError(f"log format {fmt!r} is unknown; use one of {', '.join(FORMATS)}")
        self.level = level.lower()
        self.fmt = fmt
        self._minimum = _PRIORITY[LEVELS[self.level]]
        self._format = _FORMATTERS[fmt]

    def __call__(self, event: dict[str, Any]) -> None:
        if _PRIORITY.get(event.get("log_level"), 1) < self._minimum or is_twisted_chatter(event):
            return
        try:
            line = self._format(event)
        except Exception as exc:  # never let a log line break the caller
            line = f"{_timestamp(time.time())} ERROR unloggable event ({exc!r}): {event!r:.500}"
        self.stream.write(line + "\n")
        self.stream.flush()


def setup_logging(
    level: str = "info",
    fmt: str = "text",
    stream: TextIO = sys.stderr,
    *,
    publisher: LogPublisher | None = None,
) -> GatewayLogObserver:
    """Install the observer: on ``publisher`` if given (tests), else as the process's log
    target through ``globalLogBeginner`` (call that once; use ``configure`` afterwards).
    """
    observer = GatewayLogObserver(level, fmt, stream)
    if publisher is not None:
        publisher.addObserver(observer)
    else:
        globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    return observer
