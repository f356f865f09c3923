"""The configuration-management flow of a migration (TR 23.781 solution 2 steps 1-13):
gateway.migration's primary CM, its partners file and coverage areas, and `cxgw migrate`
against two live cores with their provisioning APIs, failure paths included. Every
failure is one clear line, and after it neither store holds a binding it did not hold
before (nothing half-provisioned)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gateway.migration.coverage import Circle, Location, Polygon, distance_km
from gateway.migration.directory import DirectoryError, load_directory
from gateway.migration.flow import (
    AccessGrant,
    AccessRequest,
    Exit,
    Identities,
    MigrationError,
    PrimaryCm,
    State,
)
from hss_store import open_store, operations
from hss_store.allocation import AllocationPolicy
from hss_store.records import Agreement, Subscriber

K, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf"
ALICE, ALICE_IMPU = "alice@primary.example", "sip:alice@primary.example"
BOB = "bob@primary.example"


# -- coverage areas ------------------------------------------------------------------------------

def test_distances_and_areas():
    brussels, paris = Location(50.8503, 4.3517), Location(48.8566, 2.3522)
    assert 255 < distance_km(brussels, paris) < 270  # about 264 km great-circle
    assert Circle(brussels, 60).contains(Location(51.05, 3.72))  # Ghent, ~50 km
    assert not Circle(brussels, 60).contains(paris)
    benelux = Polygon((Location(49.4, 2.5), Location(53.6, 3.3), Location(53.5, 7.2), Location(49.5, 6.4)))
    assert benelux.contains(brussels) and not benelux.contains(paris)
    with pytest.raises(ValueError, match="not a latitude"):
        Location(91, 0)


# -- the partners file ---------------------------------------------------------------------------

def _partners(folder: Path, body: str) -> Path:
    (folder / "a.token").write_text("secret-a\n")
    path = folder / "partners.toml"
    path.write_text('[primary]\nrealm = "primary.example"\nhost = "gw.primary.example"\n' + body)
    return path


PARTNER_A = '''
[[partners]]
id = "partner-a"
api_url = "https://localhost:1"
token_file = "a.token"
areas = [{ lat = 50.85, lon = 4.35, radius_km = 60 }]
[[partners]]
id = "partner-b"
api_url = "https://localhost:2"
token_file = "a.token"
areas = [{ polygon = [[48.0, 1.0], [48.0, 3.0], [49.5, 3.0], [49.5, 1.0]] }]
'''


def test_partners_file_is_read_with_paths_relative_to_it(tmp_path):
    directory = load_directory(_partners(tmp_path, PARTNER_A))
    assert directory.primary_realm == "primary.example" and directory.known() == "partner-a, partner-b"
    a = directory.by_id("partner-a")
    assert a is not None and a.token() == "secret-a" and a.token_file == tmp_path / "a.token"
    assert [p.id for p in directory.covering(Location(48.85, 2.35))] == ["partner-b"]


def test_partners_file_errors_are_all_reported_with_the_fix(tmp_path):
    path = _partners(tmp_path, '''
[[partners]]
id = "partner-a"
api_url = "ftp://x"
[[partners]]
id = "partner-b"
api_url = "http://api.partner.example"
token_file = "a.token"
tokenfile = "a.token"
client_cert = "c.pem"
areas = [{ lat = 99, lon = 4, radius_km = 60 }, { polygon = [[1, 2]] }]
''')
    with pytest.raises(DirectoryError) as raised:
        load_directory(path)
    text = str(raised.value)
    for expected in ("api_url = 'ftp://x' is not an http(s) URL", "would send the bearer token in clear", "tokenfile is not a known key; did you mean 'token_file'",
                     "token_file is missing", "client_cert and client_key go together", "lat = 99 is not a latitude",
                     "polygon must list at least 3"):
        assert expected in text, text
    with pytest.raises(DirectoryError, match="is not valid TOML"):
        load_directory(_partners(tmp_path, "[[partners]\n"))
    with pytest.raises(DirectoryError, match="cannot be read"):
        load_directory(tmp_path / "absent.toml")


# -- the flow, sans-IO: two real stores, the partner's CM in-process ------------------------------

class InProcessPartner:
    """The partner CM's rule (hss_store.operations.allocate_inbound, what its API serves) on
    the partner's store, without HTTP; ``fail`` makes the access request fail like a partner
    that refuses."""

    def __init__(self, store, fail: MigrationError | None = None) -> None:
        self.store, self.fail, self.withdrawn = store, fail, []

    def request_access(self, partner, request: AccessRequest) -> AccessGrant:
        if self.fail is not None:
            raise self.fail
        binding = operations.allocate_inbound(self.store, request.primary_realm, request.outbound.impi,
                                              request.outbound.impu, primary_host=request.primary_host)
        return AccessGrant(Identities(binding["inbound_impi"], binding["inbound_impu"]), "partner.example", None)

    def withdraw(self, partner, inbound_impi: str) -> None:
        self.withdrawn.append(inbound_impi)
        operations.revoke_binding(self.store, inbound_impi, direction="inbound")


@pytest.fixture
def stores(tmp_path):
    primary, partner = open_store(str(tmp_path / "primary.sqlite")), open_store(str(tmp_path / "partner.sqlite"))
    primary.add_subscriber(Subscriber.new(ALICE, [ALICE_IMPU], K, opc=OPC))
    primary.add_subscriber(Subscriber.new(BOB, ["sip:bob@primary.example"], K, opc=OPC))
    primary.add_agreement(Agreement("partner-a", "user", ALICE))
    primary.set_policy(AllocationPolicy("outbound", impi_pattern="out-{random}@primary.example",
                                        impu_pattern="sip:out-{random}@primary.example"))
    partner.set_policy(AllocationPolicy("inbound", impi_pattern="mig-{random}@partner.example",
                                        impu_pattern="sip:mig-{random}@partner.example"))
    yield primary, partner
    primary.close()
    partner.close()


def _active(store) -> list[dict]:
    """Every binding of both directions that is still active."""
    rows = operations.list_bindings(store, direction="both", limit=1000)
    return [row for row in rows if row["state"] == "active"]


def test_a_migration_runs_steps_1_to_13_and_keeps_the_primary_configuration(tmp_path, stores):
    primary, partner = stores
    events = []
    cm = PrimaryCm(primary, load_directory(_partners(tmp_path, PARTNER_A)), InProcessPartner(partner),
                   on_event=events.append)
    migration = cm.migrate(ALICE, location=Location(50.9, 4.4))  # near Brussels: partner-a's area
    assert migration.state is State.UE_CONFIGURED
    assert [event.step for event in events] == ["1", "2", "3", "4-6", "7", "8-12", "13"]
    configuration = migration.ue_configuration()
    assert configuration["partner"] == "partner-a" and configuration["impi"].startswith("mig-")
    assert configuration["keep_primary_configuration"] == {"impi": ALICE, "impu": ALICE_IMPU}  # NOTE 4
    [inbound] = _active(partner)
    assert (inbound["primary_impi"], inbound["inbound_impi"]) == (migration.outbound.impi, configuration["impi"])
    [outbound] = _active(primary)
    assert (outbound["real_impi"], outbound["partner_id"]) == (ALICE, "partner-a")


@pytest.mark.parametrize("case, step, code, message", [
    ("unknown partner", "3", Exit.NO_PARTNER, "unknown partner 'partner-x' (known: partner-a, partner-b)"),
    ("no agreement", "2", Exit.NOT_AUTHORISED,
     "no agreement between primary.example and partner-b for alice@primary.example; add one with: "),
    ("unknown user", "2", Exit.NOT_AUTHORISED, "carol@primary.example is not a subscriber of primary.example"),
    ("not her impu", "2", Exit.NOT_AUTHORISED, "sip:bob@primary.example is not a public identity of alice"),
    ("outside every area", "3", Exit.NO_PARTNER, "no partner system covers 0,0"),
    ("malformed impi", "2", Exit.USAGE, "IMPI"),
])
def test_refusals_before_anything_is_created(tmp_path, stores, case, step, code, message):
    primary, partner = stores
    cm = PrimaryCm(primary, load_directory(_partners(tmp_path, PARTNER_A)), InProcessPartner(partner))
    arguments = {
        "unknown partner": ((ALICE,), {"partner_id": "partner-x"}),
        "no agreement": ((ALICE,), {"partner_id": "partner-b"}),
        "unknown user": (("carol@primary.example",), {"partner_id": "partner-a"}),
        "not her impu": ((ALICE, "sip:bob@primary.example"), {"partner_id": "partner-a"}),
        "outside every area": ((ALICE,), {"location": Location(0, 0)}),
        "malformed impi": (("alice\u0000@primary.example",), {"partner_id": "partner-a"}),
    }[case]
    with pytest.raises(MigrationError) as raised:
        cm.migrate(*arguments[0], **arguments[1])
    assert (raised.value.step, raised.value.exit_code) == (step, code)
    assert str(raised.value).startswith(message), str(raised.value)
    assert _active(primary) == [] and _active(partner) == []


def test_a_partner_failure_after_step_5_revokes_the_new_outbound_binding(tmp_path, stores):
    primary, partner = stores
    refusal = MigrationError("7", Exit.PARTNER_REFUSED, "partner-a's provisioning API at https://x is unreachable: "
                             "connection refused")
    cm = PrimaryCm(primary, load_directory(_partners(tmp_path, PARTNER_A)), InProcessPartner(partner, refusal))
    with pytest.raises(MigrationError, match="unreachable: connection refused"):
        cm.migrate(ALICE, partner_id="partner-a")
    assert _active(primary) == [] and _active(partner) == []
    [revoked] = operations.list_bindings(primary, direction="outbound", limit=10)
    assert revoked["state"] == "revoked"  # compensation: kept for the record, never served


def test_an_outbound_binding_that_existed_before_is_left_alone(tmp_path, stores):
    primary, partner = stores
    before = primary.allocate_outbound(ALICE, ALICE_IMPU, "partner-a")
    refusal = MigrationError("8", Exit.PARTNER_REFUSED, "refused")
    cm = PrimaryCm(primary, load_directory(_partners(tmp_path, PARTNER_A)), InProcessPartner(partner, refusal))
    with pytest.raises(MigrationError):
        cm.migrate(ALICE, partner_id="partner-a")
    assert [row["outbound_impi"] for row in _active(primary)] == [before.outbound_impi]


def test_a_failure_at_step_13_undoes_both_sides(tmp_path, stores):
    primary, partner = stores
    access = InProcessPartner(partner)
    cm = PrimaryCm(primary, load_directory(_partners(tmp_path, PARTNER_A)), access)
    migration = cm.migrate(ALICE, partner_id="partner-a")
    with pytest.raises(MigrationError, match="UE unreachable"):
        cm.fail(migration, MigrationError("13", Exit.USAGE, "UE unreachable"))
    assert access.withdrawn == [migration.grant.inbound.impi]
    assert _active(primary) == [] and _active(partner) == []
    assert migration.state is State.FAILED and len(migration.undone) == 2


def test_cli_usage_errors_are_one_line_without_a_traceback(tmp_path, capsys):
    from gateway.cli import main

    assert main(["migrate", ALICE, "--partner", "partner-a", "--db", str(tmp_path / "none.sqlite"),
                 "--partners", str(_partners(tmp_path, PARTNER_A))]) == Exit.STORE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no store at" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["migrate", ALICE, "--location", "95,1", "--partners", "x"])
    assert "not a latitude" in capsys.readouterr().err
    assert main(["migrate", ALICE, "--partner", "a", "--db", str(tmp_path / "x"), "--partners",
                 str(tmp_path / "absent.toml"), "--json"]) == Exit.USAGE
    out = json.loads(capsys.readouterr().out)
    assert out["error"]["exit_code"] == 2 and "cannot be read" in out["error"]["message"]


# -- `cxgw migrate` against two live cores and the partner's provisioning API ---------------------

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The demo's two cores (gateway.demo), provisioned, up, with their HTTPS provisioning APIs;
    bob is a subscriber without an agreement."""
    from gateway.demo.run import Demo, Printer

    demo = Demo(tmp_path_factory.mktemp("cores"), Printer())
    try:
        demo.provision()
        with open_store(str(demo.primary.store)) as store:
            store.add_subscriber(Subscriber.new(BOB, ["sip:bob@primary.example"], K, opc=OPC))
        demo.start_cores()
        demo.write_partners_file()
        yield demo
    finally:
        demo.stop()


