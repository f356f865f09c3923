"""The provisioning API (gateway.provisioning) on a live `cxgw gateway` with [provisioning]:
every resource, authentication, error bodies, HTTPS with mutual TLS, schemathesis against
docs/openapi.json, and a revocation through the API reaching a registered user's S-CSCF as
an RTR (TS 29.228 §6.1.3)."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from gateway.provisioning import routes
from gateway.provisioning.http import MAX_BODY_BYTES, ProvisioningResource, ProvisioningSite
from gateway.testing.pki import make_ca, make_cert, write_identity
from gateway.testing.process import GatewayProcess

K, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf"
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
SERVING = re.compile(r"provisioning API on (https?)://127\.0\.0\.1:(\d+)/v1/")


class Api:
    """A synchronous client of one running API."""

    def __init__(self, port: int, token: str, context: ssl.SSLContext | None = None) -> None:
        self.port, self.token, self.context = port, token, context

    def raw(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            token: str | None = "default") -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        if self.context is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "localhost", self.port, context=self.context, timeout=30
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, got, data = self.raw(method, path, None if body is None else json.dumps(body).encode(), headers, **kw)
        assert got["content-type"] == "application/json", (status, data)
        return status, json.loads(data)


def _write_config(folder: Path, token: str, tls: str = "") -> Path:
    (folder / "token").write_text(token + "\n")
    path = folder / "gateway.toml"
    path.write_text(f"""
[node]
origin_host = "hss.primary.example"
origin_realm = "primary.example"
role = "hss"

[[listen]]
address = "127.0.0.1"
port = 0

