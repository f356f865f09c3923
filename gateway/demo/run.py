"""The demo's steps: set-up (TR 23.781 solution 2 steps 1-13), registration (14-25), and the
exceptions every deployment meets (re-synchronisation, an unknown user, a Digest scheme).

Each step prints its number, the identities on the leg it concerns and its result, and is
checked against what the specifications say should happen; the demo exits 0 only if every
check held. Steps 17-20 happen inside the two gateways: they are shown, and checked, from
the partner core's recording of both Diameter legs once the cores have stopped.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from gateway.demo.cores import (
    HTTP,
    LISTENING,
    PARTNER_GW,
    PARTNER_ID,
    PARTNER_REALM,
    PRIMARY_GW,
    PRIMARY_REALM,
    SCSCF,
    Core,
    CoreError,
    partner_config,
    primary_config,
)

# The subscriber of the demo: TS 35.208 test set 1's K and OPc, as in the loopback examples.
REAL_IMPI, REAL_IMPU = "alice@primary.example", "sip:alice@primary.example"
K, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf"
SERVER_NAME = "sip:scscf.partner.example:6060"
UNKNOWN_IMPI, UNKNOWN_IMPU = "mig-nobody@partner.example", "sip:mig-nobody@partner.example"
DIGEST = "SIP Digest"  # TS 29.229 §6.3.9: HA1 binds the user name, so it cannot be translated
DIAMETER_SUCCESS = ("Result-Code", 2001)
ERROR_USER_UNKNOWN = ("Experimental-Result-Code", 5001)  # TS 29.229 §6.2.2.1
ERROR_AUTH_SCHEME_NOT_SUPPORTED = ("Experimental-Result-Code", 5006)  # TS 29.229 §6.2.2.4
MAR, SAR = 303, 301


class Failed(Exception):
    """A step did not behave as specified; later steps depend on it."""


class Printer:
    """Step lines, and the count of checks that held and did not."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.checks = 0

    def step(self, number: str, text: str) -> None:
        print(f"[{number:>6}] {text}", flush=True)

    def note(self, text: str) -> None:
        print(f"         {text}", flush=True)

    def check(self, number: str, ok: bool, what: str) -> bool:
        self.checks += 1
        if not ok:
            self.failures.append(f"step {number}: {what}")
            print(f"[{number:>6}] FAILED: {what}", flush=True)
        return ok

    def require(self, number: str, ok: bool, what: str) -> None:
        if not self.check(number, ok, what):
            raise Failed(what)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM like Ctrl-C: the cores are stopped on the way out


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _terminated)
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="cxgw-demo-"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if any(folder.iterdir()):
            print(f"cxgw demo: {folder} is not empty; give an empty or new folder with --dir", file=sys.stderr)
            return 2
    except OSError as error:
        print(f"cxgw demo: cannot use {folder}: {error.strerror}; give a writable folder with --dir", file=sys.stderr)
        return 2
    demo = Demo(folder, Printer(), args.interconnect)
    print("cxgw demo: TR 23.781 solution 2, steps 1-25, on two cores over loopback")
    print(f"folder {folder}")
    try:
        demo.run(keep_running=args.keep_running)
    except Failed:
        pass
    except CoreError as error:
        demo.printer.check("cores", False, str(error))
        print(f"cxgw demo: {error}", file=sys.stderr)
    finally:
        demo.stop()
    demo.check_recording()
    elapsed = time.monotonic() - started
    if demo.capture.exists():
        print(f"recording of both Diameter legs: {demo.capture}")
        print(f"  open with: tshark -r {demo.capture} {demo.decode_as()}  (Wireshark: Decode As... DIAMETER)")
    if demo.printer.failures:
        print(f"result: {len(demo.printer.failures)} of {demo.printer.checks} checks FAILED in {elapsed:.1f} s:")
        for failure in demo.printer.failures:
            print(f"  {failure}")
        return 1
    print(f"result: every step behaved as specified ({demo.printer.checks} checks) in {elapsed:.1f} s")
    return 0


