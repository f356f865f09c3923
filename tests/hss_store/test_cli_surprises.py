"""`cxgw provision` tried as a new user would (issue 11, "Provisioning that does not
surprise"): one test per surprise found, each a clear answer instead."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3

import pytest

from hss_store import cli, operations
from hss_store.errors import StoreError
from hss_store.sqlite_store import SqliteStore

K, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf"
HEADER = "impi,impus,k,opc,groups\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxgw provision")
    cli.add_arguments(parser)
    return parser


@pytest.fixture(autouse=True)
def _fresh_warning(monkeypatch):
    monkeypatch.setattr(operations, "_warned_unprotected", False)  # "once per process": a test is a process here
    monkeypatch.delenv("CXGW_MASTER_KEY", raising=False)


@pytest.fixture
def db(tmp_path) -> str:
    path = str(tmp_path / "hss.db")
    SqliteStore(path).close()
    return path


@pytest.fixture
def provision(db, capsys):
    def call(*argv: str, target: str = db) -> tuple[int, str, str]:
        code = cli.run(_parser().parse_args(["--db", target, *argv]))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


def _add(provision, impi: str = "alice@primary.example", *impus: str) -> None:
    impus = impus or (f"sip:{impi}",)
    args = [a for impu in impus for a in ("--impu", impu)]
    assert provision("subscriber", "add", impi, *args, "--k", K, "--opc", OPC)[0] == 0


# -- CSV import ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data"), [
    ("latin-1", (HEADER + f"a@x.net,sip:a@x.net,{K},{OPC},pólice\n").encode("latin-1")),
    ("utf-8 with BOM", b"\xef\xbb\xbf" + (HEADER + f"a@x.net,sip:a@x.net,{K},{OPC},pólice\n").encode()),
    ("utf-16 with BOM", (HEADER + f"a@x.net,sip:a@x.net,{K},{OPC},pólice\n").encode("utf-16")),
    ("semicolons", (HEADER.replace(",", ";") + f"a@x.net;sip:a@x.net tel:+491;{K};{OPC};pólice\n").encode()),
    ("tabs and CRLF", (HEADER.replace(",", "\t") + f"a@x.net\tsip:a@x.net\t{K}\t{OPC}\tpólice\n").replace("\n", "\r\n").encode()),
    ("upper-case header", (HEADER.upper() + f"a@x.net,sip:a@x.net,{K},{OPC},pólice\n").encode()),
])  # fmt: skip
def test_csv_as_spreadsheets_write_it_imports(provision, tmp_path, name, data):
    path = tmp_path / "subs.csv"
    path.write_bytes(data)
    code, out, err = provision("--json", "subscriber", "import", str(path))
    assert code == 0 and json.loads(out)["imported"] == 1, err
    shown = json.loads(provision("--json", "subscriber", "show", "a@x.net")[1])
    assert shown["groups"] == ["pólice"] and shown["impus"][0] == "sip:a@x.net"


def test_csv_errors_name_the_line_and_the_rest_is_imported(provision, tmp_path):
    path = tmp_path / "subs.csv"
    path.write_text(HEADER + f"a@x.net,sip:a@x.net,{K},{OPC},\n\nb@x.net,sip:b@x.net,{K},123,\nc@x.net,sip:c@x.net\n"
                    f"d@x.net,sip:d@x.net,{K},{OPC},\n")  # fmt: skip
    code, out, err = provision("--json", "subscriber", "import", str(path))
    assert code == 1 and json.loads(out)["imported"] == 2
    assert f"{path}:4: OPc must be 16 bytes (32 hex digits); '123' has 3 hex digits" in err
    assert f"{path}:5: 2 fields where the header has 5" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("data", "message"), [
    (b"impi,impus,key,opc\n", "lacks the column(s) k"),
    (b"impi,impus,k,opc,name\n", "unknown column(s) 'name'"),
    (b"", "lacks the column(s) impi, impus, k"),
    (b"\x00\x01\x02impi", "NUL characters"),
    (b"\xff\xfei\x00\xd8", "byte order mark"),
])  # fmt: skip
def test_csv_that_cannot_be_imported_says_why(provision, tmp_path, data, message):
    path = tmp_path / "subs.csv"
    path.write_bytes(data)
    code, _, err = provision("subscriber", "import", str(path))
    assert code == 1 and message in err and "Traceback" not in err


# -- key fields and schemes --------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--opc", "123", "OPc must be 16 bytes (32 hex digits); '123' has 3 hex digits"),
    ("--amf", "80000", "AMF must be 2 bytes (4 hex digits); '80000' has 5 hex digits"),
    ("--k", K + "00", "K must be 16 bytes (32 hex digits); '" + K + "00' has 34 hex digits"),
    ("--opc", "zz" * 16, "is not hexadecimal"),
])  # fmt: skip
def test_a_key_of_the_wrong_length_says_so(provision, option, value, message):
    args = {"--k": K, "--opc": OPC, "--amf": "8000", option: value}
    code, _, err = provision("subscriber", "add", "a@x.net", "--impu", "sip:a@x.net", *sum(args.items(), ()))
    assert code == 1 and message in err


def test_an_unknown_scheme_is_refused_with_the_list(provision):
    code, _, err = provision("subscriber", "add", "a@x.net", "--impu", "sip:a@x.net", "--k", K, "--opc", OPC,
                             "--scheme", "Digest-AKAv3-MD5")  # fmt: skip
    assert code == 1 and "'Digest-AKAv3-MD5' is unknown; use one of: Digest-AKAv1-MD5, Digest-AKAv2-SHA-256" in err
    assert provision("subscriber", "add", "a@x.net", "--impu", "sip:a@x.net", "--k", K, "--opc", OPC,
                     "--scheme", "digest-akav2-sha-256")[0] == 0  # fmt: skip


def test_the_same_impu_under_two_impis_is_refused(provision):
    _add(provision, "alice@primary.example", "sip:alice@primary.example", "tel:+4930123")
    code, _, err = provision("subscriber", "add", "bob@primary.example", "--impu", "tel:+4930123", "--k", K, "--opc", OPC)
    assert code == 1 and "'tel:+4930123' already belongs to subscriber 'alice@primary.example'" in err
    assert provision("subscriber", "show", "bob@primary.example")[0] == 1


def test_unprotected_keys_are_warned_about_once(provision, tmp_path):
    path = tmp_path / "subs.csv"
    path.write_text(HEADER + "".join(f"u{i}@x.net,sip:u{i}@x.net,{K},{OPC},\n" for i in range(3)))
    code, _, err = provision("subscriber", "import", str(path))
    assert code == 0 and err.count("warning: K and OPc are stored unprotected") == 1
    _, _, err = provision("subscriber", "add", "v@x.net", "--impu", "sip:v@x.net", "--k", K, "--opc", OPC)
    assert "unprotected" not in err  # once per process


def test_no_warning_with_a_master_key(tmp_path, capsys):
    key = tmp_path / "master.key"
    key.write_text("ab" * 32)
    args = ["--db", str(tmp_path / "h.db"), "--create", "--master-key-file", str(key), "subscriber", "add", "a@x.net",
            "--impu", "sip:a@x.net", "--k", K, "--opc", OPC]  # fmt: skip
    assert cli.run(_parser().parse_args(args)) == 0
    assert "unprotected" not in capsys.readouterr().err


# -- the store given ---------------------------------------------------------------------------------


def test_a_missing_file_is_not_created_unless_asked(tmp_path, capsys):
    path = tmp_path / "typo.db"
    for argv in (["subscriber", "list"], ["agreement", "add", "p", "--all"]):
        assert cli.run(_parser().parse_args(["--db", str(path), *argv])) == 1
        assert f"no store at '{path}'; check the path, or create one with: cxgw provision --db {path} init" in (
            capsys.readouterr().err
        )
        assert not path.exists() and not list(tmp_path.iterdir())
    assert cli.run(_parser().parse_args(["--db", str(path), "init"])) == 0
    assert "store ready" in capsys.readouterr().out and path.exists()
    other = tmp_path / "other.db"
    assert cli.run(_parser().parse_args(["--db", str(other), "pool", "status", "inbound", "--create"])) == 0
    assert other.exists()


def test_read_commands_open_the_file_read_only(provision, db, tmp_path, monkeypatch):
    _add(provision)
    opened: list[dict[str, object]] = []
    real_init = SqliteStore.__init__

    def spy(self, path, **options):
        opened.append(options)
        real_init(self, path, **options)

    monkeypatch.setattr(SqliteStore, "__init__", spy)
    os.chmod(db, 0o444)  # binds a non-root user; root reads through mode=ro all the same
    try:
        for argv in (["subscriber", "show", "alice@primary.example"], ["subscriber", "list"], ["binding", "list"],
                     ["agreement", "list"], ["policy", "show", "inbound"], ["pool", "status", "inbound"]):  # fmt: skip
            code, _, err = provision(*argv)
            assert code == 0, (argv, err)
            assert opened.pop().get("read_only") is True
    finally:
        os.chmod(db, 0o644)
    store = SqliteStore(db, read_only=True)
    try:
        with pytest.raises(StoreError, match="readonly"):
            store.add_agreement(operations._agreement("p", "all", ""))
        assert [s.impi for s in store.list_subscribers()] == ["alice@primary.example"]
    finally:
        store.close()
    with sqlite3.connect(db) as conn:  # nothing written by the read commands
        assert conn.execute("SELECT COUNT(*) FROM agreement").fetchone()[0] == 0


@pytest.mark.parametrize("url", ["mysql://root@localhost/hss", "sqlite:///hss.db", "redis://x"])
def test_other_database_urls_are_refused_as_unsupported(provision, url):
    code, out, err = provision("--json", "subscriber", "list", target=url)
    scheme = url.split("://")[0]
    assert code == 1 and f"{scheme}:// stores are not supported; use postgresql://" in err
    assert json.loads(out)["error"]["code"] == "unsupported"


# -- output --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["--json", "pool", "status", "inbound"],
    ["pool", "--json", "status", "inbound"],
    ["pool", "status", "--json", "inbound"],
    ["pool", "status", "inbound", "--json"],
])  # fmt: skip
def test_json_wherever_it_is_placed(provision, argv):
    code, out, _ = provision(*argv)
    assert code == 0 and json.loads(out) == {"direction": "inbound", "free": 0, "used": 0}


def test_agreement_remove_says_a_sentence(provision):
    provision("agreement", "add", "partner-a", "--all")
    provision("agreement", "add", "partner-a", "--group", "police")
    code, out, _ = provision("agreement", "remove", "partner-a", "--all")
    assert code == 0 and out.strip() == "partner partner-a may no longer migrate every user"
    code, out, _ = provision("agreement", "remove", "partner-a", "--every")
    assert out.strip() == "partner partner-a may no longer migrate the users of group police"
    code, _, err = provision("agreement", "remove", "partner-a")
    assert code == 1 and "--every" in err
    assert provision("agreement", "list")[1].strip() == "no agreements"


def test_policy_show_with_none_set_says_so(provision):
    code, out, err = provision("policy", "show", "inbound")
    assert code == 0 and err == ""
    assert out.startswith("no inbound allocation policy is set; set one with: cxgw provision policy set inbound")
    code, out, _ = provision("--json", "policy", "show", "outbound")
    assert code == 0 and json.loads(out)["policy"] is None


# -- bindings of both directions ---------------------------------------------------------------------


@pytest.fixture
def chain(provision):
    """One store playing both sides: alice's outbound binding and the inbound one bound to it."""
    _add(provision)
    provision("agreement", "add", "partner-a", "--all")
    provision("policy", "set", "outbound", "--impi-pattern", "out-{random}@primary.example",
              "--impu-pattern", "sip:out-{random}@primary.example")  # fmt: skip
    provision("policy", "set", "inbound", "--impi-pattern", "mig-{random}@partner.example",
              "--impu-pattern", "sip:mig-{random}@partner.example")  # fmt: skip
    outbound = json.loads(provision("--json", "binding", "allocate-outbound", "--impi", "alice@primary.example",
                                    "--impu", "sip:alice@primary.example", "--partner", "partner-a")[1])  # fmt: skip
    inbound = json.loads(provision("--json", "binding", "allocate-inbound", "--primary-realm", "primary.example",
                                   "--impi", outbound["outbound_impi"], "--impu", outbound["outbound_impu"])[1])  # fmt: skip
    return outbound, inbound


