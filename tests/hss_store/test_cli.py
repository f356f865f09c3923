"""`cxgw provision` end to end on a SQLite file (and once on PostgreSQL)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from hss_store import cli

K, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf"


@pytest.fixture
def provision(tmp_path, capsys):
    db = str(tmp_path / "hss.db")

    def call(*argv: str, db: str = db) -> tuple[int, str, str]:
        parser = argparse.ArgumentParser(prog="cxgw provision")
        cli.add_arguments(parser)
        code = cli.run(parser.parse_args(["--db", db, "--create", *argv]))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def test_subscriber_lifecycle(provision):
    code, out, _ = provision("subscriber", "add", "alice@ims.example.net", "--impu", "sip:alice@ims.example.net",
                             "--impu", "tel:+4930123", "--k", K, "--opc", OPC, "--group", "police")  # fmt: skip
    assert code == 0 and "sip:alice@ims.example.net, tel:+4930123" in out and K not in out
    code, out, _ = provision("--json", "subscriber", "show", "alice@ims.example.net", "--show-keys")
    data = json.loads(out)
    assert data["k"] == K and data["opc"] == OPC and data["groups"] == ["police"] and data["sqn"] == 0
    code, out, _ = provision("subscriber", "list")
    assert out.splitlines()[0].split()[:2] == ["IMPI", "IMPUS"] and "alice@ims.example.net" in out
    assert provision("subscriber", "remove", "alice@ims.example.net")[0] == 0
    code, out, err = provision("subscriber", "show", "alice@ims.example.net")
    assert code == 1 and err.startswith("error: no subscriber with IMPI 'alice@ims.example.net'")


def test_errors_are_one_line_and_json_too(provision):
    code, out, err = provision("--json", "subscriber", "add", "alice", "--impu", "sip:a@x.net", "--k", K, "--opc", OPC)
    assert code == 1 and json.loads(out)["error"]["type"] == "InvalidIdentity" and "user@realm" in err
    code, _, err = provision("subscriber", "add", "a@x.net", "--impu", "sip:a@x.net", "--k", "00", "--opc", OPC)
    assert code == 1 and "K must be 16 bytes" in err


def test_import_csv(provision, tmp_path):
    path = tmp_path / "subs.csv"
    path.write_text(
        "impi,impus,k,opc,op,amf,sqn,schemes,groups\n"
        f"a@x.net,sip:a@x.net tel:+491,{K},{OPC},,8000,64,,fire;police\n"
        f"b@x.net,sip:b@x.net,{K},,{'11' * 16},,,Digest-AKAv1-MD5;SIP Digest,\n"
        f"bad,sip:c@x.net,{K},{OPC},,,,,\n"
    )
    code, out, err = provision("--json", "subscriber", "import", str(path))
    assert code == 1 and json.loads(out)["imported"] == 2
    assert "subs.csv:4" in err and "user@realm" in err
    data = json.loads(provision("--json", "subscriber", "show", "a@x.net")[1])
    assert data["impus"] == ["sip:a@x.net", "tel:+491"] and data["sqn"] == 64 and data["groups"] == ["fire", "police"]


def test_bindings_agreements_policies_pools(provision):
    provision("subscriber", "add", "alice@primary.example", "--impu", "sip:alice@primary.example", "--k", K, "--opc", OPC)
    provision("policy", "set", "outbound", "--impi-pattern", "out-{random}@primary.example",
              "--impu-pattern", "sip:out-{random}@primary.example", "--ttl", "86400")  # fmt: skip
    args = ("binding", "allocate-outbound", "--impi", "alice@primary.example", "--impu", "sip:alice@primary.example")
    code, _, err = provision("--json", *args, "--partner", "partnerA")
    assert code == 1 and "no migration agreement" in err
    assert provision("agreement", "add", "partnerA", "--group", "police")[0] == 0
    assert provision("agreement", "add", "partnerA", "--user", "alice@primary.example")[0] == 0
    out = json.loads(provision("--json", "agreement", "list")[1])
    assert {(a["scope"], a["value"]) for a in out} == {("group", "police"), ("user", "alice@primary.example")}
    binding = json.loads(provision("--json", *args, "--partner", "partnerA")[1])
    assert binding["direction"] == "outbound" and binding["expires_at"] - binding["created_at"] == 86400
    shown = json.loads(provision("--json", "binding", "show", binding["outbound_impu"])[1])
    assert shown == {"bindings": [binding]}
    code, out, _ = provision("binding", "show", binding["outbound_impi"])
    assert "real impi" in out and "T" in out.split("created at")[1].splitlines()[0]  # ISO time for people

    provision("policy", "set", "inbound", "--pool")
    code, out, _ = provision("--json", "pool", "add", "inbound", "--range", "1", "2", "--width", "3",
                             "--impi-pattern", "mig{n}@partner.example", "--impu-pattern", "sip:mig{n}@partner.example")  # fmt: skip
    assert json.loads(out)["added"] == 2
    inbound = ("binding", "allocate-inbound", "--primary-realm", "primary.example", "--impu", "sip:u@primary.example")
    first = json.loads(provision("--json", *inbound, "--impi", "u@primary.example")[1])
    assert first["inbound_impi"] == "mig001@partner.example"
    provision(*inbound[:-2], "--impu", "sip:v@primary.example", "--impi", "v@primary.example")
    code, _, err = provision(*inbound[:-2], "--impu", "sip:w@primary.example", "--impi", "w@primary.example")
    assert code == 1 and "no free entry" in err
    assert provision("binding", "revoke", "mig001@partner.example")[0] == 0
    code, out, _ = provision("--json", "binding", "show", "mig001@partner.example")
    [shown] = json.loads(out)["bindings"]
    assert code == 0 and shown["state"] == "revoked" and shown["revoked_at"]
    rows = json.loads(provision("--json", "binding", "list", "--direction", "inbound")[1])
    assert [r["inbound_impi"] for r in rows] == ["mig001@partner.example", "mig002@partner.example"]


def test_no_db_given(provision):
    code, _, err = provision("subscriber", "list", db="")
    assert code == 1 and "--db" in err


def test_works_on_postgres(provision, postgres_url):
    code, out, _ = provision("--json", "pool", "status", "outbound", db=postgres_url)
    assert code == 0 and json.loads(out) == {"direction": "outbound", "free": 0, "used": 0}


def test_cxgw_console_entry_point(tmp_path):
    """The gateway's dispatcher reaches us (`cxgw provision`), in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "provision", "--db", str(tmp_path / "x.db"), "--create", "--json", "pool", "status", "inbound"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["free"] == 0
