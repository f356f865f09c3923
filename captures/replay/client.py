"""The replaying peer: one Diameter connection to the target, on Twisted.

It opens as the capture's client did (the capture's CER, with this connection's
Host-IP-Address and the chosen Origin-Host/-Realm: RFC 6733 §5.3), then sends the
requests (each with a hop-by-hop and an End-to-End id of its own: a second replay must
not look like retransmissions to the target's duplicate detection, RFC 6733 §6.1.3),
matches each answer to its request by hop-by-hop id (§6.2), answers the target's DWR
(RFC 3539) and DPR, and ends with DPR/DPA (§5.4).

Hand-written rather than a gateway DiameterNode: a node needs its peer's identity before
it connects (the target's is whatever its CEA says), answers a request that times out
itself (3002) and drops an answer it did not expect, where a replay must report both as
they are. The framing is the node's (gateway.transport.framing).
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from cx_codec import DecodeError, answer_for, decode, decode_lazy, error_answer_bytes
from cx_codec.commands import DisconnectPeerRequest
from cx_codec.errors import RESULT_CODE_NAMES
from cx_codec.rewrite import rewrite
from gateway.transport.framing import Framer, FramingError

CER, DWR, DPR = 257, 280, 282
ORIGIN_HOST, ORIGIN_REALM, HOST_IP_ADDRESS = (264, 0), (296, 0), (257, 0)
DIAMETER_COMMAND_UNSUPPORTED = 3001
REBOOTING = 0  # Disconnect-Cause (RFC 6733 §5.4.3)


class ReplayError(Exception):
    """The replay cannot go on (connection, CEA); the text is the one line to print."""


@dataclass(slots=True)
class Outgoing:
    """A request to send: its index in the plan and its bytes (ids set when sent)."""

    index: int
    data: bytes
    at: float = 0.0  # seconds after the start (timing original / rate); 0: at once


@dataclass(slots=True)
class Exchanged:
    index: int
    sent: bytes
    sent_at: float
    answer: bytes | None = None
    answered_at: float | None = None


@dataclass(slots=True)
class Outcome:
    """What the connection saw: each request's answer (or none), and what nobody asked for."""

    exchanged: list[Exchanged] = field(default_factory=list)
    unexpected_answers: list[bytes] = field(default_factory=list)
    unexpected_requests: list[bytes] = field(default_factory=list)
    target_identity: str = ""
    closed_early: str | None = None


def host_ip_address(host: str) -> bytes:
    """An Address AVP's data (RFC 6733 §4.3.1: AddressType, then the address)."""
    address = ipaddress.ip_address(host.split("%", 1)[0])
    return (b"\x00\x01" if address.version == 4 else b"\x00\x02") + address.packed


