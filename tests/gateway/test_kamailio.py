"""A real Kamailio S-CSCF registers migrated users through the partner gateway, the primary
gateway and the HSS (TR 23.781 solution 2, steps 14-25), all as separate processes.

Kamailio 5.6 (Debian's `kamailio`, `kamailio-ims-modules`, `kamailio-presence-modules`, which
ims_usrloc_scscf needs) is the partner system's S-CSCF: ims_auth challenges REGISTER with
IMS-AKA (MAR over cdp), ims_registrar_scscf registers the user (SAR) and honours RTR. Its
HSS is the partner core (`cxgw gateway`, role partner), which connects to Kamailio's cdp
acceptor (cdp dials its peers by resolving their FQDN, and gw.partner.example does not
resolve) and forwards over mutually authenticated TLS to the primary core (`cxgw gateway`,
roles primary + hss); both are provisioned with `cxgw provision` as an operator would. The UE
is gateway.testing.sip_ue over UDP with a software ISIM (gateway.testing.isim) that has the
user's K and OPc: a registration that ends in 200 OK has passed IMS-AKA end to end.

tshark records Kamailio's Diameter leg (plain TCP on loopback); every frame must dissect as
Diameter without warnings, and no primary-side identity may appear on it.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer

from gateway.testing.isim import Isim
from gateway.testing.kamailio import PROGRAM, Kamailio
from gateway.testing.process import GatewayProcess, provision, until
from gateway.testing.sip_ue import SipUe, digest_params

pytestmark = pytest.mark.interop

K, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf"
PARTNER, PRIMARY = "partner.example", "primary.example"
SCSCF = "scscf.partner.example"

PRIMARY_TOML = """
[node]
origin_host = "gw.primary.example"
origin_realm = "primary.example"
role = ["primary", "hss"]
host_ip_addresses = ["127.0.0.1"]

[[listen]]
address = "127.0.0.1"
port = {port}
transport = "{transport}"

[tls]
certificate = "tls/gw.primary.example.pem"
private_key = "tls/gw.primary.example.key"
ca_certificates = ["tls/interconnect-ca.pem"]

[timers]
tc = 1
twinit = 6
tx = 4

[[peers]]
host = "gw.partner.example"
realm = "partner.example"
address = "127.0.0.1"
transport = "{transport}"
connect = false

[[routes]]
realm = "*"
action = "local"

[store]
target = "primary.sqlite"

[metrics]
address = "127.0.0.1"
port = 0

[[primary.partners]]
host = "gw.partner.example"
partner_id = "partner-a"

[logging]
level = "info"
format = "text"
"""

PARTNER_TOML = """
[node]
origin_host = "gw.partner.example"
origin_realm = "partner.example"
role = "partner"
host_ip_addresses = ["127.0.0.1"]

[[listen]]
address = "127.0.0.1"
port = 0
transport = "tcp"

[tls]
certificate = "tls/gw.partner.example.pem"
private_key = "tls/gw.partner.example.key"
ca_certificates = ["tls/interconnect-ca.pem"]

[timers]
tc = 1
twinit = 6
tx = 4

# Kamailio's cdp acceptor: the S-CSCF of the partner system
[[peers]]
host = "scscf.partner.example"
realm = "partner.example"
address = "127.0.0.1"
port = {kamailio_port}
connect = true
applications = ["cx"]

[[peers]]
host = "gw.primary.example"
realm = "primary.example"
address = "127.0.0.1"
port = {primary_port}
transport = "{transport}"
connect = true
applications = ["cx"]

[[routes]]
realm = "primary.example"
application = "cx"
action = "proxy"
peers = [{{ host = "gw.primary.example" }}]

[[routes]]
realm = "partner.example"
action = "local"

[store]
target = "partner.sqlite"

[metrics]
address = "127.0.0.1"
port = 0

[partner]
hide_topology = true
revocation_poll = 0.2

# the node's own recording: the interconnect leg as plaintext even over TLS (a lab: vectors kept)
[capture]
file = "partner.pcapng"
keep_key_material = true