class Demo:
    def __init__(self, folder: Path, printer: Printer, interconnect: str = "tcp") -> None:
        self.folder, self.printer, self.interconnect = folder, printer, interconnect
        self.capture = folder / "demo.pcapng"
        self.primary = Core("primary", folder / "primary.toml", folder / "primary.sqlite", folder / "primary.log")
        self.partner = Core("partner", folder / "partner.toml", folder / "partner.sqlite", folder / "partner.log")
        self.identities: dict[str, str] = {}
        self.registered_vectors: list[Any] = []  # (RAND, AUTN) seen by the S-CSCF, for the recording check
        self.stopped = False
        self.scripted_until = float("inf")

    # -- the set-up of the two cores -----------------------------------------------------------

    def run(self, keep_running: bool) -> None:
        self.provision()
        self.start_cores()
        self.set_up_migration()
        scscf = self.register()
        self.resynchronise(scscf)
        self.unknown_user(scscf)
        self.digest_refused(scscf)
        scscf.close()
        self.scripted_until = time.time()  # what the recording check looks at (not the user's own traffic)
        if keep_running:
            self.keep_running()

    def provision(self) -> None:
        """What the operators did long before: a subscriber with K/OPc and an agreement in the
        primary system, allocation policies on both sides (`cxgw provision` does the same)."""
        from hss_store import open_store
        from hss_store.allocation import AllocationPolicy
        from hss_store.records import Agreement, Subscriber

        with open_store(str(self.primary.store)) as store:
            store.add_subscriber(Subscriber.new(REAL_IMPI, [REAL_IMPU], K, opc=OPC))
            store.add_agreement(Agreement(PARTNER_ID, "user", REAL_IMPI))
            store.set_policy(AllocationPolicy("outbound", impi_pattern="out-{random}@primary.example",
                                              impu_pattern="sip:out-{random}@primary.example"))
        with open_store(str(self.partner.store)) as store:
            store.set_policy(AllocationPolicy("inbound", impi_pattern="mig-{random}@partner.example",
                                              impu_pattern="sip:mig-{random}@partner.example"))
        self.printer.note(f"primary SIP database {self.primary.store.name}: {REAL_IMPI} ({REAL_IMPU}) with a test "
                          f"K/OPc (TS 35.208 set 1), an agreement with {PARTNER_ID} for this user")
        self.printer.note(f"partner SIP database {self.partner.store.name}: an inbound allocation policy "
                          "(mig-{random}@partner.example)")

    def start_cores(self) -> None:
        self.write_provisioning()
        self.primary.config.write_text(primary_config(self.primary.store, self.provisioning("primary"),
                                                      self.interconnect))
        self.primary.start()
        self.primary.ports["diameter"] = int(self.primary.wait_for(LISTENING.format(transport=self.interconnect),
                                                                   "its Diameter port").group(1))
        self.partner.config.write_text(partner_config(self.partner.store, self.primary.ports["diameter"],
                                                      self.capture, self.provisioning("partner"), self.interconnect))
        self.partner.start()
        self.partner.ports["diameter"] = int(self.partner.wait_for(LISTENING.format(transport="tcp"),
                                                                   "its Diameter port").group(1))
        for core in (self.primary, self.partner):
            core.ports["metrics"] = int(core.wait_for(HTTP, "its metrics port").group(1))
            core.ports["api"] = self.api_port(core)
        self.partner.wait_for(r"peer gw\.primary\.example: open", "the interconnect to the primary core")
        self.printer.note(f"primary core {PRIMARY_GW} (primary + hss) on 127.0.0.1:{self.primary.ports['diameter']}, "
                          f"provisioning API {self.api_url(self.primary)}")
        self.printer.note(f"partner core {PARTNER_GW} (partner) on 127.0.0.1:{self.partner.ports['diameter']}, "
                          f"provisioning API {self.api_url(self.partner)}; interconnect open over "
                          f"{'TLS, mutually authenticated' if self.interconnect == 'tls' else 'TCP'}")

    # -- steps 1-13 -------------------------------------------------------------------------------

    def set_up_migration(self) -> None:
        from gateway.migration.client import HttpsPartnerAccess
        from gateway.migration.directory import load_directory
        from gateway.migration.flow import MigrationError, PrimaryCm
        from hss_store import open_store

        partners = self.write_partners_file()
        with open_store(str(self.primary.store)) as store:
            cm = PrimaryCm(store, load_directory(partners), HttpsPartnerAccess(),
                           on_event=lambda event: self.printer.step(event.step, event.text))
            try:
                migration = cm.migrate(REAL_IMPI, REAL_IMPU, partner_id=PARTNER_ID)
            except MigrationError as error:
                self.printer.require(error.step, False, f"the migration set-up failed: {error}")
                raise AssertionError("unreachable") from None
        configuration = migration.ue_configuration()
        assert migration.outbound is not None and migration.grant is not None
        self.identities = {
            "impi": migration.grant.inbound.impi, "impu": migration.grant.inbound.impu,
            "outbound_impi": migration.outbound.impi, "outbound_impu": migration.outbound.impu,
        }
        self.printer.note(f"UE configuration for {PARTNER_ID}: realm {configuration['partner_realm']}, "
                          f"P-CSCF {configuration['pcscf']}, {configuration['impi']} / {configuration['impu']}; "
                          f"primary configuration kept ({REAL_IMPI})")
        self.printer.require("13", configuration["impi"].endswith("@" + PARTNER_REALM),
                             "the inbound IMPI is of the partner's domain")

    # -- steps 14-25 ------------------------------------------------------------------------------

    def register(self) -> Any:
        from gateway.demo.scscf import SimulatedScscf
        from gateway.testing.isim import Isim

        impi, impu = self.identities["impi"], self.identities["impu"]
        self.isim = Isim(bytes.fromhex(K), bytes.fromhex(OPC))
        p = self.printer
        p.step("14", f"UE -> partner P-CSCF: REGISTER {impu}, username {impi} (inbound identities)")
        scscf = SimulatedScscf(SCSCF, PARTNER_REALM, SERVER_NAME)
        scscf.connect("127.0.0.1", self.partner.ports["diameter"])
        p.step("15", f"P-CSCF -> S-CSCF {SCSCF}: REGISTER without credentials; CER/CEA with the partner core done")
        p.step("16", f"S-CSCF -> partner core: MAR User-Name={impi} Public-Identity={impu} Digest-AKAv1-MD5")
        answer = scscf.mar(impi, impu)
        vector = self.expect_vectors("21", answer, impi, impu, scscf)
        p.step("17-20", "partner core: inbound identities recognised, MAR translated to the outbound ones and sent "
                        "to the primary core, vectors from K, answer translated back (checked in the recording)")
        p.step("21", f"partner core -> S-CSCF: MAA 2001 User-Name={answer['User-Name']} "
                     f"Public-Identity={answer['Public-Identity']}, RAND {vector.rand.hex()[:8]}...")
        nonce = base64.b64encode(vector.rand + vector.autn).decode()
        p.step("22", f"S-CSCF -> UE: 401 Unauthorized, nonce base64(RAND || AUTN) = {nonce[:16]}...")
        response = self.isim.challenge(vector.rand, vector.autn)
        p.require("23", response.result == "ok", f"the UE's ISIM accepts AUTN (it said: {response.result})")
        p.step("23", "UE (ISIM, Milenage from K): AUTN verified (MAC-A, SQN in range), RES computed")
        p.require("24", response.res == vector.xres, "the UE's RES equals the XRES of the MAA")
        p.require("24", (response.ck, response.ik) == (vector.ck, vector.ik), "the UE's CK and IK equal the MAA's")
        p.step("24", f"UE -> S-CSCF: REGISTER with RES; S-CSCF: RES == XRES ({vector.xres.hex()[:8]}...), "
                     "user authenticated")
        saa = scscf.sar(impi, impu)
        self.expect_result("25", saa, DIAMETER_SUCCESS, impi)
        p.step("25", f"S-CSCF -> partner core: SAR REGISTRATION -> SAA 2001; S-CSCF -> UE: 200 OK, {impu} registered")
        return scscf

    def resynchronise(self, scscf: Any) -> None:
        """TS 33.102 §6.3.5: the UE's SQN is ahead of the HSS's, it answers with AUTS, the HSS
        re-synchronises from RAND || AUTS and the S-CSCF gets a fresh vector."""
        impi, impu = self.identities["impi"], self.identities["impu"]
        p = self.printer
        self.isim.advance(1000)  # as if the card had authenticated 1000 times elsewhere
        p.step("resync", "the UE's SQN is now ahead of the primary HSS's (used elsewhere); it registers again")
        vector = self.expect_vectors("resync", scscf.mar(impi, impu), impi, impu, scscf)
        response = self.isim.challenge(vector.rand, vector.autn)
        p.require("resync", response.result == "synch failure",
                  f"the ISIM reports a synch failure for an old SQN (it said: {response.result})")
        p.step("resync", f"UE: SQN out of range, AUTS {response.auts.hex()[:8]}...; S-CSCF -> partner core: MAR "
                         "with SIP-Authorization = RAND || AUTS")
        vector = self.expect_vectors("resync", scscf.mar(impi, impu, authorization=vector.rand + response.auts),
                                     impi, impu, scscf)
        again = self.isim.challenge(vector.rand, vector.autn)
        p.require("resync", again.result == "ok" and again.res == vector.xres,
                  f"after re-synchronisation the ISIM accepts the new AUTN and RES == XRES (it said: {again.result})")
        p.step("resync", "primary HSS re-synchronised SQN from AUTS; new vector accepted by the UE, RES == XRES")

    def unknown_user(self, scscf: Any) -> None:
        p = self.printer
        p.step("5001", f"S-CSCF -> partner core: MAR for {UNKNOWN_IMPI}, bound to nobody")
        answer = scscf.mar(UNKNOWN_IMPI, UNKNOWN_IMPU)
        self.expect_result("5001", answer, ERROR_USER_UNKNOWN, UNKNOWN_IMPI)
        p.step("5001", "partner core -> S-CSCF: Experimental-Result 5001 DIAMETER_ERROR_USER_UNKNOWN, "
                       f"User-Name={answer.get('User-Name')} echoed")

    def digest_refused(self, scscf: Any) -> None:
        impi, impu = self.identities["impi"], self.identities["impu"]
        p = self.printer
        p.step("5006", f"S-CSCF -> partner core: MAR for {impi} with scheme {DIGEST!r}")
        answer = scscf.mar(impi, impu, scheme=DIGEST)
        self.expect_result("5006", answer, ERROR_AUTH_SCHEME_NOT_SUPPORTED, impi)
        p.step("5006", "partner core -> S-CSCF: Experimental-Result 5006 DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED "
                       "(HA1 binds the user name: refused, not forwarded)")

    def expect_vectors(self, step: str, answer: Any, impi: str, impu: str, scscf: Any) -> Any:
        from gateway.demo.scscf import vectors_of

        self.expect_result(step, answer, DIAMETER_SUCCESS, impi)
        self.printer.require(step, answer.get("Public-Identity") == impu,
                             f"the MAA carries the inbound Public-Identity {impu}")
        vectors = vectors_of(answer)
        self.printer.require(step, len(vectors) == 1, f"one SIP-Auth-Data-Item in the MAA (got {len(vectors)})")
        raw = answer.encode()
        for hidden in (self.identities["outbound_impi"], REAL_IMPI, PRIMARY_REALM):
            self.printer.require(step, hidden.encode() not in raw, f"{hidden} does not reach the S-CSCF")
        self.registered_vectors.append(vectors[0])
        return vectors[0]

    def expect_result(self, step: str, answer: Any, expected: tuple[str, int], impi: str) -> None:
        from gateway.demo.scscf import result_of

        got = result_of(answer)
        self.printer.require(step, got == expected, f"{expected[0]} {expected[1]} (got {got[0]} {got[1]})")
        self.printer.require(step, answer.get("User-Name") == impi, f"the answer echoes User-Name {impi}")

    # -- the recording: steps 17-20 as they crossed the interconnect -------------------------------

    def check_recording(self) -> None:
        """Both legs from the partner core's recording, read after it stopped (the file is complete)."""
        from captures.reader import CaptureReader, NotACapture
        from cx_codec import decode
        from gateway.demo.scscf import result_of

        if not self.identities or not self.stopped:
            return
        p = self.printer
        if not p.check("17-20", self.capture.is_file(), f"the recording {self.capture} exists"):
            return
        try:
            reader = CaptureReader(self.capture)
            messages = list(reader)
        except NotACapture as error:
            p.check("17-20", False, str(error))
            return
        p.check("17-20", not reader.problems, f"the recording reads back cleanly ({'; '.join(map(str, reader.problems[:3]))})")
        messages = [m for m in messages if m.time <= self.scripted_until]
        primary_port = self.primary.ports["diameter"]
        interconnect = [m.data for m in messages if primary_port in (m.source.port, m.destination.port)]
        scscf_leg = [m.data for m in messages if primary_port not in (m.source.port, m.destination.port)]

        def of(leg: list[bytes], request: bool) -> list[Any]:
            return [decode(raw) for raw in leg if int.from_bytes(raw[5:8], "big") == MAR and bool(raw[4] & 0x80) == request]

        mars, maas = of(interconnect, True), of(interconnect, False)
        out_impi, out_impu = self.identities["outbound_impi"], self.identities["outbound_impu"]
        p.check("17-20", len(mars) == 3, f"three MARs crossed the interconnect (registration, re-sync x2; "
                                         f"got {len(mars)}): neither the unknown user's nor the Digest one")
        for mar in mars:
            p.check("18", (mar.get("User-Name"), mar.get("Public-Identity")) == (out_impi, out_impu),
                    f"the MAR on the interconnect carries the outbound identities {out_impi} / {out_impu}")
        for maa in maas:
            p.check("20", result_of(maa) == DIAMETER_SUCCESS and maa.get("User-Name") == out_impi,
                    "the primary core answered 2001 to the outbound User-Name")
        across = b"".join(interconnect)
        for hidden in (self.identities["impi"], self.identities["impu"], SCSCF):
            p.check("18", hidden.encode() not in across, f"{hidden} does not cross the interconnect")
        on_scscf_leg = b"".join(scscf_leg)
        for hidden in (out_impi, out_impu, REAL_IMPI, PRIMARY_GW):
            p.check("21", hidden.encode() not in on_scscf_leg, f"{hidden} does not reach the S-CSCF's leg")
        if mars and maas:
            p.step("17-20", f"recorded on the interconnect: {len(mars)} MAR User-Name={mars[0].get('User-Name')} "
                            f"Public-Identity={mars[0].get('Public-Identity')} -> MAA 2001 User-Name="
                            f"{maas[0].get('User-Name')}; the HSS behind it resolved {REAL_IMPI}")
        p.step("17-20", f"recorded on the S-CSCF's leg: {len(scscf_leg)} messages, inbound identities only")

    def decode_as(self) -> str:
        ports = sorted({self.partner.ports.get("diameter", 0), self.primary.ports.get("diameter", 0)} - {0})
        return " ".join(f"-d tcp.port=={port},diameter" for port in ports)

    # -- keep running, stop ---------------------------------------------------------------------------

    def keep_running(self) -> None:
        """Both cores stay up; how to reach them is printed; Ctrl-C (SIGINT) or SIGTERM stops them."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            print("both cores keep running (Ctrl-C stops them):")
            for core in (self.primary, self.partner):
                pid = core.process.pid if core.process is not None else None
                print(f"  {core.name} core (pid {pid}): Diameter 127.0.0.1:{core.ports['diameter']}, config {core.config}, "
                      f"store {core.store}, log {core.log}, metrics http://127.0.0.1:{core.ports['metrics']}/metrics")
                print(f"    provisioning API {self.api_url(core)} (bearer token in {self.token(core.name)}, "
                      f"CA {self.folder / 'tls' / 'demo-ca.pem'}, client certificate "
                      f"{self.folder / 'tls' / 'cm-primary.pem'} and .key)")
            print(f"  S-CSCF: connect to 127.0.0.1:{self.partner.ports['diameter']} as {SCSCF} "
                  f"(realm {PARTNER_REALM}); user {self.identities['impi']} / {self.identities['impu']}")
            print(f"  recording (complete once stopped): {self.capture}")
            print(f"  migrate another user: cxgw migrate --db {self.primary.store} "
                  f"--partners {self.folder / 'partners.toml'} IMPI --partner {PARTNER_ID}", flush=True)
            while not stop.wait(0.5):
                for core in (self.primary, self.partner):
                    if core.process is not None and core.process.poll() is not None:
                        self.printer.check("keep", False, f"the {core.name} core exited ({core.process.returncode})")
                        return
            print("stopping both cores", flush=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        """SIGTERM to both cores, partner first (its recording is closed), each must exit 0."""
        for core in (self.partner, self.primary):
            status = core.stop()
            if status is not None:
                self.printer.check("stop", status == 0, f"the {core.name} core stops cleanly (exit {status})")
        self.stopped = True

    # -- the provisioning APIs ----------------------------------------------------------------------

    def token(self, name: str) -> Path:
        return self.folder / f"{name}-api.token"

    def write_provisioning(self) -> None:
        """Lab certificates (a CA of our own, one certificate per API) and a bearer token per API."""
        from cryptography.hazmat.primitives import serialization

        from gateway.testing.pki import make_ca, make_cert

        def write(stem: Path, key: Any, cert: Any, private: bool) -> None:
            stem.parent.joinpath(stem.name + ".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            if private:
                path = stem.parent / (stem.name + ".key")
                path.write_bytes(key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
                path.chmod(0o600)

        tls = self.folder / "tls"
        tls.mkdir()
        ca = make_ca("cxgw demo CA")
        write(tls / "demo-ca", *ca, private=False)
        for name in ("primary", "partner"):  # the APIs are reached as https://localhost:PORT
            write(tls / f"api-{name}", *make_cert(ca, "localhost", ["localhost"]), private=True)
            path = self.token(name)
            path.write_text(secrets.token_urlsafe(32) + "\n")
            path.chmod(0o600)
        write(tls / "cm-primary", *make_cert(ca, "cm.primary.example", ["cm.primary.example"]), private=True)
        for identity in (PRIMARY_GW, PARTNER_GW):  # the interconnect's, when over TLS (RFC 6733 §13)
            write(tls / identity, *make_cert(ca, identity, [identity]), private=True)

    def provisioning(self, name: str) -> str:
        return f'''
# The provisioning API (docs/openapi.json): HTTPS with the demo's lab certificates, a bearer token.
[provisioning]
address = "127.0.0.1"
port = 0
token_file = "{self.token(name).name}"

[provisioning.tls]
certificate = "tls/api-{name}.pem"
private_key = "tls/api-{name}.key"
ca_certificates = ["tls/demo-ca.pem"]     # mutual TLS: clients need a certificate of the demo's CA
require_client_certificate = true
'''

    def api_port(self, core: Core) -> int:
        return int(core.wait_for(r"provisioning API (?:on|at) https?://127\.0\.0\.1:(\d+)", "its provisioning API").group(1))

    def api_url(self, core: Core) -> str:
        return f"https://localhost:{core.ports.get('api', 0)}"

    def write_partners_file(self) -> Path:
        """The primary CM's partners file (gateway.migration.directory): partner-a's API."""
        path = self.folder / "partners.toml"
        path.write_text(f'''# the primary CM's view of its partners (cxgw migrate --partners)
[primary]
realm = "{PRIMARY_REALM}"
host = "{PRIMARY_GW}"

[[partners]]
id = "{PARTNER_ID}"
api_url = "{self.api_url(self.partner)}"
token_file = "{self.token('partner').name}"
ca_file = "tls/demo-ca.pem"
client_cert = "tls/cm-primary.pem"
client_key = "tls/cm-primary.key"
pcscf = "sip:pcscf.partner.example:5060"
areas = [{{ lat = 50.85, lon = 4.35, radius_km = 60 }}]
''')
        return path