[provisioning]
port = 0
token_file = "token"
{tls}
""")
    return path


def _start(config: Path) -> tuple[GatewayProcess, int]:
    process = GatewayProcess(str(config))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = process.find(SERVING.pattern)
        if match:
            return process, int(match.group(2))
        if process.process.poll() is not None:
            break
        time.sleep(0.05)
    process.stop()
    raise AssertionError("the gateway did not serve the provisioning API:\n" + "".join(process.lines[-30:]))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    token = secrets.token_urlsafe(32)
    folder = tmp_path_factory.mktemp("api")
    process, port = _start(_write_config(folder, token))
    yield Api(port, token), process
    process.stop()


@pytest.fixture
def api(served) -> Api:
    return served[0]


# -- the contract ----------------------------------------------------------------------------------


def test_the_served_document_is_the_one_in_the_repository(api):
    status, headers, data = api.raw("GET", "/v1/openapi.json", token=None)  # public: the contract needs no token
    assert status == 200 and headers["content-type"] == "application/json"
    assert data == OPENAPI.read_bytes()


def test_the_route_table_and_the_document_list_the_same_operations():
    document = json.loads(OPENAPI.read_text())
    documented = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item if method in ("get", "post", "put", "delete")} - {("GET", "/v1/openapi.json")}  # fmt: skip
    served = {(r.method, "/v1/" + "/".join(r.pattern)) for r in routes.ROUTES}
    assert served == documented
    codes = set(document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"])
    from gateway.provisioning.http import STATUS_OF_CODE

    assert codes == set(STATUS_OF_CODE)


# -- authentication --------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token-wrong-token-wrong", ""])
def test_requests_without_the_token_get_401_with_a_bearer_challenge(api, token):
    status, headers, data = api.raw("GET", "/v1/subscribers", token=token)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert json.loads(data)["error"]["code"] == "unauthenticated"


def test_basic_authentication_with_the_token_is_refused(api):
    status, _, _ = api.raw("GET", "/v1/policies", headers={"Authorization": f"Basic {api.token}"}, token=None)
    assert status == 401


def test_the_log_has_one_line_per_request_and_never_the_token(served):
    api, process = served
    api.raw("GET", "/v1/pools/inbound?", token=None)
    api("GET", "/v1/pools/outbound")
    deadline = time.monotonic() + 10
    while not process.find(r"GET /v1/pools/outbound 200 ") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.find(r"GET /v1/pools/outbound 200 [\d.]+ ms") and process.find(r"GET /v1/pools/inbound 401 ")
    assert api.token not in "".join(process.lines)


# -- the resources ---------------------------------------------------------------------------------


def test_subscribers(api):
    alice = {"impi": "alice@api.example", "impus": ["sip:alice@api.example", "tel:+4930111"], "k": K, "opc": OPC,
             "groups": ["police"]}  # fmt: skip
    status, body = api("POST", "/v1/subscribers", alice)
    assert status == 201 and body["impus"] == alice["impus"] and "k" not in body and "opc" not in body
    assert api("POST", "/v1/subscribers", alice)[0] == 409
    status, body = api("POST", "/v1/subscribers", {**alice, "impi": "mallory@api.example", "impus": ["tel:+4930111"]})
    assert status == 409 and "alice@api.example" in body["error"]["message"]  # one IMPU, one IMPI
    status, body = api("GET", "/v1/subscribers/alice@api.example")
    assert status == 200 and body["groups"] == ["police"] and body["sqn"] == 0
    status, body = api("GET", "/v1/subscribers?limit=1000")
    assert "alice@api.example" in [s["impi"] for s in body["subscribers"]]
    assert api("DELETE", "/v1/subscribers/alice@api.example")[0] == 200
    status, body = api("GET", "/v1/subscribers/alice@api.example")
    assert status == 404 and body["error"]["code"] == "not_found" and "subscriber add" in body["error"]["message"]


@pytest.mark.parametrize(("change", "message"), [
    ({"opc": "123"}, "OPc must be 16 bytes (32 hex digits); '123' has 3"),
    ({"amf": "80000"}, "AMF must be 2 bytes (4 hex digits)"),
    ({"schemes": ["Digest-Foo"]}, "unknown; use one of: Digest-AKAv1-MD5"),
    ({"impi": "no-realm"}, "user@realm"),
    ({"sqn": "1"}, "sqn must be an integer"),
    ({"colour": "blue"}, "unknown field(s) colour"),
])  # fmt: skip
def test_a_bad_subscriber_gets_400_naming_the_field(api, change, message):
    body = {"impi": "bad@api.example", "impus": ["sip:bad@api.example"], "k": K, "opc": OPC, **change}
    status, answer = api("POST", "/v1/subscribers", body)
    assert status == 400 and answer["error"]["code"] == "invalid_argument"
    assert message in answer["error"]["message"]


def test_the_migration_set_up_steps_4_to_6_and_9_to_11(api):
    api("POST", "/v1/subscribers", {"impi": "bob@api.example", "impus": ["sip:bob@api.example"], "k": K, "opc": OPC})
    outbound_request = {"real_impi": "bob@api.example", "real_impu": "sip:bob@api.example", "partner_id": "partner-b"}
    status, body = api("POST", "/v1/bindings/outbound", outbound_request)
    assert status in (403, 409)  # no agreement yet (or no policy): never a binding
    assert api("POST", "/v1/agreements", {"partner_id": "partner-b", "scope": "user", "value": "bob@api.example"})[0] == 201
    status, body = api("POST", "/v1/bindings/outbound", outbound_request)
    assert status == 409 and "policy set outbound" in body["error"]["message"]
    policy = {"mode": "random", "impi_pattern": "out-{random}@api.example", "impu_pattern": "sip:out-{random}@api.example"}
    assert api("PUT", "/v1/policies/outbound", policy)[1]["impi_pattern"] == policy["impi_pattern"]
    status, outbound = api("POST", "/v1/bindings/outbound", outbound_request)
    assert status == 200 and outbound["state"] == "active" and outbound["outbound_impi"].startswith("out-")
    assert api("POST", "/v1/bindings/outbound", outbound_request)[1] == outbound  # idempotent (steps 4-6 retried)

    assert api("GET", "/v1/policies/inbound")[0] == 404
    api("PUT", "/v1/policies/inbound", {"mode": "pool"})
    status, pool = api("POST", "/v1/pools/inbound", {"range": {"first": 1, "last": 3, "impi_pattern": "mig{n}@api.example",
                                                              "impu_pattern": "sip:mig{n}@api.example"}})  # fmt: skip
    assert status == 200 and pool["added"] == 3 and pool["free"] >= 3
    inbound_request = {"primary_realm": "primary.example", "primary_host": "gw.primary.example",
                       "primary_impi": outbound["outbound_impi"], "primary_impu": outbound["outbound_impu"]}  # fmt: skip
    status, inbound = api("POST", "/v1/bindings/inbound", inbound_request)
    assert status == 200 and inbound["inbound_impi"].startswith("mig") and inbound["primary_host"] == "gw.primary.example"

    # one lookup finds the chain: by the real identity, by an outbound or an inbound identity
    status, found = api("GET", "/v1/bindings/bob@api.example")
    assert [b["direction"] for b in found["bindings"]] == ["outbound"]
    status, found = api("GET", f"/v1/bindings/{outbound['outbound_impu']}")
    assert sorted(b["direction"] for b in found["bindings"]) == ["inbound", "outbound"]
    status, found = api("GET", f"/v1/bindings/{outbound['outbound_impu']}?direction=inbound")
    assert [b["inbound_impi"] for b in found["bindings"]] == [inbound["inbound_impi"]]
    status, listed = api("GET", "/v1/bindings?direction=inbound&limit=1000")
    assert {b["direction"] for b in listed["bindings"]} == {"inbound"}

    status, revoked = api("POST", f"/v1/bindings/{inbound['inbound_impi']}/revoke")
    assert status == 200 and revoked["state"] == "revoked" and revoked["revoked_at"]
    status, again = api("DELETE", f"/v1/bindings/{inbound['inbound_impi']}")
    assert status == 200 and again["revoked_at"] == revoked["revoked_at"]  # a second revocation changes nothing
    status, found = api("GET", f"/v1/bindings/{inbound['inbound_impi']}")
    assert found["bindings"][0]["state"] == "revoked"
    assert api("DELETE", f"/v1/bindings/{outbound['outbound_impi']}?direction=inbound")[0] == 404
    assert api("DELETE", f"/v1/bindings/{outbound['outbound_impi']}?direction=outbound")[1]["state"] == "revoked"


def test_agreements_and_policies(api):
    assert api("POST", "/v1/agreements", {"partner_id": "partner-c", "scope": "all"})[0] == 201
    assert api("POST", "/v1/agreements", {"partner_id": "partner-c", "scope": "group", "value": "fire"})[0] == 201
    status, body = api("GET", "/v1/agreements?partner_id=partner-c")
    assert {(a["scope"], a["value"]) for a in body["agreements"]} == {("all", ""), ("group", "fire")}
    status, body = api("DELETE", "/v1/agreements/partner-c?scope=group&value=fire")
    assert status == 200 and body["agreements"] == [{"partner_id": "partner-c", "scope": "group", "value": "fire"}]
    status, body = api("DELETE", "/v1/agreements/partner-c")
    assert status == 200 and [a["scope"] for a in body["agreements"]] == ["all"]
    assert api("DELETE", "/v1/agreements/partner-c")[0] == 404
    status, body = api("POST", "/v1/agreements", {"partner_id": "partner-c", "scope": "everyone"})
    assert status == 400 and "all, user, group" in body["error"]["message"]
    status, body = api("PUT", "/v1/policies/outbound", {"mode": "random", "impi_pattern": "no-placeholder@x.example",
                                                        "impu_pattern": "sip:x@x.example"})  # fmt: skip
    assert status == 400 and "{random}" in body["error"]["message"]
    status, body = api("GET", "/v1/policies")
    assert all(p["direction"] in ("inbound", "outbound") for p in body["policies"])


# -- HTTP errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/v1/nothing", 404, "not_found"),
    ("GET", "/", 404, "not_found"),
    ("PATCH", "/v1/subscribers", 405, "method_not_allowed"),
    ("GET", "/v1/subscribers?limit=0", 400, "invalid_argument"),
    ("GET", "/v1/subscribers?colour=blue", 400, "invalid_argument"),
    ("GET", "/v1/bindings?direction=sideways", 400, "invalid_argument"),
    ("GET", "/v1/pools/sideways", 400, "invalid_argument"),
])  # fmt: skip
def test_http_errors_have_a_json_body(api, method, path, status, code):
    got, headers, data = api.raw(method, path)
    assert got == status and headers["content-type"] == "application/json"
    assert json.loads(data)["error"]["code"] == code
    if status == 405:
        assert headers["allow"] == "GET, POST"


@pytest.mark.parametrize(("body", "content_type", "status", "code"), [
    (b"{", "application/json", 400, "invalid_argument"),
    (b"[1, 2]", "application/json", 400, "invalid_argument"),
    (b'{"partner_id": NaN}', "application/json", 400, "invalid_argument"),
    (b"\xff\xfe", "application/json", 400, "invalid_argument"),
    (b"[" * 100000 + b"]" * 100000, "application/json", 400, "invalid_argument"),
    (b'{"partner_id": "p", "scope": "all"}', "text/plain", 415, "unsupported_media_type"),
    (b'{"partner_id": "p", "scope": "all"}', "", 415, "unsupported_media_type"),
    (b" " * (MAX_BODY_BYTES + 1), "application/json", 413, "payload_too_large"),
])  # fmt: skip
def test_bad_bodies(api, body, content_type, status, code):
    headers = {"Content-Type": content_type} if content_type else {}
    got, _, data = api.raw("POST", "/v1/agreements", body, headers)
    assert (got, json.loads(data)["error"]["code"]) == (status, code)


def test_a_chunked_body_past_the_cap_gets_413(api):
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    try:
        chunks = (b"x" * 65536 for _ in range(MAX_BODY_BYTES // 65536 + 2))
        conn.request("POST", "/v1/agreements", body=chunks, encode_chunked=True,
                     headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        assert response.status == 413 and json.loads(response.read())["error"]["code"] == "payload_too_large"
    finally:
        conn.close()


# -- schemathesis ----------------------------------------------------------------------------------

SCHEMATHESIS_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_schemathesis_finds_nothing(api, tmp_path):
    """Generated requests (documented shapes and hostile values, stateful sequences) against
    the live API: no 5xx, only documented statuses, JSON bodies that match the document."""
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is not installed: pip install -e '.[test]'"
    base = f"http://127.0.0.1:{api.port}"
    done = subprocess.run(
        [st, "run", f"{base}/v1/openapi.json", "--url", base, "-H", f"Authorization: Bearer {api.token}",
         "--checks", SCHEMATHESIS_CHECKS, "--max-examples", "40", "--seed", "20261201",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert re.search(r"\d+ generated, \d+ passed", done.stdout), done.stdout[-3000:]


# -- HTTPS and mutual TLS --------------------------------------------------------------------------


def test_https_with_client_certificates(tmp_path):
    ca = make_ca("Provisioning Test CA")
    server_key, server_cert = make_cert(ca, "localhost", dns=["localhost"])
    server = write_identity(tmp_path, "server", server_key, server_cert, ca[1])
    client_key, client_cert = make_cert(ca, "migrate-client")
    client = write_identity(tmp_path, "client", client_key, client_cert, ca[1])
    token = secrets.token_urlsafe(24)
    config = _write_config(tmp_path, token, f"""
