"""A simulated partner S-CSCF: a Diameter client peer of the partner core (TR 23.781 steps 15-25).

It does what an S-CSCF does with its HSS over Cx, and no more: the capabilities exchange
(RFC 6733 §5.3, advertising Cx), a Multimedia-Auth-Request for the identities the UE
registered with (TS 29.229 §6.1.7), the comparison of the UE's RES with the XRES of the
answer (TS 33.203 §6.1), a Server-Assignment-Request once the user is authenticated
(TS 29.228 §6.1.2), and a Disconnect-Peer-Request at the end (RFC 6733 §5.4). Device
watchdog requests from the gateway are answered (RFC 3539).

Blocking sockets on purpose: the demo is a straight sequence of request/answer pairs, and
the gateways under it are real processes with their own reactors.
"""

from __future__ import annotations

import itertools
import socket
from dataclasses import dataclass

from cx_codec import Message, answer_for, decode, new_request
from cx_codec.commands import (
    CX_APPLICATION,
    MultimediaAuthRequest,
    ServerAssignmentRequest,
    new_session_id,
)
from gateway.transport.framing import Framer

CER, DWR, DPR = 257, 280, 282
AKA = "Digest-AKAv1-MD5"
REGISTRATION = 1  # Server-Assignment-Type (TS 29.229 §6.3.15)


class ScscfError(Exception):
    """The partner core did not behave as an HSS should; the message says how."""


@dataclass(frozen=True, slots=True)
class Vector:
    """One SIP-Auth-Data-Item of an MAA (TS 29.229 §6.3.13)."""

    rand: bytes
    autn: bytes
    xres: bytes
    ck: bytes
    ik: bytes


def result_of(answer: Message) -> tuple[str, int]:
    """("Result-Code" or "Experimental-Result-Code", value): the two share numbers with
    different meanings (RFC 6733 §7.1 vs TS 29.229 §6.2), so keep which one it was."""
    if answer.get("Result-Code") is not None:
        return "Result-Code", int(answer["Result-Code"])
    experimental = answer.find("Experimental-Result")
    if experimental is not None:
        return "Experimental-Result-Code", int(experimental.get("Experimental-Result-Code"))
    raise ScscfError("an answer with neither Result-Code nor Experimental-Result (RFC 6733 §7.1)")


def vectors_of(answer: Message) -> list[Vector]:
    vectors = []
    for item in answer.find_all("SIP-Auth-Data-Item"):
        authenticate = bytes(item.get("SIP-Authenticate"))
        vectors.append(Vector(authenticate[:16], authenticate[16:32], bytes(item.get("SIP-Authorization")),
                              bytes(item.get("Confidentiality-Key")), bytes(item.get("Integrity-Key"))))
    return vectors


class SimulatedScscf:
    def __init__(self, host: str, realm: str, server_name: str, timeout: float = 10.0) -> None:
        self.host, self.realm, self.server_name, self.timeout = host, realm, server_name, timeout
        self.sock: socket.socket | None = None
        self.framer = Framer(1 << 24)
        self.pending: list[bytes] = []
        self.ids = itertools.count(1)

    def connect(self, address: str, port: int) -> Message:
        """Connect and exchange capabilities; the CEA (2001 or ScscfError)."""
        self.sock = socket.create_connection((address, port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hop = next(self.ids)
        cea = self._exchange(new_request(
            "Capabilities-Exchange-Request", hop_by_hop=hop, end_to_end=hop, origin_host=self.host,
            origin_realm=self.realm, host_ip_address=["127.0.0.1"], vendor_id=0, product_name="cxgw demo S-CSCF",
            vendor_specific_application_id=[CX_APPLICATION]).encode(), CER)
        if result_of(cea) != ("Result-Code", 2001):
            raise ScscfError(f"the partner core refused our CER: {result_of(cea)}")
        return cea

    def mar(self, impi: str, impu: str, *, scheme: str = AKA, authorization: bytes | None = None,
            count: int = 1) -> Message:
        """A Multimedia-Auth-Request as an S-CSCF sends it at a registration: to its own
        realm, no Destination-Host (docs/interop.md, Kamailio's)."""
        item: dict[str, object] = {"sip_authentication_scheme": scheme}
        if authorization is not None:
            item["sip_authorization"] = authorization
        hop = next(self.ids)
        return self._exchange(MultimediaAuthRequest(
            hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(self.host), origin_host=self.host,
            origin_realm=self.realm, destination_realm=self.realm, user_name=impi, public_identity=impu,
            sip_auth_data_item=item, sip_number_auth_items=count, server_name=self.server_name,
        ).encode(), 303)

    def sar(self, impi: str, impu: str) -> Message:
        hop = next(self.ids)
        return self._exchange(ServerAssignmentRequest(
            hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(self.host), origin_host=self.host,
            origin_realm=self.realm, destination_realm=self.realm, user_name=impi, public_identity=[impu],
            server_name=self.server_name, server_assignment_type=REGISTRATION, user_data_already_available=0,
        ).encode(), 301)

    def close(self) -> None:
        """DPR (DO_NOT_WANT_TO_TALK_TO_YOU), wait for the DPA, close."""
        if self.sock is None:
            return
        try:
            hop = next(self.ids)
            self._exchange(new_request("Disconnect-Peer-Request", hop_by_hop=hop, end_to_end=hop,
                                       origin_host=self.host, origin_realm=self.realm,
                                       disconnect_cause=2).encode(), DPR)
        except (OSError, ScscfError):
            pass  # the peer went first: nothing more to say to it
        finally:
            self.sock.close()
            self.sock = None

    # -------------------------------------------------------------------------------------------

    def _exchange(self, request: bytes, code: int) -> Message:
        assert self.sock is not None, "connect() first"
        self.sock.sendall(request)
        hop = request[12:16]
        while True:
            raw = self._next()
            flags, command = raw[4], int.from_bytes(raw[5:8], "big")
            if flags & 0x80:  # a request from the gateway: DWR is answered, anything else is a fault
                if command != DWR:
                    raise ScscfError(f"the partner core sent an unexpected request (command {command})")
                self.sock.sendall(answer_for(decode(raw), origin_host=self.host, origin_realm=self.realm,
                                             result_code=2001).encode())
                continue
            if command != code or raw[12:16] != hop:
                raise ScscfError(f"an answer to another request (command {command}) instead of ours ({code})")
            return decode(raw)  # strictly: what the S-CSCF gets must be valid

    def _next(self) -> bytes:
        assert self.sock is not None
        while not self.pending:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise ScscfError(f"no answer from the partner core within {self.timeout:g} s") from None
            if not data:
                raise ScscfError("the partner core closed the connection")
            self.pending.extend(self.framer.feed(data))
        return self.pending.pop(0)
