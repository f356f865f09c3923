"""`cxgw send HOST:PORT (--sample NAME | FILE | -)`: check a Diameter peer by hand.

Connects (TCP, or TLS from the first byte with ``--tls-cert/--tls-key/--ca``, RFC 6733
§13), exchanges CER/CEA as ``--origin-host``/``--origin-realm``, sends each request and
waits for its answer, prints the answer as ``cxgw decode`` prints it with its result, and
ends with DPR/DPA (RFC 6733 §5.4). Exit status 0 when every answer is a success (2xxx),
1 on an error answer or when the peer cannot be reached, 2 when the input is unusable.

This is a small blocking socket client, not a DiameterNode: it holds one connection for a
few seconds and has one request outstanding at a time, so the node's machinery for
long-lived peers (election, Tc reconnects, the RFC 3539 watchdog, failover, a reactor) would
only add moving parts. The protocol rules it shares with the node come from the node's own
modules: CER/DPR are built and the CEA judged by ``gateway.peer.capabilities``, the stream
is split by ``gateway.transport.framing``, the certificate is checked against the peer's
Origin-Host by ``gateway.transport.tls`` and answers are printed by ``cx_codec.pretty``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cx_codec import DecodeError, Message, decode, decode_lazy
from cx_codec.avp import Avp
from cx_codec.errors import RESULT_CODE_NAMES
from cx_codec.header import Flags
from cx_codec.rewrite import rewrite

CX = 16777216  # TS 29.229 §6: Cx application, vendor 3GPP
VENDOR_3GPP = 10415
CER, DWR, DPR = 257, 280, 282  # RFC 6733 §5.3-§5.5
ORIGIN_HOST, ORIGIN_REALM, SESSION_ID, ORIGIN_STATE_ID = (264, 0), (296, 0), (263, 0), (278, 0)
DESTINATION_HOST, DESTINATION_REALM = (293, 0), (283, 0)
REBOOTING = 0  # Disconnect-Cause, RFC 6733 §5.4.3

# Result codes RESULT_CODE_NAMES (the codec's) does not carry: RFC 6733 §7.1
BASE_NAMES: dict[int, str] = {
    **RESULT_CODE_NAMES,
    1001: "DIAMETER_MULTI_ROUND_AUTH",
    2002: "DIAMETER_LIMITED_SUCCESS",
    4001: "DIAMETER_AUTHENTICATION_REJECTED",
    4002: "DIAMETER_OUT_OF_SPACE",
    4003: "ELECTION_LOST",
    5016: "DIAMETER_INVALID_AVP_VALUE",
    5017: "DIAMETER_NO_COMMON_SECURITY",
}
# Experimental-Result-Code of vendor 3GPP on Cx: TS 29.229 §6.2.1 (success), §6.2.2 (permanent)
CX_EXPERIMENTAL_NAMES: dict[int, str] = {
    2001: "DIAMETER_FIRST_REGISTRATION",
    2002: "DIAMETER_SUBSEQUENT_REGISTRATION",
    2003: "DIAMETER_UNREGISTERED_SERVICE",
    2004: "DIAMETER_SUCCESS_SERVER_NAME_NOT_STORED",
    5001: "DIAMETER_ERROR_USER_UNKNOWN",
    5002: "DIAMETER_ERROR_IDENTITIES_DONT_MATCH",
    5003: "DIAMETER_ERROR_IDENTITY_NOT_REGISTERED",
    5004: "DIAMETER_ERROR_ROAMING_NOT_ALLOWED",
    5005: "DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED",
    5006: "DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED",
    5007: "DIAMETER_ERROR_IN_ASSIGNMENT_TYPE",
    5008: "DIAMETER_ERROR_TOO_MUCH_DATA",
    5009: "DIAMETER_ERROR_NOT_SUPPORTED_USER_DATA",
    5011: "DIAMETER_ERROR_FEATURE_UNSUPPORTED",
    5012: "DIAMETER_ERROR_SERVING_NODE_FEATURE_UNSUPPORTED",
}
# what cxgw send does itself, so a message of these commands is refused as input
OWN_COMMANDS = {CER: "CER", DPR: "DPR"}


class SendError(Exception):
    """Something the user should read as one line; exit status ``status``."""

    def __init__(self, text: str, status: int = 1) -> None:
        super().__init__(text)
        self.status = status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="HOST:PORT", help="the peer, e.g. 127.0.0.1:3868 or [::1]:3868")
    parser.add_argument("file", nargs="?", help="file of requests, hex (one message per line) or raw; - for stdin")
    parser.add_argument("--sample", metavar="NAME",
                        help="send a built-in sample request (MAR, SAR, UAR, LIR, RTR, PPR, DWR, MAR-resync; "
                             "`cxgw decode --sample list` names them all)")
    parser.add_argument("--origin-host", default="cxgw-send.localdomain",
                        help="our Diameter identity in CER and the requests (default %(default)s)")
    parser.add_argument("--origin-realm", default="localdomain", help="our realm (default %(default)s)")
    parser.add_argument("--keep-origin", action="store_true",
                        help="send the requests' Origin-Host/Origin-Realm and Session-Id as they are")
    parser.add_argument("--destination-realm", metavar="REALM", help="set Destination-Realm of every request")
    parser.add_argument("--destination-host", metavar="HOST", help="set (or add) Destination-Host of every request")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each answer (default 5)")
    parser.add_argument("--json", action="store_true", help="one JSON object per answer instead of the tree")
    parser.add_argument("--tls-cert", metavar="PEM", help="our certificate: connect with TLS (RFC 6733 §13)")
    parser.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    parser.add_argument("--ca", metavar="PEM", help="CA certificates that sign the peer's certificate")
    parser.add_argument("--tls-name", metavar="NAME",
                        help="the name the peer's certificate must carry (default: its Origin-Host from the CEA)")


def run(args: argparse.Namespace) -> int:
    try:
        host, port = parse_target(args.target)
        requests = load_requests(args)
        state_id = int(time.time()) & 0xFFFFFFFF  # RFC 6733 §8.16: one per run of ours
        prepared = [prepare(data, args, state_id) for data in requests]
        tls = tls_context(args)
        with Client(host, port, args.timeout, tls, args.tls_name) as client:
            peer = client.exchange_capabilities(args.origin_host, args.origin_realm, state_id, applications(prepared))
            status = 0
            for data in prepared:
                answer = client.request(data)
                result = Result.of(answer)
                print(render(answer, result, peer) if not args.json else json.dumps(as_json(answer, result, peer)))
                status |= 0 if result.success else 1
            client.disconnect(args.origin_host, args.origin_realm)
            return status
    except SendError as error:
        print(f"cxgw send: {error}", file=sys.stderr)
        return error.status


# -- input ------------------------------------------------------------------------------
def parse_target(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SendError(f"{text!r} is not HOST:PORT; write e.g. 127.0.0.1:3868 or [::1]:3868", 2)
    return host, int(port)


def load_requests(args: argparse.Namespace) -> list[bytes]:
    from cx_codec.cli import read_input, split_stream

    if args.sample and args.file:
        raise SendError("give --sample NAME or a FILE, not both", 2)
    if args.sample:
        from cx_codec.samples import BUILDERS

        if args.sample not in BUILDERS:
            raise SendError(f"no sample {args.sample!r}; samples: {', '.join(BUILDERS)}", 2)
        return [BUILDERS[args.sample]().encode()]
    if not args.file:
        raise SendError("give --sample NAME, a FILE of hex or raw messages, or - for standard input", 2)
    try:
        data = read_input(args.file)
    except (OSError, ValueError) as error:
        raise SendError(f"cannot read {args.file}: {error}", 2) from error
    if not data:
        raise SendError(f"{args.file} is empty; give Diameter requests as hex (one per line) or raw bytes", 2)
    return split_stream(data)


def prepare(data: bytes, args: argparse.Namespace, origin_state_id: int) -> bytes:
    """A request ready to send: strictly valid, not CER/DPR, with our origin (RFC 6733
    §6.3: Origin-Host names the sender; §8.8: the Session-Id starts with it; §8.16: an
    Origin-State-Id other than the CER's means we restarted), and the destination asked
    for. The hop-by-hop and end-to-end ids are set when it is sent (§3)."""
    try:
        message = decode(data)
    except DecodeError as error:
        name = _name(data)
        raise SendError(f"{name} is not a valid Diameter message: {error.result_code} "
                        f"{BASE_NAMES.get(error.result_code, '')}: {error.reason}; `cxgw decode` shows it", 2) from error
    if not message.is_request:
        raise SendError(f"{message.name} is an answer; cxgw send sends requests and prints their answers", 2)
    if message.command_code in OWN_COMMANDS:
        raise SendError(f"{OWN_COMMANDS[message.command_code]} is sent by cxgw send itself; "
                        "give an application request (or DWR)", 2)
    values: dict[tuple[int, int], bytes] = {}
    if not args.keep_origin:
        from cx_codec.build import new_session_id

        values[ORIGIN_HOST] = args.origin_host.encode()
        values[ORIGIN_REALM] = args.origin_realm.encode()
        if message.find("Session-Id") is not None:
            values[SESSION_ID] = new_session_id(args.origin_host).encode()
        if message.find("Origin-State-Id") is not None:
            values[ORIGIN_STATE_ID] = origin_state_id.to_bytes(4, "big")
    absent: dict[tuple[int, int], bytes] = {}
    if args.destination_realm:
        values[DESTINATION_REALM] = args.destination_realm.encode()
    if args.destination_host:
        from cx_codec.build import avp_bytes

        values[DESTINATION_HOST] = args.destination_host.encode()
        absent[DESTINATION_HOST] = avp_bytes("Destination-Host", args.destination_host)
    try:
        data = rewrite(data, values, optional={DESTINATION_REALM}, absent=absent)
        decode(data)  # the new values are identities too: still strictly valid
    except DecodeError as error:
        raise SendError(f"{message.name}: the rewritten request is invalid ({error.reason}); "
                        "check --origin-host, --origin-realm and --destination-*", 2) from error
    return data


def _name(data: bytes) -> str:
    try:
        return decode_lazy(data).name
    except DecodeError:
        return f"a message of {len(data)} bytes"


def applications(requests: list[bytes]) -> tuple[Any, ...]:
    """What to advertise in CER: the applications of the requests (Cx as vendor 3GPP)."""
    from gateway.peer.capabilities import Application

    ids = sorted({int.from_bytes(data[8:12], "big") for data in requests} - {0}) or [CX]
    return tuple(Application(app, VENDOR_3GPP if app == CX else 0) for app in ids)


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    given = [name for name in ("tls_cert", "tls_key", "ca") if getattr(args, name)]
    if not given:
        return None
    if len(given) != 3:
        raise SendError("TLS needs --tls-cert, --tls-key and --ca together (RFC 6733 §13: mutual authentication); "
                        "`cxgw certs` makes lab ones", 2)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 6733 §13, RFC 8996
    context.check_hostname = False  # the name is the Diameter identity, checked against the CEA below
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
        context.load_verify_locations(args.ca)
    except (OSError, ssl.SSLError) as error:
        raise SendError(f"cannot load the TLS files ({args.tls_cert}, {args.tls_key}, {args.ca}): {error}", 2) from error
    return context


# -- the connection ---------------------------------------------------------------------
class Client:
    """One connection to one peer, one request outstanding at a time."""

    def __init__(self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None, tls_name: str | None) -> None:
        from gateway.transport.framing import Framer

        self.where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        self.timeout = timeout
        self.tls_name = tls_name
        self.framer = Framer(16 * 1024 * 1024)
        self.queue: list[bytes] = []
        self.local: Any = None
        try:
            self.sock: socket.socket = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as error:
            raise SendError(f"cannot connect to {self.where}: no answer in {timeout:g} s") from error
        except OSError as error:
            raise SendError(f"cannot connect to {self.where}: {_os_reason(error)}") from error
        if tls is not None:
            try:
                self.sock = tls.wrap_socket(self.sock, server_hostname=tls_name)
            except (OSError, ssl.SSLError) as error:
                raise SendError(f"TLS with {self.where} failed: {_os_reason(error)}") from error
        self.ids = _Ids()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def exchange_capabilities(self, origin_host: str, origin_realm: str, state_id: int, apps: tuple[Any, ...]) -> Message:
        """CER/CEA (RFC 6733 §5.3); the CEA, or SendError naming its Result-Code."""
        from gateway.peer.capabilities import LocalIdentity, build_cer, decode_capabilities

        address = self.sock.getsockname()[0]
        self.local = LocalIdentity(origin_host, origin_realm, host_ip_addresses=(address,),
                                   origin_state_id=state_id, applications=apps)
        hop = self.ids.hop()
        self._send(build_cer(self.local, hop, self.ids.end()))
        data = self._answer(hop, "CEA")
        try:
            cea, capabilities = decode_capabilities(data)
        except DecodeError as error:
            raise SendError(f"the CEA from {self.where} is invalid: {error.result_code} {error.reason}") from error
        code = capabilities.result_code or 0
        if not 2000 <= code < 3000:
            detail = cea.get("Error-Message") or "(no Error-Message)"
            raise SendError(f"CEA {code} {BASE_NAMES.get(code, '')}: {detail}")
        self._check_certificate(capabilities.origin_host)
        return cea

    def _check_certificate(self, origin_host: str) -> None:
        """RFC 6733 §13: the peer's certificate must name the identity it announced."""
        if not isinstance(self.sock, ssl.SSLSocket):
            return
        from cryptography import x509

        from gateway.transport.tls import certificate_names, check_identity

        der = self.sock.getpeercert(binary_form=True)
        names = certificate_names(x509.load_der_x509_certificate(der)) if der else set()
        wanted = self.tls_name or origin_host
        if not check_identity(names, wanted):
            raise SendError(f"the certificate of {self.where} names {', '.join(sorted(names)) or 'nothing'}, "
                            f"not {wanted}; check --tls-name or the peer's certificate")

    def request(self, data: bytes) -> bytes:
        hop = self.ids.hop()
        data = data[:12] + hop.to_bytes(4, "big") + self.ids.end().to_bytes(4, "big") + data[20:]
        self._send(data)
        return self._answer(hop, _name(data))

    def disconnect(self, origin_host: str, origin_realm: str) -> None:
        """DPR, then wait for the DPA (RFC 6733 §5.4); a missing DPA is only noted."""
        from gateway.peer.capabilities import build_dpr

        hop = self.ids.hop()
        try:
            self._send(build_dpr(self.local, REBOOTING, hop, self.ids.end()))
            self._answer(hop, "DPA")
        except SendError as error:
            print(f"cxgw send: {error} (after the answers; ignored)", file=sys.stderr)

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as error:
            raise SendError(f"{self.where}: sending failed: {_os_reason(error)}") from error

    def _answer(self, hop_by_hop: int, what: str) -> bytes:
        """The answer with this hop-by-hop id; the peer's DWRs are answered meanwhile."""
        deadline = time.monotonic() + self.timeout
        while True:
            for data in self._messages(deadline, what):
                flags, code = data[4], int.from_bytes(data[5:8], "big")
                if flags & Flags.REQUEST:
                    self._peer_request(data, code)
                elif int.from_bytes(data[12:16], "big") == hop_by_hop:
                    return data

    def _peer_request(self, data: bytes, code: int) -> None:
        from gateway.peer.capabilities import build_dpa, build_dwa

        try:
            message = decode(data)
        except DecodeError:
            return  # not ours to judge: the answer we wait for is what matters
        if code == DWR:
            self._send(build_dwa(self.local, message))  # RFC 3539 §3.4: stay in its good books
        elif code == DPR:
            self._send(build_dpa(self.local, message))
            raise SendError(f"{self.where} disconnected (DPR, Disconnect-Cause {message.get('Disconnect-Cause')}) "
                            "before answering")

    def _messages(self, deadline: float, what: str) -> Iterator[bytes]:
        from gateway.transport.framing import FramingError

        while not self.queue:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SendError(f"no {what} in {self.timeout:g} s from {self.where}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as error:
                raise SendError(f"{self.where}: connection lost waiting for the {what}: {_os_reason(error)}") from error
            if not chunk:
                raise SendError(f"{self.where} closed the connection instead of sending the {what}")
            try:
                self.queue += self.framer.feed(chunk)
            except FramingError as error:
                raise SendError(f"{self.where} sent a broken stream: {error.reason}") from error
        while self.queue:
            yield self.queue.pop(0)


class _Ids:
    """Hop-by-hop ids counting up from a random start; End-to-End ids with the low 12
    bits of the time in their high bits and a counter below (RFC 6733 §3)."""

    def __init__(self) -> None:
        self._hop = int.from_bytes(os.urandom(4), "big")
        self._end = (int(time.time()) & 0xFFF) << 20 | int.from_bytes(os.urandom(2), "big")

    def hop(self) -> int:
        self._hop = (self._hop + 1) & 0xFFFFFFFF
        return self._hop

    def end(self) -> int:
        self._end = (self._end + 1) & 0xFFFFFFFF
        return self._end


def _os_reason(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"unknown host ({error.strerror})"
    if isinstance(error, ssl.SSLError):
        return error.reason or str(error)
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


# -- the answer -------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    """Result-Code (RFC 6733 §7.1) or Experimental-Result-Code (§7.6) of an answer."""

    code: int | None
    name: str
    vendor_id: int = 0
    error_message: str | None = None

    @property
    def success(self) -> bool:
        return self.code is not None and 2000 <= self.code < 3000

    @classmethod
    def of(cls, data: bytes) -> Result:
        try:
            return cls._of(decode_lazy(data))
        except DecodeError as error:  # a peer's broken answer is a finding, not a crash
            return cls(None, f"unreadable answer: {error.reason}")

    @classmethod
    def _of(cls, message: Message) -> Result:
        error_message = message.get("Error-Message")
        experimental = message.experimental_result if message.find("Experimental-Result") else None
        if experimental is not None:
            vendor, code = experimental
            names = CX_EXPERIMENTAL_NAMES if vendor == VENDOR_3GPP else {}
            return cls(code, names.get(code, f"experimental result of vendor {vendor}"), vendor, error_message)  # type: ignore[arg-type]
        code = message.result_code
        return cls(code, BASE_NAMES.get(code, "") if code is not None else "no Result-Code", 0, error_message)  # type: ignore[arg-type]

    def line(self) -> str:
        kind = "Experimental-Result-Code" if self.vendor_id else "Result-Code"
        text = f"result: {self.code} {self.name} ({kind})" if self.code is not None else f"result: none ({self.name})"
        return text + (f": {self.error_message}" if self.error_message else "")


def render(data: bytes, result: Result, peer: Message) -> str:
    from cx_codec.pretty import format_message

    try:
        decode(data)
        verdict = "verdict: valid"
    except DecodeError as error:
        verdict = f"verdict: invalid: {error.result_code} {BASE_NAMES.get(error.result_code, '')}: {error.reason}"
    try:
        tree = format_message(decode_lazy(data))
    except DecodeError as error:
        tree = f"an answer of {len(data)} bytes whose AVPs cannot be walked ({error.reason}):\n  0x{data.hex()}"
    return f"{tree}\n{verdict}\n{result.line()} from {peer['Origin-Host']}\n"


def as_json(data: bytes, result: Result, peer: Message) -> dict[str, Any]:
    message = decode_lazy(data)
    try:
        avps = [_avp_json(avp) for avp in message.avps]
    except DecodeError as error:
        avps = [{"invalid": error.reason, "hex": data[20:].hex()}]
    return {
        "peer": peer["Origin-Host"],
        "command": message.name,
        "command_code": message.command_code,
        "application_id": message.application_id,
        "flags": message.flags,
        "error_bit": bool(message.flags & Flags.ERROR),
        "hop_by_hop": message.hop_by_hop,
        "end_to_end": message.end_to_end,
        "result_code": result.code,
        "result_name": result.name,
        "experimental": bool(result.vendor_id),
        "vendor_id": result.vendor_id,
        "error_message": result.error_message,
        "success": result.success,
        "avps": avps,
    }


def _avp_json(avp: Avp) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": avp.name, "code": avp.code, "vendor": avp.vendor}
    try:
        if avp.is_grouped:
            entry["avps"] = [_avp_json(child) for child in avp.children]
            return entry
        value = avp.value
    except DecodeError as error:
        entry["invalid"] = error.reason
        entry["hex"] = avp.data.hex()
        return entry
    entry["value"] = value.hex() if isinstance(value, bytes) else value if isinstance(value, int | float) else str(value)
    if avp.enum_name:
        entry["enum"] = avp.enum_name
    return entry