def test_binding_show_finds_either_direction_and_the_real_identity(provision, chain):
    outbound, inbound = chain
    def show(*argv: str) -> list[dict[str, object]]:
        return json.loads(provision("--json", "binding", "show", *argv)[1])["bindings"]

    assert show(inbound["inbound_impu"]) == [inbound]
    assert show(outbound["outbound_impi"], "--direction", "outbound") == [outbound]
    both = show(outbound["outbound_impi"])
    assert [b["direction"] for b in both] == ["outbound", "inbound"]  # the outbound IMPI is the inbound's primary IMPI
    code, out, _ = provision("binding", "show", "alice@primary.example")  # the real identity: every binding of alice
    assert code == 0 and outbound["outbound_impi"] in out and "state" in out
    code, _, err = provision("binding", "show", "nobody@primary.example")
    assert code == 1 and "no inbound or outbound migration binding names 'nobody@primary.example'" in err


def test_binding_revoke_and_list_without_guessing(provision, chain):
    outbound, inbound = chain
    code, out, _ = provision("--json", "binding", "revoke", inbound["inbound_impi"])
    assert code == 0 and json.loads(out)["state"] == "revoked"
    code, _, err = provision("binding", "revoke", inbound["inbound_impu"])
    assert code == 1 and "revoke by the IMPI, not the IMPU" in err
    code, _, err = provision("binding", "revoke", outbound["outbound_impi"], "--direction", "inbound")
    assert code == 1 and "no inbound migration binding has the IMPI" in err
    rows = json.loads(provision("--json", "binding", "list")[1])
    assert {(r["direction"], r["state"]) for r in rows} == {("outbound", "active"), ("inbound", "revoked")}
    code, out, _ = provision("binding", "list")
    assert "outbound:" in out and "inbound:" in out and "revoked" in out
    [shown] = json.loads(provision("--json", "binding", "show", inbound["inbound_impi"])[1])["bindings"]
    assert shown["state"] == "revoked" and shown["revoked_at"] is not None