class ReplayClient(Protocol):
    """Sends ``plan`` after CER/CEA; ``done`` fires with the Outcome, or fails with a
    ReplayError. ``window``: requests outstanding at most (all modes). ``timeout``:
    seconds a request waits for its answer."""

    def __init__(
        self, reactor: Any, cer: bytes, origin: tuple[str, str], plan: list[Outgoing], *,
        window: int = 32, timeout: float = 5.0, progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.cer = cer
        self.origin_host, self.origin_realm = origin
        self.plan = plan
        self.window = window
        self.timeout = timeout
        self.progress = progress
        self.done: defer.Deferred[Outcome] = defer.Deferred()
        self.outcome = Outcome()
        self.framer = Framer(1 << 24)
        self.open = False
        self.next_plan = 0
        self.waiting: dict[int, tuple[Exchanged, Any]] = {}  # hop-by-hop -> (exchange, its timer)
        self.hop_by_hop = itertools.count(random.getrandbits(31) + 1)
        self.end_to_end = itertools.count(((int(time.time()) & 0xFFF) << 20) | random.getrandbits(20))
        self.started = 0.0
        self.scheduled: Any = None
        self.finishing = False
        self.dpr_timer: Any = None

    # -- Twisted -------------------------------------------------------------------------
    def connectionMade(self) -> None:
        local = self.transport.getHost()
        values = {ORIGIN_HOST: self.origin_host.encode(), ORIGIN_REALM: self.origin_realm.encode()}
        try:
            values[HOST_IP_ADDRESS] = host_ip_address(local.host)
        except (AttributeError, ValueError):
            pass
        cer = rewrite(self.cer, values, optional=(HOST_IP_ADDRESS,), hop_by_hop=next(self.hop_by_hop))
        self.transport.write(cer)
        self.cea_timer = self.reactor.callLater(self.timeout, self._fail, f"no CEA within {self.timeout:g} s")

    def dataReceived(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except FramingError as error:
            self._fail(f"the target sent something that is not Diameter: {error.reason}")
            return
        for message in messages:
            if message[4] & 0x80:
                self._request(message)
            elif not self.open:
                self._cea(message)
            else:
                self._answer(message)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        for timer in (getattr(self, "cea_timer", None), self.scheduled, self.dpr_timer):
            if timer is not None and timer.active():
                timer.cancel()
        for _, timer in self.waiting.values():
            if timer.active():
                timer.cancel()
        if not self.finishing and not self.done.called:
            self.outcome.closed_early = "the target closed the connection"
            self._missing_all()
        if not self.done.called:
            self.done.callback(self.outcome)

    # -- capabilities (RFC 6733 §5.3) ------------------------------------------------------
    def _cea(self, message: bytes) -> None:
        if self.cea_timer.active():
            self.cea_timer.cancel()
        try:
            cea = decode_lazy(message)
            result = cea.result_code
            host = str(cea.get("Origin-Host") or "?")
            reason = cea.get("Error-Message")
        except (DecodeError, KeyError, TypeError) as error:
            self._fail(f"unreadable CEA: {error}")
            return
        if int.from_bytes(message[5:8], "big") != CER:
            self._fail(f"expected a CEA, got command {int.from_bytes(message[5:8], 'big')}")
            return
        if result != 2001:
            name = RESULT_CODE_NAMES.get(result or 0, "")
            self._fail(f"{host} refused the capabilities exchange: CEA Result-Code {result} {name}"
                       + (f" ({reason})" if reason else "")
                       + f"; the target must know Origin-Host {self.origin_host} (or give --origin-host/--origin-realm)")
            return
        self.open = True
        self.outcome.target_identity = host
        self.started = self.reactor.seconds()
        self._send_due()

    # -- requests ----------------------------------------------------------------------------
    def _send_due(self) -> None:
        """Send what is due while the window has room; schedule the next one."""
        self.scheduled = None
        now = self.reactor.seconds() - self.started
        while self.next_plan < len(self.plan) and len(self.waiting) < self.window:
            outgoing = self.plan[self.next_plan]
            if outgoing.at > now:
                self.scheduled = self.reactor.callLater(outgoing.at - now, self._send_due)
                return
            self.next_plan += 1
            self._send(outgoing)
        self._maybe_finish()

    def _send(self, outgoing: Outgoing) -> None:
        hop_by_hop = next(self.hop_by_hop) & 0xFFFFFFFF
        end_to_end = next(self.end_to_end) & 0xFFFFFFFF
        data = outgoing.data
        data = data[:12] + hop_by_hop.to_bytes(4, "big") + end_to_end.to_bytes(4, "big") + data[20:]
        exchanged = Exchanged(outgoing.index, data, self.reactor.seconds())
        self.outcome.exchanged.append(exchanged)
        timer = self.reactor.callLater(self.timeout, self._timed_out, hop_by_hop)
        self.waiting[hop_by_hop] = (exchanged, timer)
        self.transport.write(data)

    def _answer(self, message: bytes) -> None:
        entry = self.waiting.pop(int.from_bytes(message[12:16], "big"), None)
        if entry is None:
            if self.finishing and int.from_bytes(message[5:8], "big") == DPR:
                self.transport.loseConnection()  # our DPR answered (RFC 6733 §5.4)
                return
            self.outcome.unexpected_answers.append(message)
            return
        exchanged, timer = entry
        timer.cancel()
        exchanged.answer, exchanged.answered_at = message, self.reactor.seconds()
        self._tick()
        if self.scheduled is None:
            self._send_due()

    def _timed_out(self, hop_by_hop: int) -> None:
        self.waiting.pop(hop_by_hop, None)  # its answer, if it comes, is unexpected
        self._tick()
        if self.scheduled is None:
            self._send_due()

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress(len(self.outcome.exchanged) - len(self.waiting), len(self.plan))

    def _request(self, message: bytes) -> None:
        """The target's requests: DWR and DPR answered (RFC 3539, RFC 6733 §5.4), any
        other kept as unexpected and answered 3001 (a replaying peer serves nothing)."""
        code = int.from_bytes(message[5:8], "big")
        try:
            if code in (DWR, DPR):
                answer = answer_for(decode(message, validate=False), origin_host=self.origin_host,
                                    origin_realm=self.origin_realm, result_code=2001).encode()
            else:
                self.outcome.unexpected_requests.append(message)
                answer = error_answer_bytes(message, DIAMETER_COMMAND_UNSUPPORTED, origin_host=self.origin_host,
                                            origin_realm=self.origin_realm)
        except DecodeError:
            self.outcome.unexpected_requests.append(message)
            return
        self.transport.write(answer)
        if code == DPR:
            self.finishing = True  # the target leaves; what is outstanding stays unanswered

    # -- the end ---------------------------------------------------------------------------
    def _maybe_finish(self) -> None:
        if self.finishing or self.next_plan < len(self.plan) or self.waiting:
            return
        self.finishing = True
        dpr = DisconnectPeerRequest(hop_by_hop=next(self.hop_by_hop) & 0xFFFFFFFF, end_to_end=next(self.end_to_end) & 0xFFFFFFFF,
                                    origin_host=self.origin_host, origin_realm=self.origin_realm,
                                    disconnect_cause=REBOOTING).encode()
        self.transport.write(dpr)
        self.dpr_timer = self.reactor.callLater(2.0, self.transport.loseConnection)

    def _missing_all(self) -> None:
        self.waiting.clear()
        self.next_plan = len(self.plan)

    def _fail(self, text: str) -> None:
        if not self.done.called:
            self.done.errback(ReplayError(text))
        self.finishing = True
        self.transport.loseConnection()


@defer.inlineCallbacks
def replay(reactor: Any, host: str, port: int, client: ReplayClient, connect_timeout: float = 5.0) -> Any:
    """Connect ``client`` to HOST:PORT and run it; the Outcome, or ReplayError."""
    from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
    from twisted.internet.error import ConnectError, DNSLookupError

    endpoint = HostnameEndpoint(reactor, host, port, timeout=connect_timeout)
    try:
        yield connectProtocol(endpoint, client)
    except (ConnectError, DNSLookupError) as error:
        text = getattr(error, "osError", None) or error.__class__.__name__
        raise ReplayError(f"cannot connect to {host}:{port}: {_reason(error, text)}") from None
    outcome = yield client.done
    return outcome


def _reason(error: Exception, fallback: Any) -> str:
    text = str(error).strip().rstrip(".")
    return text or str(fallback)


__all__ = ["Exchanged", "Outcome", "Outgoing", "ReplayClient", "ReplayError", "replay"]