[logging]
level = "info"
format = "text"
"""


class Migration:
    """The primary core, the partner core and Kamailio in ``folder``, with their stores."""

    def __init__(self, folder: Path, interconnect: str = "tls") -> None:
        self.folder, self.interconnect = folder, interconnect
        self.primary_db, self.partner_db = str(folder / "primary.sqlite"), str(folder / "partner.sqlite")
        self.primary: GatewayProcess | None = None
        self.partner: GatewayProcess | None = None
        self.kamailio = Kamailio(folder / "kamailio", hss_host="gw.partner.example")
        self.primary_port = 0
        self.capture: subprocess.Popen[bytes] | None = None
        self.ues: list[SipUe] = []
        provision(self.primary_db, "policy", "set", "outbound", "--impi-pattern", "out-{random}@primary.example",
                  "--impu-pattern", "sip:out-{random}@primary.example")
        provision(self.partner_db, "policy", "set", "inbound", "--impi-pattern", "mig-{random}@partner.example",
                  "--impu-pattern", "sip:mig-{random}@partner.example")

    def migrate(self, name: str, partner: str = "partner-a") -> dict[str, str]:
        """A subscriber of the primary with outbound identities for ``partner`` and inbound
        identities in the partner's store bound to them (TR 23.781 steps 4-6, 9-11)."""
        impi, impu = f"{name}@primary.example", f"sip:{name}@primary.example"
        provision(self.primary_db, "subscriber", "add", impi, "--impu", impu, "--k", K, "--opc", OPC)
        provision(self.primary_db, "agreement", "add", partner, "--user", impi)
        outbound = json.loads(provision(self.primary_db, "binding", "allocate-outbound", "--impi", impi,
                                        "--impu", impu, "--partner", partner))
        inbound = json.loads(provision(self.partner_db, "binding", "allocate-inbound", "--primary-realm", PRIMARY,
                                       "--primary-host", "gw.primary.example", "--impi", outbound["outbound_impi"],
                                       "--impu", outbound["outbound_impu"]))
        return {"impi": inbound["inbound_impi"], "impu": inbound["inbound_impu"], "real_impi": impi,
                "real_impu": impu, "outbound_impi": outbound["outbound_impi"],
                "outbound_impu": outbound["outbound_impu"]}

    def migrate_many(self, names: list[str]) -> list[dict[str, str]]:
        """``migrate`` for many users: the subscribers imported from CSV, one agreement for all,
        the inbound allocations in a second thread following the outbound ones."""
        csv = self.folder / "subscribers.csv"
        csv.write_text("impi,impus,k,opc\n" + "".join(
            f"{name}@primary.example,sip:{name}@primary.example,{K},{OPC}\n" for name in names))
        provision(self.primary_db, "subscriber", "import", str(csv))
        provision(self.primary_db, "agreement", "add", "partner-a", "--all")

        def outbound(name: str) -> dict[str, str]:
            return json.loads(provision(self.primary_db, "binding", "allocate-outbound", "--impi",
                                        f"{name}@primary.example", "--impu", f"sip:{name}@primary.example",
                                        "--partner", "partner-a"))

        def inbound(allocated: dict[str, str]) -> dict[str, str]:
            made = json.loads(provision(self.partner_db, "binding", "allocate-inbound", "--primary-realm", PRIMARY,
                                        "--primary-host", "gw.primary.example", "--impi", allocated["outbound_impi"],
                                        "--impu", allocated["outbound_impu"]))
            return {"impi": made["inbound_impi"], "impu": made["inbound_impu"], **allocated}

        with ThreadPoolExecutor(1) as primary, ThreadPoolExecutor(1) as partner:
            pending = [partner.submit(lambda future: inbound(future.result()), primary.submit(outbound, name))
                       for name in names]
            return [future.result() for future in pending]

    async def start(self, tshark: str | None = None) -> None:
        subprocess.run([sys.executable, "-m", "gateway.cli", "certs", str(self.folder / "tls"), "gw.partner.example",
                        "gw.primary.example"], check=True, capture_output=True, timeout=60)
        await self.start_kamailio()
        await self.start_primary()
        if tshark:
            self.start_capture(tshark)
            await until(self.capture_ready, "tshark capturing", timeout=30)
        await self.start_partner()

    async def start_kamailio(self) -> None:
        self.kamailio.start()
        await until(lambda: self.kamailio.find(r"Acceptor opened sockets") or self.kamailio.process.poll() is not None,
                    "Kamailio's cdp acceptor", self.kamailio)
        assert self.kamailio.process.poll() is None, "".join(self.kamailio.lines[-30:])

    async def start_primary(self) -> None:
        (self.folder / "primary.toml").write_text(PRIMARY_TOML.format(port=self.primary_port,
                                                                      transport=self.interconnect))
        self.primary = GatewayProcess(str(self.folder / "primary.toml"))
        found = await until(lambda: self.primary.find(rf"listening on 127\.0\.0\.1:(\d+) \({self.interconnect}\)"),
                            "the primary's port", self.primary)
        self.primary_port = int(found.group(1))

    async def start_partner(self) -> None:
        (self.folder / "partner.toml").write_text(PARTNER_TOML.format(
            kamailio_port=self.kamailio.diameter_port, primary_port=self.primary_port, transport=self.interconnect))
        self.partner = GatewayProcess(str(self.folder / "partner.toml"))
        await until(lambda: self.partner.find(r"peer gw\.primary\.example: open"), "the interconnect", self.partner)
        await until(lambda: self.partner.find(r"peer scscf\.partner\.example: open"), "Kamailio's cdp", self.partner)

    # -- on the wire: the Kamailio <-> partner leg, and the interconnect when it is TCP ----
    def start_capture(self, tshark: str) -> None:
        """tshark on loopback, Kamailio's Diameter port (and the primary's over TCP), printing
        each packet as it writes it."""
        self.tshark = tshark
        self.pcap = self.folder / "diameter.pcapng"
        ports = [self.kamailio.diameter_port] + ([self.primary_port] if self.interconnect == "tcp" else [])
        self.decode = [arg for port in ports for arg in ("-d", f"tcp.port=={port},diameter")]
        self.capture = subprocess.Popen(
            [tshark, "-n", "-l", "-P", "-i", "lo", "-f", " or ".join(f"port {port}" for port in ports),
             "-w", str(self.pcap)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.capture_log: list[str] = []
        self.captured: list[str] = []
        threading.Thread(target=lambda: self.captured.extend(self.capture.stdout), daemon=True).start()
        threading.Thread(target=lambda: self.capture_log.extend(self.capture.stderr), daemon=True).start()

    def capture_ready(self) -> bool:
        return any("Capturing on" in line for line in self.capture_log)

    async def stop_capture(self) -> list[dict]:
        """Stops tshark once it has seen everything before now (packets reach a capture on this
        loopback late): a UDP datagram to the captured port is the marker. The Diameter
        messages it recorded, one dict per message."""
        assert self.capture is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:
            marker.sendto(b"end", ("127.0.0.1", self.kamailio.diameter_port))
        await until(lambda: any(" UDP " in line for line in self.captured), "the capture's end marker", timeout=30)
        self.capture.send_signal(signal.SIGINT)
        self.capture.wait(30)
        port = self.kamailio.diameter_port
        # every frame dissects; the gateways' without any warning, Kamailio's warned about
        # only in SARs carrying its own Call-ID-SIP-Header (494, vendor 50: not in Wireshark's dictionary)
        problems = subprocess.run(
            [self.tshark, "-n", "-r", str(self.pcap), *self.decode, "-Y",
             f'_ws.malformed || (_ws.expert.severity >= "Warning" && !(tcp.srcport == {port} && diameter.avp.code == 494))'],
            capture_output=True, text=True, timeout=60, check=True).stdout
        assert not problems.strip(), problems
        fields = ["frame.number", "diameter.cmd.code", "diameter.flags.request", "diameter.Result-Code",
                  "diameter.Experimental-Result-Code", "diameter.User-Name", "diameter.Public-Identity",
                  "diameter.Origin-Host", "diameter.3GPP-SIP-Authorization", "diameter.3GPP-SIP-Authentication-Scheme",
                  "tcp.srcport", "tcp.dstport", "diameter.Route-Record", "diameter.Session-Id"]
        out = subprocess.run(
            [self.tshark, "-n", "-r", str(self.pcap), *self.decode, "-Y", "diameter",
             "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=;",
             *(arg for name in fields for arg in ("-e", name))],
            capture_output=True, text=True, timeout=60, check=True).stdout
        messages = []
        for line in out.splitlines():
            values = line.split("|")
            codes = values[1].split(";")
            flags = values[2].split(";")
            results = values[3].split(";") + values[4].split(";")
            for index, code in enumerate(codes):  # several messages in one frame
                messages.append({"code": int(code), "request": flags[index] in ("1", "True"),
                                 "results": [int(value) for value in results if value],
                                 "user_name": values[5], "public_identity": values[6], "origin_host": values[7],
                                 "authorization": values[8], "scheme": values[9], "route_record": values[12],
                                 "session_id": values[13],
                                 "leg": "kamailio" if str(port) in values[10:12] else "interconnect", "line": line})
        return messages

    def leg_bytes(self, port: int) -> bytes:
        """The TCP payload both ways on one leg, concatenated."""
        out = subprocess.run(
            [self.tshark, "-n", "-r", str(self.pcap), "-Y", f"tcp.port == {port} && tcp.len > 0", "-T", "fields",
             "-e", "tcp.payload"], capture_output=True, text=True, timeout=60, check=True).stdout
        return b"".join(bytes.fromhex(line.replace(":", "")) for line in out.split())

    def ue(self, identities: dict[str, str], isim: Isim | None = None, request_uri: str | None = None) -> SipUe:
        ue = SipUe(isim or Isim(bytes.fromhex(K), bytes.fromhex(OPC)), identities["impi"], identities["impu"],
                   PARTNER, ("127.0.0.1", self.kamailio.sip_port), request_uri).start()
        self.ues.append(ue)
        return ue

    async def finish(self) -> list[dict]:
        """The capture's messages (if one runs), everything stopped even when its checks fail."""
        try:
            return await self.stop_capture() if self.capture is not None else []
        finally:
            self.stop()

    def stop(self) -> None:
        for ue in self.ues:
            ue.stop()
        self.kamailio.stop()
        for process in (self.partner, self.primary):
            if process is not None:
                process.stop()
        if self.capture is not None and self.capture.poll() is None:
            self.capture.kill()
            self.capture.wait(10)


@pytest.fixture
def kamailio_installed(require_program):
    require_program("kamailio", PROGRAM)


def kamcmd(migration: Migration, *args: str) -> str:
    """Kamailio's RPC (kamcmd over the ctl module's socket): what its usrloc holds."""
    done = subprocess.run(["kamcmd", "-s", f"unix:{migration.kamailio.folder}/kamailio_ctl", *args],
                          capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def commands(messages: list[dict]) -> list[tuple[int, bool]]:
    return [(message["code"], message["request"]) for message in messages]


@pytest.mark.parametrize("interconnect", ["tls", "tcp"])
@pytest_twisted.ensureDeferred
async def test_a_migrated_user_registers_through_both_gateways(tmp_path, kamailio_installed, require_program,
                                                               interconnect):
    """Case 1: 401 with an IMS-AKA challenge, 200 OK after it; the S-CSCF's SAR answered and
    the registration held in Kamailio's usrloc; only inbound identities on Kamailio's leg.
    Over a TCP interconnect (a variant for the capture: the gateways have no TLS key log),
    the interconnect leg on the wire too: only outbound identities, the partner's
    Origin-Host and Session-Id, no Route-Record."""
    tshark = require_program("tshark")
    migration = Migration(tmp_path, interconnect)
    alice = migration.migrate("alice")
    messages: list[dict] = []
    try:
        await migration.start(tshark)
        ue = migration.ue(alice)
        outcome = await ue.register()
        assert outcome.status == 200, (outcome.final.text, "".join(migration.kamailio.lines[-30:]))
        challenge = outcome.replies[0]
        assert challenge.status == 401
        scheme, params = digest_params(challenge.header("www-authenticate"))
        assert scheme == "Digest" and params["algorithm"] == "AKAv1-MD5"
        assert "ok" in outcome.isim_results and outcome.resyncs == 0
        await until(lambda: migration.kamailio.find(r"SAA for .*saa_return_code 1"), "the SAA", migration.kamailio)
        held = kamcmd(migration, "ulscscf.showimpu", alice["impu"])
        assert alice["impu"] in held and f"127.0.0.1:{ue.port}" in held, held
        # the interconnect leg (TLS) as the primary counts it: one MAR in from the partner
        # gateway per challenge, answered (a UE answering before Kamailio has stored the
        # vector is challenged once more: see docs/interop.md)
        primary = metrics(migration.primary)
        n = outcome.challenges
        assert outcome.retransmissions == 0 and n in (1, 2), (outcome.retransmissions, n)
        assert f'diameter_messages_total{{peer="gw.partner.example",direction="in",command="MAR/MAA",result=""}} {n}' \
            in primary
        assert (f'diameter_messages_total{{peer="gw.partner.example",direction="out",command="MAR/MAA",result="2001"}} '
                f'{n}') in primary
        assert f'cxgw_translations_total{{role="primary",result="answered"}} {n}' in primary
        # SIGTERM: the partner's recording is written out and closed
        migration.partner.process.send_signal(signal.SIGTERM)
        await until(lambda: migration.partner.process.poll() is not None, "the partner to exit", migration.partner)
    finally:
        messages = await migration.finish()
    # on Kamailio's leg: CER/CEA, MAR/MAA, SAR/SAA (and watchdogs), every answer 2001
    seen = commands(messages)
    for pair in ((257, True), (257, False), (303, True), (303, False), (301, True), (301, False)):
        assert pair in seen, seen
    assert all(message["results"] == [2001] for message in messages if not message["request"]), messages
    leg = migration.leg_bytes(migration.kamailio.diameter_port)
    for identity in ("real_impi", "outbound_impi", "outbound_impu"):
        assert alice[identity].encode() not in leg
    assert b"primary.example" not in leg
    assert alice["impi"].encode() in leg
    # the interconnect leg from the partner's own recording (over TLS: its plaintext)
    recording = migration.folder / "partner.pcapng"
    port = migration.primary_port
    problems = subprocess.run(
        [tshark, "-n", "-r", str(recording), "-d", f"tcp.port=={port},diameter", "-Y",
         f'tcp.port == {port} && (_ws.malformed || _ws.expert.severity >= "Warning")'],
        capture_output=True, text=True, timeout=60, check=True).stdout
    assert problems == "", problems  # every frame of the interconnect leg dissects cleanly
    recorded = _recorded_leg(tshark, recording, port)
    assert alice["outbound_impi"].encode() in recorded
    for identity in ("impi", "impu", "real_impi"):
        assert alice[identity].encode() not in recorded  # no inbound identity, nor the real one
    assert _auth_items(leg) == _auth_items(recorded) != []  # IMS-AKA survives translation
    if interconnect == "tcp":
        across = [message for message in messages if message["leg"] == "interconnect"]
        mar, maa = [message for message in across if message["code"] == 303]
        assert (mar["user_name"], mar["public_identity"]) == (alice["outbound_impi"], alice["outbound_impu"]), mar
        assert mar["origin_host"] == "gw.partner.example" and not mar["route_record"], mar
        assert mar["session_id"].startswith("gw.partner.example;"), mar
        assert maa["results"] == [2001] and maa["user_name"] == alice["outbound_impi"], maa
        assert not [message for message in across if message["code"] == 301]  # SAR stays in the partner
        wire = migration.leg_bytes(migration.primary_port)
        assert alice["impi"].encode() not in wire and alice["impu"].encode() not in wire
        assert alice["real_impi"].encode() not in wire  # the HSS is inside the primary core
        # IMS-AKA survives translation: RAND/AUTN, XRES, CK, IK byte-identical on both legs
        assert _auth_items(leg) == _auth_items(wire) != []


def _recorded_leg(tshark: str, recording: Path, port: int) -> bytes:
    """The TCP payload of one leg in a recording of the node (captures.recorder), both ways."""
    out = subprocess.run(
        [tshark, "-n", "-r", str(recording), "-Y", f"tcp.port == {port} && tcp.len > 0", "-T", "fields",
         "-e", "tcp.payload"], capture_output=True, text=True, timeout=60, check=True).stdout
    return b"".join(bytes.fromhex(line.replace(":", "")) for line in out.split())


def _auth_items(leg: bytes) -> list[bytes]:
    """The SIP-Auth-Data-Items of the MAAs on one leg (its TCP payload, both ways, in order:
    whole messages, as loopback segments are)."""
    from cx_codec import decode_lazy
    from gateway.transport.framing import Framer

    items = []
    for raw in Framer(1 << 24).feed(leg):
        if int.from_bytes(raw[5:8], "big") == 303 and not raw[4] & 0x80:
            items += [avp.encode() for avp in decode_lazy(raw).find_all("SIP-Auth-Data-Item")]
    return items


@pytest_twisted.ensureDeferred
async def test_an_sqn_ahead_of_the_hss_is_resynchronised_through_both_gateways(tmp_path, kamailio_installed,
                                                                              require_program):
    """Case 2: the ISIM's SQN is ahead of the HSS's: AUTS in the second REGISTER, Kamailio's
    re-synchronising MAR (SIP-Authorization = RAND || AUTS) through both gateways, a fresh
    challenge, then 200 OK."""
    tshark = require_program("tshark")
    migration = Migration(tmp_path)
    bob = migration.migrate("bob")
    messages: list[dict] = []
    try:
        await migration.start(tshark)
        isim = Isim(bytes.fromhex(K), bytes.fromhex(OPC))
        isim.advance(5000)
        outcome = await migration.ue(bob, isim).register()
        assert outcome.status == 200, (outcome.final.text, "".join(migration.kamailio.lines[-30:]))
        # (a UE answering before Kamailio has stored the vector is challenged once more, and
        # before the re-synchronisation that challenge carries the old SQN again: docs/interop.md)
        assert outcome.resyncs in (1, 2) and outcome.isim_results[0] == "synch failure", outcome.isim_results
        assert outcome.isim_results[-1] == "ok", outcome.isim_results
        assert migration.kamailio.find(r"re-synchronisation for"), "".join(migration.kamailio.lines[-30:])
        assert migration.kamailio.find(r"re-sync MAA for .*maa_return_code 1")
        primary = metrics(migration.primary)  # the re-synchronising MAR crossed the interconnect too
        assert (f'diameter_messages_total{{peer="gw.partner.example",direction="out",command="MAR/MAA",result="2001"}} '
                f'{outcome.challenges}') in primary
    finally:
        messages = await migration.finish()
    mars = [message for message in messages if message["code"] == 303 and message["request"]]
    assert len(mars) == outcome.challenges and not mars[0]["authorization"], mars
    sizes = [len(bytes.fromhex(mar["authorization"].replace(":", ""))) for mar in mars if mar["authorization"]]
    assert sizes and all(size == 16 + 14 for size in sizes), mars  # RAND || AUTS
    assert all(message["results"] == [2001] for message in messages if not message["request"]), messages


@pytest_twisted.ensureDeferred
async def test_the_primary_core_down_is_answered_at_once(tmp_path, kamailio_installed, require_program):
    """Case 5: the primary core is down: the partner answers Kamailio's MAR at once with 3002
    and the inbound User-Name. Kamailio 5.6 turns every MAA Result-Code but 2001 into a 403
    (ims_auth has no 5xx for an HSS error; only a lost MAA gives 480), so the UE gets
    403 "HSS responded with unknown Result Code", not "Private identity not found"
    (what a 3002 without User-Name gives) and not the 480 of a timeout."""
    tshark = require_program("tshark")
    migration = Migration(tmp_path)
    carol = migration.migrate("carol")
    messages: list[dict] = []
    try:
        await migration.start(tshark)
        migration.primary.stop()
        await until(lambda: migration.partner.find(r"peer gw\.primary\.example: down"),
                    "the partner to see the primary gone", migration.partner)
        outcome = await migration.ue(carol).register()
        assert (outcome.status, outcome.final.reason) == (403, "Forbidden - HSS responded with unknown Result Code"), \
            outcome.final.text
        assert outcome.challenges == 0
    finally:
        messages = await migration.finish()
    maas = [message for message in messages if message["code"] == 303 and not message["request"]]
    assert len(maas) == 1 and maas[0]["results"] == [3002] and maas[0]["user_name"] == carol["impi"], maas


@pytest_twisted.ensureDeferred
async def test_users_the_primary_refuses_are_not_registered(tmp_path, kamailio_installed, require_program):
    """Case 3: an unknown inbound identity, a revoked binding, a user bound for another
    partner, a user whose partner agreement ended after the binding was made: 5001
    (DIAMETER_ERROR_USER_UNKNOWN) with the inbound User-Name, which Kamailio answers 403
    "Forbidden - HSS User Unknown"; nothing hangs."""
    tshark = require_program("tshark")
    migration = Migration(tmp_path)
    revoked = migration.migrate("dave")
    provision(migration.partner_db, "binding", "revoke", revoked["impi"], "--direction", "inbound")
    other = migration.migrate("erin", partner="partner-b")
    ended = migration.migrate("frank")
    provision(migration.primary_db, "agreement", "remove", "partner-a", "--user", ended["real_impi"])
    unknown = {"impi": "mig-nobody@partner.example", "impu": "sip:mig-nobody@partner.example"}
    refused = (unknown, revoked, other, ended)
    messages: list[dict] = []
    try:
        await migration.start(tshark)
        for identities in refused:
            outcome = await migration.ue(identities).register()
            assert (outcome.status, outcome.final.reason) == (403, "Forbidden - HSS User Unknown"), outcome.final.text
            assert outcome.challenges == 0
    finally:
        messages = await migration.finish()
    maas = [message for message in messages if message["code"] == 303 and not message["request"]]
    assert [(maa["results"], maa["user_name"]) for maa in maas] == [([5001], user["impi"]) for user in refused], maas
    leg = migration.leg_bytes(migration.kamailio.diameter_port)
    for user in (revoked, other, ended):
        assert user["outbound_impi"].encode() not in leg and user["real_impi"].encode() not in leg


@pytest_twisted.ensureDeferred
async def test_a_binding_revoked_while_registered_deregisters_the_user(tmp_path, kamailio_installed, require_program):
    """Case 6: `cxgw provision binding revoke` on the partner's store while the user is
    registered: the partner gateway's revocation watcher sends an RTR to Kamailio, which
    answers it and drops the registration from its usrloc."""
    tshark = require_program("tshark")
    migration = Migration(tmp_path)
    grace = migration.migrate("grace")
    messages: list[dict] = []
    try:
        await migration.start(tshark)
        ue = migration.ue(grace)
        outcome = await ue.register()
        assert outcome.status == 200, outcome.final.text
        await until(lambda: migration.kamailio.find(r"SAA for .*saa_return_code 1"), "the SAA", migration.kamailio)
        assert f"127.0.0.1:{ue.port}" in kamcmd(migration, "ulscscf.showimpu", grace["impu"])
        provision(migration.partner_db, "binding", "revoke", grace["impi"], "--direction", "inbound")
        await until(lambda: migration.partner.find(r"revoked: RTR to scscf\.partner\.example"), "the RTR",
                    migration.partner)
        # RTR: Kamailio expires the contacts at once, its usrloc timer (1 s here) removes them
        await until(lambda: f"127.0.0.1:{ue.port}" not in kamcmd(migration, "ulscscf.showimpu", grace["impu"]),
                    "Kamailio to drop the registration", migration.kamailio)
        again = await ue.register()
        assert (again.status, again.final.reason) == (403, "Forbidden - HSS User Unknown"), again.final.text
    finally:
        messages = await migration.finish()
    rtrs = [message for message in messages if message["code"] == 304]
    assert [(rtr["request"], rtr["user_name"]) for rtr in rtrs] == [(True, grace["impi"]), (False, "")], rtrs
    assert rtrs[1]["results"] == [2001]
    assert grace["outbound_impi"].encode() not in migration.leg_bytes(migration.kamailio.diameter_port)


def metrics(process: GatewayProcess) -> str:
    port = process.find(r"metrics and health on http://127\.0\.0\.1:(\d+)/")
    assert port, "".join(process.lines[-20:])
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics", timeout=10) as response:
        return response.read().decode()


@pytest_twisted.ensureDeferred
async def test_a_digest_scheme_is_refused_by_the_partner_and_never_forwarded(tmp_path, kamailio_installed,
                                                                            require_program):
    """Case 4: a UE cannot ask Kamailio for a scheme; the cfg's second REGISTER route (request
    URI sip:digest@REALM) challenges with ims_www_challenge(..., "MD5"): Kamailio's MAR asks
    for a Digest scheme, the partner refuses it with 5006 and the primary never sees a MAR."""
    tshark = require_program("tshark")
    migration = Migration(tmp_path)
    heidi = migration.migrate("heidi")
    messages: list[dict] = []
    try:
        await migration.start(tshark)
        outcome = await migration.ue(heidi, request_uri="sip:digest@partner.example").register()
        assert (outcome.status, outcome.final.reason) == (403, "Forbidden - HSS Authentication Scheme Unsupported"), \
            outcome.final.text
        assert 'command="MAR/MAA"' not in metrics(migration.primary)
        assert 'cxgw_translations_total{role="partner",result="5006"} 1' in metrics(migration.partner)
    finally:
        messages = await migration.finish()
    mar, maa = [message for message in messages if message["code"] == 303]
    assert mar["request"] and mar["scheme"] == "Digest-MD5", mar
    assert maa["results"] == [5006] and maa["user_name"] == heidi["impi"], maa


@pytest_twisted.ensureDeferred
async def test_fifty_ues_register_at_once(tmp_path, kamailio_installed):
    """Case 7: 50 migrated users (50 inbound bindings) register at the same moment: all 200 OK."""
    migration = Migration(tmp_path)
    users = migration.migrate_many([f"user{index:02d}" for index in range(50)])
    try:
        await migration.start()
        outcomes = await defer.gatherResults([defer.ensureDeferred(migration.ue(user).register()) for user in users],
                                             consumeErrors=True)
        assert [outcome.status for outcome in outcomes] == [200] * 50, [o.final.text for o in outcomes if o.status != 200]
        await until(lambda: migration.kamailio.count(r"SAA for .*saa_return_code 1") == 50, "50 SAAs", migration.kamailio)
        # one MAR across the interconnect per challenge (a UE answering before Kamailio has
        # stored the vector is challenged once more: see docs/interop.md)
        challenges = sum(outcome.challenges for outcome in outcomes)
        assert (f'diameter_messages_total{{peer="gw.partner.example",direction="out",command="MAR/MAA",result="2001"}} '
                f'{challenges}') in metrics(migration.primary)
    finally:
        migration.stop()


@pytest_twisted.ensureDeferred
async def test_registrations_succeed_after_both_gateways_and_the_hss_restart(tmp_path, kamailio_installed):
    """Case 8: both cores (the HSS is in the primary core) killed and started again while
    Kamailio runs: the partner connects to Kamailio's cdp again and registrations succeed,
    the SQN carried over in the primary's store."""
    migration = Migration(tmp_path)
    ivan, judy = migration.migrate("ivan"), migration.migrate("judy")
    try:
        await migration.start()
        ivan_ue = migration.ue(ivan)
        assert (await ivan_ue.register()).status == 200
        for process in (migration.partner, migration.primary):
            process.stop()  # SIGKILL: no DPR
        await migration.start_primary()  # on the port it had
        await migration.start_partner()
        outcome = await migration.ue(judy).register()
        assert outcome.status == 200, (outcome.final.text, "".join(migration.kamailio.lines[-20:]))
        again = await ivan_ue.register()  # a fresh challenge: the ISIM accepts the next SQN
        assert again.status == 200 and "ok" in again.isim_results, again.final.text
    finally:
        migration.stop()
