"""Regenerate the sample captures of this folder from a real run of the two cores.

    python -m captures.samples.make [--out DIR]

Each scenario starts the primary core (primary + hss roles) and the partner core
(partner role) in this process over loopback (gateway.testing.cores: real nodes, real
SQLite stores provisioned as an operator would, TR 23.781 steps 4-6 and 9-11), records
the partner core's connections with the project's own recorder (captures.recorder, key
material redacted: the default) and has an S-CSCF (a raw peer) send what Kamailio's
S-CSCF sends. The partner core sits on both legs, so each file holds the S-CSCF's
connection and the interconnect connection to the primary gateway; a translated MAR
carries the pcapng comment naming its binding on both legs.

The identities are fixed (a pool of one entry, not the random patterns), so that the
samples replay as they are against cores built by :func:`sample_cores`:
``cxgw capture replay FILE --target HOST:PORT`` (captures/samples/README.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from twisted.internet import defer

from captures.recorder import Recorder
from cx_codec import decode
from cx_codec.commands import (
    DisconnectPeerRequest,
    MultimediaAuthRequest,
    ServerAssignmentRequest,
    new_session_id,
)
from gateway.testing.cores import (
    OPC,
    PARTNER,
    PRIMARY,
    PRIMARY_GW,
    REAL_IMPI,
    REAL_IMPU,
    SCSCF,
    Cores,
    K,
)
from gateway.testing.diamtest import Net, RawPeer, wait_for
from gateway.testing.isim import Isim
from hss_store import open_store
from hss_store.allocation import AllocationPolicy
from hss_store.records import PrimaryDatabase

HERE = Path(__file__).resolve().parent
INBOUND = ("mig-sample@partner.example", "sip:mig-sample@partner.example")
OUTBOUND = ("out-sample@primary.example", "sip:out-sample@primary.example")
UNKNOWN = ("mig-nobody@partner.example", "sip:mig-nobody@partner.example")
AKA, DIGEST = "Digest-AKAv1-MD5", "SIP Digest"
SERVER_NAME = "sip:scscf.partner.example:6060"


def sample_cores(
    net: Net, folder: Path, inbound: tuple[str, str] = INBOUND, outbound: tuple[str, str] = OUTBOUND
) -> Cores:
    """The two cores of gateway.testing.cores with stores in ``folder`` and the user's
    migration identities fixed: ``outbound`` in the primary, ``inbound`` in the partner
    bound to them (each a pool of one entry; the cores' own random binding is replaced)."""
    primary_store = open_store(str(folder / "primary.sqlite"))
    partner_store = open_store(str(folder / "partner.sqlite"))
    cores = Cores(net, primary_store, partner_store)
    primary_store.set_policy(AllocationPolicy("outbound", mode="pool"))
    primary_store.add_to_pool("outbound", [outbound])
    cores.outbound = primary_store.allocate_outbound(REAL_IMPI, REAL_IMPU, "partner-a", rotate=True)
    partner_store.set_policy(AllocationPolicy("inbound", mode="pool"))
    partner_store.add_to_pool("inbound", [inbound])
    cores.inbound = partner_store.allocate_inbound(
        PrimaryDatabase(PRIMARY, PRIMARY_GW), cores.outbound.outbound_impi, cores.outbound.outbound_impu
    )
    return cores


def mar(hop: int, identities: tuple[str, str] = INBOUND, scheme: str = AKA, authorization: bytes | None = None) -> bytes:
    """The MAR Kamailio's S-CSCF sends at a registration (its own realm, no Destination-Host)."""
    item: dict[str, object] = {"sip_authentication_scheme": scheme}
    if authorization is not None:
        item["sip_authorization"] = authorization
    return MultimediaAuthRequest(
        hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(SCSCF), origin_host=SCSCF, origin_realm=PARTNER,
        destination_realm=PARTNER, user_name=identities[0], public_identity=identities[1],
        sip_auth_data_item=item, sip_number_auth_items=1, server_name=SERVER_NAME,
    ).encode()


def sar(hop: int, identities: tuple[str, str] = INBOUND) -> bytes:
    """The SAR that completes the registration (TS 29.228 §6.1.2, REGISTRATION)."""
    return ServerAssignmentRequest(
        hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(SCSCF), origin_host=SCSCF, origin_realm=PARTNER,
        destination_realm=PARTNER, user_name=identities[0], public_identity=[identities[1]],
        server_name=SERVER_NAME, server_assignment_type=1, user_data_already_available=0,
    ).encode()


@defer.inlineCallbacks
def exchange(scscf: RawPeer, request: bytes) -> Generator[Any, Any, Any]:
    scscf.send(request)
    yield scscf.next(timeout=10.0)
    return decode(scscf.messages[-1], validate=False)


def _expect(answer: Any, result: int, what: str) -> None:
    found = answer.result_code
    if found is None and answer.experimental_result is not None:
        found = answer.experimental_result[1]
    if found != result:
        raise AssertionError(f"{what}: expected {result}, got {found}: {answer}")


# -- the scenarios: what the S-CSCF does, and what the answers must be ---------------------
@defer.inlineCallbacks
def registration(scscf: RawPeer) -> Generator[Any, Any, None]:
    """MAR (IMS-AKA) translated to the primary, MAA with a vector; SAR answered by the partner."""
    answer = yield exchange(scscf, mar(1))
    _expect(answer, 2001, "registration MAR")
    answer = yield exchange(scscf, sar(2))
    _expect(answer, 2001, "registration SAR")


@defer.inlineCallbacks
def resync(scscf: RawPeer) -> Generator[Any, Any, None]:
    """MAR, the card rejects the vector's SQN (synch failure), MAR with RAND || AUTS, new vector."""
    answer = yield exchange(scscf, mar(1))
    _expect(answer, 2001, "first MAR")
    authenticate = bytes(answer.find("SIP-Auth-Data-Item").get("SIP-Authenticate"))  # type: ignore[union-attr, arg-type]
    isim = Isim(K, OPC)
    isim.advance(1000)  # the card has seen SQNs the HSS has not issued (TS 33.102 §6.3.5)
    response = isim.challenge(authenticate[:16], authenticate[16:])
    if response.result != "synch failure":
        raise AssertionError(f"the ISIM should have asked for a re-synchronisation: {response}")
    answer = yield exchange(scscf, mar(2, authorization=authenticate[:16] + response.auts))
    _expect(answer, 2001, "re-synchronisation MAR")


@defer.inlineCallbacks
def unknown_user(scscf: RawPeer) -> Generator[Any, Any, None]:
    """A MAR for an inbound identity with no binding: 5001, answered by the partner."""
    answer = yield exchange(scscf, mar(1, UNKNOWN))
    _expect(answer, 5001, "unknown user MAR")


@defer.inlineCallbacks
def digest_refused(scscf: RawPeer) -> Generator[Any, Any, None]:
    """A MAR asking for SIP Digest: 5006, never forwarded (HA1 binds the user name)."""
    answer = yield exchange(scscf, mar(1, scheme=DIGEST))
    _expect(answer, 5006, "Digest MAR")


SCENARIOS: dict[str, Callable[[RawPeer], Any]] = {
    "registration": registration,
    "resync": resync,
    "unknown-user": unknown_user,
    "digest-refused": digest_refused,
}


@defer.inlineCallbacks
def record(name: str, out: Path) -> Generator[Any, Any, Path]:
    """Run scenario ``name`` on fresh cores and record it into ``out/<name>.pcapng``."""
    folder = Path(tempfile.mkdtemp(prefix="cxgw-sample-"))
    path = out / f"{name}.pcapng"
    net = Net()
    cores = sample_cores(net, folder)
    recorder = Recorder(path)  # key material redacted: the default
    recorder.open()
    cores.partner.recorder = recorder  # before any connection is made: the interconnect's CER is in the file
    cores.partner_role.annotate = recorder.annotations()
    try:
        yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, 10.0, "the interconnect open")
        scscf = yield cores.scscf()
        yield SCENARIOS[name](scscf)
        scscf.send(DisconnectPeerRequest(hop_by_hop=99, end_to_end=99, origin_host=SCSCF, origin_realm=PARTNER,
                                         disconnect_cause=0).encode())  # REBOOTING (RFC 6733 §5.4.3)
        yield scscf.next()  # its DPA; the sender of the DPR closes (RFC 6733 §5.4)
        scscf.transport.loseConnection()
        yield scscf.wait_closed(5.0)
    finally:
        yield net.stop()  # the partner's DPR/DPA with the primary, recorded too
        cores.close()
        recorder.stop()  # everything queued, the FINs, the file closed
        shutil.rmtree(folder, ignore_errors=True)
    return path


@defer.inlineCallbacks
def record_all(out: Path, names: list[str]) -> Generator[Any, Any, list[Path]]:
    made = []
    for name in names:
        made.append((yield record(name, out)))
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m captures.samples.make", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help=f"folder for the files (default {HERE})")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"scenarios (default: all of {', '.join(SCENARIOS)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in SCENARIOS]
    if unknown:
        print(f"unknown scenario {unknown[0]!r}; use one of {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    if not args.out.is_dir():
        print(f"--out {args.out}: no such folder; create it first", file=sys.stderr)
        return 2
    from twisted.internet import task

    made: list[Path] = []

    def run(_reactor: Any) -> Any:
        return record_all(args.out, args.names or list(SCENARIOS)).addCallback(made.extend)

    try:
        task.react(run)
    except SystemExit as stop:
        if stop.code:
            return int(stop.code)
    for path in made:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