def _migrate(demo, *args: str, partners: Path | None = None):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "migrate", "--db", str(demo.primary.store),
         "--partners", str(partners or demo.folder / "partners.toml"), *args],
        capture_output=True, text=True, timeout=60,
    )


def _bindings_of(store_path: Path, identity: str) -> list[dict]:
    with open_store(str(store_path)) as store:
        try:
            return [b for b in operations.show_bindings(store, identity) if b["state"] == "active"]
        except operations.ProvisioningError:
            return []


def _all_active(store_path: Path) -> list[dict]:
    with open_store(str(store_path)) as store:
        return _active(store)


def _variant(demo, name: str, **changes: str) -> Path:
    """The demo's partners file with some values replaced."""
    text = (demo.folder / "partners.toml").read_text()
    for key, value in changes.items():
        text = re.sub(rf'(?m)^{key} = "[^"]*"', f'{key} = "{value}"', text)
    path = demo.folder / f"{name}.toml"
    path.write_text(text)
    return path


def test_live_migration_allocates_both_sides_and_answers_the_ue_configuration(live):
    done = _migrate(live, "alice@primary.example", "--partner", "partner-a", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    configuration = result["ue_configuration"]
    assert [step["step"] for step in result["steps"]] == ["1", "2", "3", "4-6", "7", "8-12", "13"]
    assert configuration["partner_realm"] == "partner.example" and configuration["pcscf"].startswith("sip:")
    [inbound] = _bindings_of(live.partner.store, configuration["impi"])
    [outbound] = _bindings_of(live.primary.store, ALICE)
    assert inbound["primary_impi"] == outbound["outbound_impi"] and inbound["primary_host"] == "gw.primary.example"
    # a second run is idempotent: the same identities, nothing new on either side
    again = json.loads(_migrate(live, ALICE, "--partner", "partner-a", "--json").stdout)
    assert again["ue_configuration"]["impi"] == configuration["impi"]
    assert len(_bindings_of(live.primary.store, ALICE)) == 1


@pytest.mark.parametrize("case", ["no agreement", "unknown partner", "unreachable", "token refused", "untrusted",
                                  "no client certificate"])
def test_live_failures_are_one_clear_line_and_leave_nothing_half_provisioned(live, case):
    import socket

    impi, partner, partners = BOB, "partner-a", None
    if case == "no agreement":
        code, expected = Exit.NOT_AUTHORISED, f"no agreement between primary.example and partner-a for {BOB}; add one"
    elif case == "unknown partner":
        partner, code, expected = "x", Exit.NO_PARTNER, "unknown partner 'x' (known: partner-a)"
    else:
        with open_store(str(live.primary.store)) as store:
            store.add_agreement(Agreement("partner-a", "user", f"{case.replace(' ', '')}@primary.example"))
            store.add_subscriber(Subscriber.new(f"{case.replace(' ', '')}@primary.example",
                                                [f"sip:{case.replace(' ', '')}@primary.example"], K, opc=OPC))
        impi, code = f"{case.replace(' ', '')}@primary.example", Exit.PARTNER_REFUSED
        if case == "unreachable":
            with socket.socket() as s:  # a port nobody listens on
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            partners = _variant(live, case, api_url=f"https://localhost:{port}")
            expected = f"partner-a's provisioning API at https://localhost:{port} is unreachable: connection refused"
        elif case == "token refused":
            (live.folder / "wrong.token").write_text("not-the-token\n")
            partners = _variant(live, case, token_file="wrong.token")
            expected = "refused our bearer token (HTTP 401 unauthenticated: "
        elif case == "no client certificate":
            text = (live.folder / "partners.toml").read_text()
            partners = live.folder / "nocert.toml"
            partners.write_text(re.sub(r"(?m)^client_(cert|key) = .*$", "", text))
            expected = "requires a client certificate (mutual TLS); set client_cert and client_key"
        else:
            other = live.folder / "tls" / "other-ca"
            from cryptography.hazmat.primitives import serialization

            from gateway.testing.pki import make_ca

            other.with_suffix(".pem").write_bytes(make_ca("another CA")[1].public_bytes(serialization.Encoding.PEM))
            partners = _variant(live, case, ca_file="tls/other-ca.pem")
            expected = "TLS certificate is not trusted"
    before_partner = _all_active(live.partner.store)
    done = _migrate(live, impi, "--partner", partner, partners=partners)
    assert done.returncode == code, done.stderr
    error = done.stderr.strip()
    assert "\n" not in error and "Traceback" not in error and expected in error, error
    assert _bindings_of(live.primary.store, impi) == []  # no outbound binding left active
    assert _all_active(live.partner.store) == before_partner  # no inbound binding made, or it was revoked


# -- a partner API that misbehaves ------------------------------------------------------------------

@pytest.fixture
def hostile_partner(tmp_path):
    """A plain-HTTP server on port 0 answering the access request as ``behaviour`` says: a
    partner API that is slow, broken or lying (the access request must say so in one line)."""
    import http.server
    import threading

    state = {"behaviour": "silent"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802 (http.server's name)
            # the request's body read first: closing with it unread makes the kernel reset the
            # connection, which can destroy the answer before the client reads it (the "huge"
            # case then fails with "connection reset" instead of testing the size limit)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            behaviour = state["behaviour"]
            if behaviour == "silent":
                state["release"].wait(10)
                return
            body = {
                "garbage": b"<html>not json</html>",
                "huge": b"[" + b"1," * 70000 + b"1]",
                "wrong binding": json.dumps({"inbound_impi": "mig-1@partner.example", "inbound_impu":
                                             "sip:mig-1@partner.example", "primary_impi": "someone@primary.example",
                                             "primary_impu": "sip:someone@primary.example",
                                             "primary_realm": "primary.example", "state": "active"}).encode(),
            }.get(behaviour, b"")
            self.send_response(302 if behaviour == "redirect" else 200)
            if behaviour == "redirect":
                self.send_header("Location", "http://127.0.0.1:1/steal")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    state["release"] = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "t.token").write_text("a-token-of-some-length\n")
    path = tmp_path / "partners.toml"
    path.write_text(f'[primary]\nrealm = "primary.example"\n[[partners]]\nid = "partner-a"\n'
                    f'api_url = "http://127.0.0.1:{server.server_address[1]}"\ntoken_file = "t.token"\ntimeout = 0.5\n')
    yield state, load_directory(path)
    state["release"].set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("behaviour, expected", [
    ("silent", "did not answer within 0.5 s"),
    ("garbage", "answered something that is not JSON"),
    ("huge", "answered more than 65536 bytes"),
    ("redirect", "failed (HTTP 302"),
    ("wrong binding", "answered with no usable inbound binding: bound to someone@primary.example"),
])
def test_a_partner_api_that_misbehaves_is_named_and_nothing_is_left(stores, hostile_partner, behaviour, expected):
    from gateway.migration.client import HttpsPartnerAccess

    primary, partner = stores
    state, directory = hostile_partner
    state["behaviour"] = behaviour
    with pytest.raises(MigrationError) as raised:
        PrimaryCm(primary, directory, HttpsPartnerAccess()).migrate(ALICE, partner_id="partner-a")
    assert raised.value.exit_code == Exit.PARTNER_REFUSED and expected in str(raised.value), str(raised.value)
    assert str(raised.value).startswith("partner-a's provisioning API at http://127.0.0.1:")
    assert _active(primary) == []