[provisioning.tls]
certificate = "{server.certificate}"
private_key = "{server.private_key}"
ca_certificates = ["{server.ca_certificates[0]}"]
require_client_certificate = true
""")
    check = subprocess.run([sys.executable, "-m", "gateway.cli", "gateway", "--config", str(config), "--check"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stderr
    process, port = _start(config)
    try:
        assert process.find(r"provisioning API on https://.*\(client certificates required\)")
        context = ssl.create_default_context(cafile=str(server.ca_certificates[0]))
        with pytest.raises((ssl.SSLError, ConnectionError)):  # no client certificate: no request
            Api(port, token, context).raw("GET", "/v1/policies")
        context.load_cert_chain(str(client.certificate), str(client.private_key))
        assert Api(port, token, context)("GET", "/v1/policies")[0] == 200
        assert Api(port, "x" * 32, context).raw("GET", "/v1/policies")[0] == 401  # the token is still needed
    finally:
        process.stop()


@pytest.mark.parametrize(("token", "problem"), [
    ("", "is empty"),
    ("short", "of 5 characters; use 16 at least"),
    ("two words and more words", "b64token"),
])  # fmt: skip
def test_check_refuses_an_unusable_token_file(tmp_path, token, problem):
    config = _write_config(tmp_path, token)
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "gateway", "--config", str(config), "--check"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "provisioning.token_file" in done.stderr and problem in done.stderr


# -- a revocation through the API reaches the S-CSCF ------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_a_revocation_through_the_api_sends_an_rtr_to_the_scscf(tmp_path):
    """TS 29.228 §6.1.3: the API's revocation goes into the store's binding change log (from its
    own connection, as in `cxgw gateway`), the partner role's watcher sees it, the S-CSCF
    that registered the user gets a Registration-Termination-Request."""
    from cx_codec import answer_for, decode
    from cx_codec.commands import ServerAssignmentRequest, new_session_id
    from gateway.applications.storage import StoreAccess
    from gateway.testing.cores import PARTNER, PARTNER_GW, PRIMARY_GW, SCSCF, Cores
    from gateway.testing.diamtest import Net, wait_for
    from hss_store import open_store

    net = Net()
    partner_db = str(tmp_path / "partner.sqlite")
    cores = Cores(net, open_store(str(tmp_path / "primary.sqlite")), open_store(partner_db))
    token = secrets.token_urlsafe(24)
    access = StoreAccess(open_store(partner_db), reactor)
    port = reactor.listenTCP(0, ProvisioningSite(ProvisioningResource(access, token, b"{}")), interface="127.0.0.1")
    try:
        yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
        cores.watcher.start()
        yield wait_for(lambda: cores.watcher.last_id is not None, what="the watch started")
        scscf = yield cores.scscf()
        inbound = cores.inbound
        scscf.send(ServerAssignmentRequest(
            hop_by_hop=5, end_to_end=5, session_id=new_session_id(SCSCF), origin_host=SCSCF, origin_realm=PARTNER,
            destination_realm=PARTNER, user_name=inbound.inbound_impi, public_identity=[inbound.inbound_impu],
            server_name="sip:scscf.partner.example:6060", server_assignment_type=1, user_data_already_available=0,
        ).encode())  # fmt: skip
        yield scscf.next()
        assert decode(scscf.messages[-1]).result_code == 2001
        client = Api(port.getHost().port, token)
        status, body = yield deferToThread(client, "POST", f"/v1/bindings/{inbound.inbound_impi}/revoke")
        assert status == 200 and body["state"] == "revoked"
        rtr = yield scscf.next(timeout=5.0)
        assert rtr.command_code == 304 and rtr.flags & 0x80 and rtr["User-Name"] == inbound.inbound_impi
        assert rtr["Origin-Host"] == PARTNER_GW
        scscf.send(answer_for(rtr, origin_host=SCSCF, origin_realm=PARTNER, result_code=2001).encode())
        yield wait_for(lambda: cores.watcher.terminated == 1, what="the RTA")
    finally:
        yield port.stopListening()
        access.close()
        yield net.stop()
        cores.close()


@pytest.mark.parametrize("name", ["primary-core", "partner-core"])
def test_the_examples_provisioning_block_uncommented_is_valid(tmp_path, name):
    """The commented [provisioning] of the loopback examples, uncommented as it says, with its token file."""
    source = (Path(__file__).resolve().parents[2] / "gateway" / "examples" / f"{name}.toml").read_text()
    block = source[source.index("# [provisioning]"):]
    uncommented = "\n".join(line.removeprefix("# ") for line in block.splitlines())
    config = tmp_path / f"{name}.toml"
    config.write_text(source.replace(block, uncommented))
    (tmp_path / f"{name}.token").write_text(secrets.token_urlsafe(32) + "\n")
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "gateway", "--config", str(config), "--check"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (tmp_path / f"{name}.token").unlink()
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "gateway", "--config", str(config), "--check"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "provisioning.token_file" in done.stderr and "No such file" in done.stderr


# -- PostgreSQL: the store called from threads, never in the reactor ----------------------------------


@pytest.mark.interop
@pytest_twisted.inlineCallbacks
def test_on_postgresql_the_api_serves_from_its_thread_pool(tmp_path, require_program):
    """A live gateway whose [store] is PostgreSQL serves the API; in process, every store call
    of the API runs outside the reactor thread (StoreAccess's pool)."""
    import threading
    import uuid

    import psycopg

    from gateway.applications.storage import StoreAccess
    from hss_store import open_store
    from hss_store.pgserver import DEFAULT_BINDIR, TemporaryPostgres

    require_program("initdb", f"{DEFAULT_BINDIR}/initdb")
    server = TemporaryPostgres()
    server.start()
    try:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"{server.url}?options=-csearch_path%3D{schema}"
        token = secrets.token_urlsafe(24)
        config = _write_config(tmp_path, token, "")
        config.write_text(config.read_text() + f'\n[store]\ntarget = "{url}"\n')
        process, port = _start(config)
        try:
            api = Api(port, token)
            body = {"impi": "pg@api.example", "impus": ["sip:pg@api.example"], "k": K, "opc": OPC}
            assert api("POST", "/v1/subscribers", body)[0] == 201
            assert api("GET", "/v1/subscribers/pg@api.example")[1]["impus"] == ["sip:pg@api.example"]
        finally:
            process.stop()
        threads: list[bool] = []
        store = open_store(url, timeout=5.0, max_connections=2)
        real_call = routes.call

        def spying(*args: Any) -> Any:
            threads.append(threading.current_thread() is threading.main_thread())
            return real_call(*args)

        access = StoreAccess(store, reactor, 5.0, 2)
        resource = ProvisioningResource(access, token, b"{}")
        original, routes.call = routes.call, spying
        try:
            port = reactor.listenTCP(0, ProvisioningSite(resource), interface="127.0.0.1")
            client = Api(port.getHost().port, token)
            status, found = yield deferToThread(client, "GET", "/v1/subscribers/pg@api.example")
            assert status == 200 and found["impi"] == "pg@api.example"
            yield port.stopListening()
        finally:
            routes.call = original
            access.close()
        assert threads == [False]
    finally:
        server.stop()



# -- [provisioning] in the configuration ------------------------------------------------------------


def _parse(tmp_path: Path, role: str, section: str) -> Any:
    from gateway.config import parse_config

    (tmp_path / "token").write_text(secrets.token_urlsafe(24))
    return parse_config(f"""
[node]
origin_host = "gw.example"
origin_realm = "example"
role = "{role}"

[metrics]
port = 9100
{section}
""", base_dir=tmp_path)


@pytest.mark.parametrize(("role", "section", "message"), [
    ("relay", '[provisioning]\ntoken_file = "token"', '[provisioning] is set but node.role is "relay"'),
    ("hss", "[provisioning]\nport = 8780", "provisioning.token_file is missing"),
    ("hss", '[provisioning]\ntoken_file = "token"\nport = 9100', "provisioning.port = 9100 on 127.0.0.1 is already used by [metrics]"),
    ("hss", '[provisioning]\ntoken_file = "token"\nadress = "::1"', "adress"),
    ("hss", '[provisioning]\ntoken_file = "token"\n[provisioning.tls]\ncertificate = "none.pem"\nprivate_key = "none.key"',
     "provisioning.tls.certificate"),
    ("hss", '[provisioning]\ntoken_file = "token"\n[provisioning.tls]\nrequire_client_certificate = true',
     "provisioning.tls.ca_certificates is missing"),
])  # fmt: skip
def test_config_errors_name_the_key(tmp_path, role, section, message):
    from gateway.config import ConfigError

    with pytest.raises(ConfigError) as error:
        _parse(tmp_path, role, section)
    assert message in str(error.value)


def test_a_changed_provisioning_section_needs_a_restart(tmp_path):
    from gateway.config import diff

    before = _parse(tmp_path, "hss", '[provisioning]\ntoken_file = "token"')
    after = _parse(tmp_path, "hss", '[provisioning]\ntoken_file = "token"\nport = 8790')
    assert before.provisioning.address == "127.0.0.1" and before.provisioning.port == 8780
    assert diff(before, after).restart_required == ("provisioning",)
    assert diff(before, _parse(tmp_path, "hss", "")).restart_required == ("provisioning",)
