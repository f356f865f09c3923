"""A SIP UE over UDP on loopback that registers with IMS-AKA, for tests of a real S-CSCF.

REGISTER as RFC 3261 §10 has it (one Call-ID, CSeq counting up, a new branch per request,
retransmitted as Timer A says until a final response), challenged with RFC 3310
Digest-AKAv1-MD5: the 401's nonce is base64(RAND || AUTN); the UE's ISIM
(:class:`gateway.testing.isim.Isim`) checks AUTN and gives RES, the Digest password
(RFC 3310 §3.3: HA1 = MD5(user ":" realm ":" RES), RES as raw bytes), answered with
qop=auth when the challenge offers it. When SQN is out of range the ISIM gives AUTS and the
UE asks for re-synchronisation (§3.4): the same nonce, auts="base64(AUTS)" and a response
computed with an empty password; the S-CSCF then challenges again with a fresh vector.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol

from gateway.testing.isim import Isim

T1 = 0.5  # RFC 3261 §17.1.1.1: Timer A starts at T1 and doubles


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, list[str]]
    text: str

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


@dataclass
class Outcome:
    """How a registration ended: the final response and what happened on the way."""

    final: Reply
    replies: list[Reply] = field(default_factory=list)  # every final response, in order
    challenges: int = 0  # 401s answered
    resyncs: int = 0  # AUTS sent
    retransmissions: int = 0  # REGISTERs sent again (Timer A) for want of a response
    isim_results: list[str] = field(default_factory=list)  # "ok", "synch failure", "MAC failure"

    @property
    def status(self) -> int:
        return self.final.status


def parse(data: bytes) -> Reply | None:
    """A SIP response (RFC 3261 §7.2), or None for anything else."""
    text = data.decode("utf-8", "replace")
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.split("\r\n")
    match = re.match(r"SIP/2\.0 (\d{3}) ?(.*)", lines[0])
    if not match:
        return None
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Reply(int(match.group(1)), match.group(2), headers, text)


def digest_params(value: str) -> tuple[str, dict[str, str]]:
    """The scheme and parameters of a WWW-Authenticate header (RFC 3261 §25.1 challenge)."""
    scheme, _, rest = value.partition(" ")
    params = {key.lower(): quoted if quoted or plain == "" else plain
              for key, quoted, plain in re.findall(r'(\w[\w-]*)\s*=\s*(?:"([^"]*)"|([^\s,]*))', rest)}
    return scheme, params


def _md5(text: bytes) -> str:
    return hashlib.md5(text).hexdigest()  # noqa: S324 - RFC 2617 Digest is MD5


def digest_response(username: str, realm: str, password: bytes, method: str, uri: str, nonce: str,
                    nc: str = "", cnonce: str = "", qop: str = "") -> str:
    """RFC 2617 §3.2.2.1 request-digest, the password as raw bytes (RFC 3310 §3.3)."""
    ha1 = _md5(f"{username}:{realm}:".encode() + password)
    ha2 = _md5(f"{method}:{uri}".encode())
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
    return _md5(f"{ha1}:{nonce}:{ha2}".encode())


class SipUe(DatagramProtocol):
    """One UE: ``impi``/``impu`` registered at ``realm`` through the S-CSCF at ``server``."""

    def __init__(self, isim: Isim, impi: str, impu: str, realm: str, server: tuple[str, int],
                 request_uri: str | None = None) -> None:
        self.isim, self.impi, self.impu, self.realm, self.server = isim, impi, impu, realm, server
        self.request_uri = request_uri or f"sip:{realm}"
        self.call_id = f"{os.urandom(8).hex()}@127.0.0.1"
        self.tag = os.urandom(4).hex()
        self.cseq = 0
        self.retransmissions = 0  # every REGISTER sent again (Timer A), over the UE's life
        self.port = 0
        self.waiting: dict[str, defer.Deferred[Reply]] = {}  # branch -> final response
        self.provisional: list[Reply] = []
        self.listener: Any = None

    def start(self) -> SipUe:
        self.listener = reactor.listenUDP(0, self, interface="127.0.0.1")
        self.port = self.listener.getHost().port
        return self

    def stop(self) -> defer.Deferred[None] | None:
        return self.listener.stopListening() if self.listener is not None else None

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        reply = parse(data)
        if reply is None:
            return
        via = reply.header("via") or ""
        match = re.search(r"branch=([^;,\s]+)", via)
        if not match:
            return
        if reply.status < 200:
            self.provisional.append(reply)
            return
        waiting = self.waiting.pop(match.group(1), None)
        if waiting is not None and not waiting.called:
            waiting.callback(reply)

    def _request(self, authorization: str, expires: int) -> tuple[str, bytes]:
        self.cseq += 1
        branch = "z9hG4bK" + os.urandom(8).hex()
        contact = f"<sip:{self.impu.split(':', 1)[1].split('@')[0]}@127.0.0.1:{self.port}>"
        lines = [
            f"REGISTER {self.request_uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <{self.impu}>;tag={self.tag}",
            f"To: <{self.impu}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: {contact};expires={expires}",
            f"Expires: {expires}",
            f"Authorization: {authorization}",
            "Supported: path",
            "User-Agent: cxgw-test-ue",
            "Content-Length: 0",
        ]
        return branch, ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def send(self, authorization: str, expires: int = 600, timeout: float = 32 * T1) -> Reply:
        """One REGISTER transaction: retransmitted (Timer A) until its final response."""
        branch, data = self._request(authorization, expires)
        final: defer.Deferred[Reply] = defer.Deferred()
        self.waiting[branch] = final
        interval, deadline = T1, reactor.seconds() + timeout

        def retransmit() -> None:
            nonlocal interval, call
            if final.called:
                return
            if reactor.seconds() >= deadline:
                self.waiting.pop(branch, None)
                final.errback(TimeoutError(f"no final response to REGISTER {self.impu} in {timeout} s"))
                return
            self.transport.write(data, self.server)
            self.retransmissions += 1
            interval = min(interval * 2, 4.0)
            call = reactor.callLater(interval, retransmit)

        self.transport.write(data, self.server)
        call = reactor.callLater(interval, retransmit)
        try:
            return await final
        finally:
            if call.active():
                call.cancel()

    def initial_authorization(self) -> str:
        """TS 24.229 §5.1.1.2.1: the first REGISTER names the IMPI with an empty nonce."""
        return (f'Digest username="{self.impi}", realm="{self.realm}", nonce="", uri="{self.request_uri}", '
                'response=""')

    def answer(self, challenge: Reply, outcome: Outcome) -> str:
        """The Authorization for a 401 (or the re-synchronisation request, RFC 3310 §3.4)."""
        scheme, params = digest_params(challenge.header("www-authenticate") or "")
        if scheme.lower() != "digest":
            raise AssertionError(f"not a Digest challenge: {challenge.header('www-authenticate')}")
        nonce = params["nonce"]
        realm = params.get("realm", self.realm)
        algorithm = params.get("algorithm", "MD5")
        qop = "auth" if "auth" in [value.strip() for value in params.get("qop", "").split(",")] else ""
        cnonce, nc = os.urandom(8).hex(), "00000001"
        extra = ""
        if algorithm.lower().startswith("akav1"):
            raw = base64.b64decode(nonce)
            response = self.isim.challenge(raw[:16], raw[16:32])
            outcome.isim_results.append(response.result)
            if response.result == "ok":
                password = response.res
            elif response.result == "synch failure":
                outcome.resyncs += 1
                password = b""
                extra = f', auts="{base64.b64encode(response.auts).decode()}"'
            else:
                raise AssertionError(f"the ISIM rejects the network: {response.result}")
        else:
            password = b"no-password-known"  # a Digest scheme: the UE has no password to give
        digest = digest_response(self.impi, realm, password, "REGISTER", self.request_uri, nonce, nc, cnonce, qop)
        quality = f', qop={qop}, nc={nc}, cnonce="{cnonce}"' if qop else ""
        return (f'Digest username="{self.impi}", realm="{realm}", nonce="{nonce}", uri="{self.request_uri}", '
                f'response="{digest}", algorithm={algorithm}{quality}{extra}')

    async def register(self, expires: int = 600, rounds: int = 4, timeout: float = 32 * T1) -> Outcome:
        """REGISTER until a final response other than 401 (at most ``rounds`` challenges)."""
        sent_again = self.retransmissions
        reply = await self.send(self.initial_authorization(), expires, timeout)
        outcome = Outcome(reply, [reply])
        while reply.status == 401 and outcome.challenges < rounds:
            outcome.challenges += 1
            reply = await self.send(self.answer(reply, outcome), expires, timeout)
            outcome.replies.append(reply)
            outcome.final = reply
        outcome.retransmissions = self.retransmissions - sent_again
        return outcome