# -- help -------------------------------------------------------------------------------------------------


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), helps.get(name), sub
                yield from _leaves(sub, (*path, name))


def test_every_subcommand_has_help():
    leaves = list(_leaves(_parser()))
    assert len(leaves) > 20
    for path, text, sub in leaves:
        assert text and sub.description, path
        for action in sub._actions:
            if action.option_strings or isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, (path, action.dest)  # positional arguments too


def test_binding_help_explains_the_chain(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["binding", "--help"])
    text = capsys.readouterr().out
    assert "real IMPI/IMPU  --(primary, steps 4-6)-->  outbound IMPI/IMPU  --(partner, steps 9-11)-->  inbound" in text


def test_bindings_of_finds_the_chain_on_both_backends(store):
    """The store call behind `binding show` (and GET /v1/bindings/{identity}), SQLite and PostgreSQL."""
    from hss_store.allocation import AllocationPolicy
    from hss_store.records import Agreement, PrimaryDatabase, Subscriber

    store.add_subscriber(Subscriber.new("alice@primary.example", ["sip:alice@primary.example"], K, opc=OPC))
    store.add_agreement(Agreement("partner-a", "all"))
    for direction, domain in (("outbound", "primary"), ("inbound", "partner")):
        store.set_policy(AllocationPolicy(direction, impi_pattern=f"{direction}-{{random}}@{domain}.example",
                                          impu_pattern=f"sip:{direction}-{{random}}@{domain}.example"))  # fmt: skip
    out = store.allocate_outbound("alice@primary.example", "sip:alice@primary.example", "partner-a")
    inb = store.allocate_inbound(PrimaryDatabase("primary.example"), out.outbound_impi, out.outbound_impu)
    store.revoke_inbound(inb.inbound_impi)
    assert store.bindings_of("sip:alice@primary.example") == [out]
    assert [type(b).__name__ for b in store.bindings_of(out.outbound_impu)] == ["OutboundBinding", "InboundBinding"]
    [revoked] = store.bindings_of(inb.inbound_impi)
    assert revoked.revoked_at is not None and store.bindings_of(inb.inbound_impu) == [revoked]
    assert store.bindings_of("nobody@x.example") == []
