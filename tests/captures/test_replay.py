"""`cxgw capture replay` (a real process) against a live pair of cores in the test's
reactor: the samples replay with zero differences; a changed answer (cores that do not
know the user) is a difference with exit 1; an identity map makes a capture of one
environment replay against cores with other identities; timing modes; one-line errors.
The comparison and the map are also tested on bytes."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.protocol import Factory

from captures.reader import CaptureReader
from captures.replay.compare import differences, mask_names
from captures.replay.identities import IdentityMap, MapError, load_map
from captures.samples.make import SCENARIOS, sample_cores
from cx_codec import decode_lazy, new_request
from cx_codec.rewrite import rewrite
from gateway.settings import PeerSettings
from gateway.testing.cores import PARTNER_GW, PRIMARY_GW, SCSCF
from gateway.testing.diamtest import Answering, Net, wait_for
from gateway.testing.process import GatewayProcess, provision, until

SAMPLES = Path(__file__).resolve().parents[2] / "captures" / "samples"
REGISTRATION = SAMPLES / "registration.pcapng"


def cxgw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def replay(*args: str):
    """The replay as a child process, while the test's reactor serves the cores."""
    return threads.deferToThread(cxgw, "capture", "replay", *args)


class Live:
    def __init__(self, tmp_path: Path, **identities) -> None:
        self.net = Net()
        self.cores = sample_cores(self.net, tmp_path, **identities)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.net.ports[PARTNER_GW]}"


@pytest.fixture
def live(tmp_path):
    built = Live(tmp_path)
    pytest_twisted.blockon(wait_for(lambda: built.cores.partner.peers[PRIMARY_GW].available, 10.0, "the interconnect"))
    yield built
    pytest_twisted.blockon(built.net.stop())
    built.cores.close()


@pytest.fixture
def strangers(tmp_path):
    """Cores whose user has other inbound and outbound identities than the samples'."""
    folder = tmp_path / "strangers"
    folder.mkdir()
    built = Live(folder, inbound=("mig-7@partner.example", "sip:mig-7@partner.example"),
                 outbound=("out-7@primary.example", "sip:out-7@primary.example"))
    pytest_twisted.blockon(wait_for(lambda: built.cores.partner.peers[PRIMARY_GW].available, 10.0, "the interconnect"))
    yield built
    pytest_twisted.blockon(built.net.stop())
    built.cores.close()


@pytest_twisted.inlineCallbacks
def test_every_sample_replays_with_zero_differences(live):
    for name in SCENARIOS:
        done = yield replay(SAMPLES / f"{name}.pcapng", "--target", live.target, "--json")
        assert done.returncode == 0, (name, done.stdout, done.stderr)
        report = json.loads(done.stdout)
        assert report["ok"] and report["differing"] == [] and report["missing"] == [], name
        assert report["target_identity"] == PARTNER_GW and report["client"] == "scscf.partner.example"
        expected = {"registration": 2, "resync": 1, "unknown-user": 1, "digest-refused": 1}[name]
        assert report["matched"] == expected and report["sent"] == expected, (name, report)
        assert report["unexpected_answers"] == 0 and set(report["latency_ms"]) == {"p50", "p90", "p99"}


@pytest_twisted.inlineCallbacks
def test_the_redacted_resync_mar_is_skipped_and_said_why(live):
    done = yield replay(SAMPLES / "resync.pcapng", "--target", live.target)
    assert done.returncode == 0, done.stderr
    assert "skipped #9 MAR" in done.stdout and "SIP-Authorization redacted in the capture" in done.stdout
    assert "matched    1" in done.stdout and "result: no differences" in done.stdout


@pytest_twisted.inlineCallbacks
def test_timing_original_and_rate_replay_the_same(live):
    for mode in (["--timing", "original"], ["--rate", "50"], ["--window", "1"]):
        done = yield replay(REGISTRATION, "--target", live.target, *mode)
        assert done.returncode == 0 and "matched    2" in done.stdout, (mode, done.stdout, done.stderr)


@pytest_twisted.inlineCallbacks
def test_a_changed_answer_is_a_difference_with_exit_1(strangers):
    """The strangers' cores do not know mig-sample: the MAR gets 5001 where 2001 was
    recorded, the SAR too (a difference each, readable per AVP)."""
    done = yield replay(REGISTRATION, "--target", strangers.target)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "differing  2" in done.stdout and "result: DIFFERENCES" in done.stdout
    assert "Experimental-Result: not recorded, got (grouped)" in done.stdout
    assert "Result-Code: recorded 2001, missing in the answer" in done.stdout
    assert "SIP-Auth-Data-Item: recorded (grouped), missing in the answer" in done.stdout
    done = yield replay(REGISTRATION, "--target", strangers.target, "--json")
    report = json.loads(done.stdout)
    assert report["ok"] is False and [entry["command"] for entry in report["differing"]] == ["MAR", "SAR"]
    assert all(entry["result"] == "5001 (exp)" for entry in report["differing"])


@pytest_twisted.inlineCallbacks
def test_an_identity_map_replays_a_capture_against_other_identities(strangers, tmp_path):
    mapping = tmp_path / "map.toml"
    mapping.write_text('[identities]\n"mig-sample@partner.example" = "mig-7@partner.example"\n'
                       '"sip:mig-sample@partner.example" = "sip:mig-7@partner.example"\n')
    done = yield replay(REGISTRATION, "--target", strangers.target, "--map", mapping)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "matched    2" in done.stdout and "result: no differences" in done.stdout


@pytest_twisted.inlineCallbacks
def test_the_mask_decides_what_is_compared(live):
    # without the default mask the vectors and ids differ (random and redacted): exit 1
    done = yield replay(REGISTRATION, "--target", live.target, "--no-default-mask", "--command", "MAR")
    assert done.returncode == 1
    assert "SIP-Auth-Data-Item / SIP-Authenticate: recorded 0x5245444143544544" in done.stdout
    assert "Session-Id" not in done.stdout  # the answer's Session-Id is the request's, as recorded
    # masking one more AVP of an agreeing answer changes nothing
    done = yield replay(REGISTRATION, "--target", live.target, "--mask", "User-Name", "--command", "SAR")
    assert done.returncode == 0 and "matched    1" in done.stdout


@pytest_twisted.inlineCallbacks
def test_a_target_that_refuses_or_is_not_there_is_one_line_exit_2(live, tmp_path):
    done = yield replay(REGISTRATION, "--target", live.target, "--origin-host", "stranger.partner.example")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"cxgw capture replay: {live.target}: gw.partner.example refused the capabilities "
                                  "exchange: CEA Result-Code 3010 DIAMETER_UNKNOWN_PEER"), done.stderr
    assert len(done.stderr.splitlines()) == 1
    port = reactor.listenTCP(0, Factory(), interface="127.0.0.1")  # a port with nothing listening any more
    number = port.getHost().port
    yield port.stopListening()
    done = yield replay(REGISTRATION, "--target", f"127.0.0.1:{number}")
    assert done.returncode == 2 and "cannot connect to 127.0.0.1:" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "localhost"], "--target 'localhost' is not HOST:PORT"),
        (["--target", "127.0.0.1:1", "--mask", "No-Such-Avp"], "--mask 'No-Such-Avp' is not an AVP"),
        (["--target", "127.0.0.1:1", "--rate", "0"], "--rate 0 must be above 0"),
        (["--target", "127.0.0.1:1", "--command", "XYZ"], "--command 'XYZ' is not a Diameter command"),
        (["--target", "127.0.0.1:1", "--map", "/no/such/map.toml"], "--map /no/such/map.toml: no such file"),
        (["--target", "127.0.0.1:1", "--command", "LIR"], "no request to replay (after the filters)"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, message):
    done = cxgw("capture", "replay", REGISTRATION, *args)
    assert done.returncode == 2 and done.stdout == ""
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_file_that_is_not_a_capture_is_one_line(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    done = cxgw("capture", "replay", bad, "--target", "127.0.0.1:1")
    assert done.returncode == 2 and "is not a pcap or pcapng file" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# -- on bytes -----------------------------------------------------------------------------
def _answers() -> list[bytes]:
    return [message.data for message in CaptureReader(REGISTRATION)
            if not message.data[4] & 0x80 and message.data[5:8] == (303).to_bytes(3, "big")]


def test_differences_name_the_avp_and_both_values():
    maa = _answers()[0]
    changed = rewrite(maa, {(1, 0): b"someone-else@partner.example"})
    found = differences(decode_lazy(maa), decode_lazy(changed), mask_names([]))
    assert found == ["User-Name: recorded 'mig-sample@partner.example', got 'someone-else@partner.example'"] or \
        found == ["User-Name: recorded 'out-sample@primary.example', got 'someone-else@partner.example'"]
    assert differences(decode_lazy(maa), decode_lazy(changed), mask_names(["User-Name"])) == []
    assert differences(decode_lazy(maa), decode_lazy(maa), mask_names([], default=False)) == []
    flagged = maa[:4] + bytes([maa[4] | 0x20]) + maa[5:]
    assert differences(decode_lazy(maa), decode_lazy(flagged), mask_names([])) == ["flags: recorded -P-, got -PE"]


def test_the_identity_map_rewrites_identities_realms_and_hosts(tmp_path):
    mar = next(message.data for message in CaptureReader(REGISTRATION) if message.data[4] & 0x80
               and message.data[5:8] == (303).to_bytes(3, "big"))
    mapping = tmp_path / "map.toml"
    mapping.write_text('[identities]\n"mig-sample@partner.example" = "mig-1@lab.example"\n'
                       '[realms]\n"partner.example" = "partner.lab"\n')
    identity = load_map(mapping)
    mapped = decode_lazy(identity.message(mar))
    assert mapped["User-Name"] == "mig-1@lab.example"  # exact entry first
    assert mapped["Public-Identity"] == "sip:mig-sample@partner.lab"  # else the realm of its domain
    assert mapped["Origin-Host"] == "scscf.partner.lab" and mapped["Origin-Realm"] == "partner.lab"
    assert mapped["Destination-Realm"] == "partner.lab"
    assert IdentityMap().message(mar) == mar


def test_the_identity_map_rewrites_every_avp_of_a_key_and_keeps_the_rest():
    from cx_codec.avp_header import pack_avp

    avps = [pack_avp(1, 0x40, 0, b"mig-sample@partner.example"),  # User-Name, then two Public-Identity (SAR)
            pack_avp(601, 0xC0, 10415, b"sip:mig-sample@partner.example"),
            pack_avp(601, 0xC0, 10415, b"tel:+15550100"),
            pack_avp(601, 0xC0, 10415, b"sip:other@partner.example"),
            pack_avp(123, 0x00, 0, b"x")]  # an unknown AVP, padded
    body = b"".join(avps)
    sar = bytes([1]) + (20 + len(body)).to_bytes(3, "big") + bytes([0xC0]) + (301).to_bytes(3, "big") + bytes(12) + body
    mapped = IdentityMap({"sip:mig-sample@partner.example": "sip:mig-1@lab.example"}, {"partner.example": "lab.example"}).message(sar)
    assert int.from_bytes(mapped[1:4], "big") == len(mapped)
    assert mapped[20:].startswith(pack_avp(1, 0x40, 0, b"mig-sample@lab.example"))
    assert pack_avp(601, 0xC0, 10415, b"sip:mig-1@lab.example") in mapped
    assert pack_avp(601, 0xC0, 10415, b"tel:+15550100") in mapped
    assert pack_avp(601, 0xC0, 10415, b"sip:other@lab.example") in mapped
    assert mapped.endswith(avps[-1])
    broken = sar[:-4]  # the last AVP overruns: replayed as captured
    assert IdentityMap({}, {"partner.example": "lab.example"}).message(broken[:1] + (len(broken)).to_bytes(3, "big") + broken[4:]) \
        == broken[:1] + (len(broken)).to_bytes(3, "big") + broken[4:]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[users]\n", "[users] is not a section of an identity map"),
        ('[identities]\n"a@b" = 3\n', '[identities] "a@b" = 3 is not a string'),
        ("identities = 1\n", "identities must be a table"),
        ("[identities\n", "not TOML"),
    ],
)
def test_bad_map_files_are_named(tmp_path, text, message):
    path = tmp_path / "map.toml"
    path.write_text(text)
    with pytest.raises(MapError, match="--map .*map.toml: ") as raised:
        load_map(path)
    assert message in str(raised.value)


def test_a_long_text_difference_is_shown_where_the_texts_part():
    saa = next(message.data for message in CaptureReader(REGISTRATION)
               if not message.data[4] & 0x80 and message.data[5:8] == (301).to_bytes(3, "big"))
    xml = decode_lazy(saa).find("User-Data").data
    changed = rewrite(saa, {(606, 10415): xml.replace(b"mig-sample@", b"mig-other@")})
    [line] = differences(decode_lazy(saa), decode_lazy(changed), mask_names([]))
    assert line.startswith("User-Data: recorded '...") and "mig-sample@partner.example</PrivateID>" in line
    assert "mig-other@partner.example</PrivateID>" in line and len(line) < 300
    mapped = IdentityMap({"mig-sample@partner.example": "mig-other@partner.example",
                          "sip:mig-sample@partner.example": "sip:mig-other@partner.example"}).message(saa)
    assert decode_lazy(mapped).find("User-Data").data == xml.replace(b"mig-sample@", b"mig-other@")


@pytest_twisted.inlineCallbacks
def test_requests_without_an_answer_are_missing_with_exit_1(tmp_path):
    """A target that accepts the capture's client and never answers its Cx requests."""
    net = Net()
    silent = Answering("hss.partner.example", "partner.example", never=True)
    net.node("hss.partner.example", "partner.example", peers=[PeerSettings(SCSCF, "partner.example", connect=False)],
             app=silent)
    try:
        done = yield replay(REGISTRATION, "--target", f"127.0.0.1:{net.ports['hss.partner.example']}",
                            "--timeout", "0.3", "--json")
        report = json.loads(done.stdout)
        assert done.returncode == 1 and report["ok"] is False, done.stderr
        assert [entry["command"] for entry in report["missing"]] == ["MAR", "SAR"] and report["matched"] == 0
        assert silent.calls == 2
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_a_capture_made_by_tshark_shows_and_replays_with_zero_differences(live, tmp_path, require_program):
    """Captures from elsewhere: tshark records the loopback while a sample is replayed
    through the cores (real TCP, Ethernet framing, no comments); show reads it, its ladder
    ties the translated MAR to the original by order, and it replays in turn."""
    tshark = require_program("tshark")
    port, interconnect = live.net.ports[PARTNER_GW], live.net.ports[PRIMARY_GW]
    foreign = tmp_path / "tshark.pcapng"
    capture = subprocess.Popen([tshark, "-n", "-l", "-i", "lo", "-f", f"port {port} or port {interconnect}",
                                "-w", str(foreign), "-P"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    log: list[str] = []
    threading.Thread(target=lambda: seen.extend(capture.stdout), daemon=True).start()
    threading.Thread(target=lambda: log.extend(capture.stderr), daemon=True).start()
    try:
        yield wait_for(lambda: any("Capturing on" in line for line in log) or capture.poll() is not None, 30.0,
                       "tshark to start")
        assert capture.poll() is None, "".join(log)
        done = yield replay(REGISTRATION, "--target", live.target)
        assert done.returncode == 0, done.stdout + done.stderr
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:  # packets reach a capture late: a marker
            marker.sendto(b"end", ("127.0.0.1", port))
        yield wait_for(lambda: any(" UDP " in line for line in seen), 30.0, "tshark to see the end marker")
    finally:
        capture.send_signal(signal.SIGINT)
        capture.wait(30)
    shown = yield threads.deferToThread(cxgw, "capture", "show", foreign, "--ladder", "--command", "MAR")
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if " MA" in line]
    assert len(rows) == 4 and "MAR #" in rows[0], shown.stdout
    original = re.search(r"MAR #(\d+)", rows[0]).group(1)
    assert f"(from #{original})" in rows[1]
    done = yield replay(foreign, "--target", live.target, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["matched"] == 2


# -- the client without a network (twisted.internet.testing) --------------------------------
def _client(window: int = 2, count: int = 5, at: float = 0.0):
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    from captures.replay.client import Outgoing, ReplayClient
    from captures.samples.make import mar

    clock = Clock()
    cer = next(message.data for message in CaptureReader(REGISTRATION) if message.data[5:8] == (257).to_bytes(3, "big")
               and message.data[4] & 0x80 and b"scscf" in message.data)
    plan = [Outgoing(index, mar(index + 1), at * index) for index in range(count)]
    client = ReplayClient(clock, cer, ("scscf.partner.example", "partner.example"), plan, window=window, timeout=1.0)
    transport = StringTransport()
    client.makeConnection(transport)
    return client, transport, clock


def _sent(transport) -> list[bytes]:
    from gateway.transport.framing import Framer

    data = transport.value()
    transport.clear()
    return Framer(1 << 24).feed(data)


def _answer(request: bytes, result: int = 2001) -> bytes:
    from cx_codec import answer_for, decode

    return answer_for(decode(request, validate=False), origin_host="gw.partner.example",
                      origin_realm="partner.example", result_code=result).encode()


def test_the_client_keeps_the_window_matches_by_hop_by_hop_and_reports_the_rest():
    client, transport, clock = _client(window=2, count=5)
    [cer] = _sent(transport)
    assert decode_lazy(cer)["Origin-Host"] == "scscf.partner.example"
    assert decode_lazy(cer)["Host-IP-Address"] is not None
    client.dataReceived(_answer(cer))  # CEA 2001: the first two requests go
    first = _sent(transport)
    assert len(first) == 2 and len({request[12:16] for request in first}) == 2
    client.dataReceived(_answer(first[1]))  # answers in any order, matched by hop-by-hop id
    assert len(_sent(transport)) == 1
    client.dataReceived(_answer(first[1]))  # the same again: nobody waits for it
    assert client.outcome.unexpected_answers == [_answer(first[1])]
    dwr = new_request("Device-Watchdog-Request", hop_by_hop=77, end_to_end=77, origin_host="gw.partner.example",
                      origin_realm="partner.example").encode()
    client.dataReceived(dwr)  # answered at once (RFC 3539)
    [dwa] = _sent(transport)
    assert dwa[5:8] == dwr[5:8] and not dwa[4] & 0x80 and dwa[12:16] == dwr[12:16]
    clock.advance(1.0)  # first[0] and the third time out: the last two go
    assert len(_sent(transport)) == 2
    clock.advance(1.0)
    [dpr] = _sent(transport)  # nothing left: DPR (RFC 6733 §5.4)
    assert dpr[5:8] == (282).to_bytes(3, "big")
    answered = [exchange for exchange in client.outcome.exchanged if exchange.answer is not None]
    assert len(client.outcome.exchanged) == 5 and len(answered) == 1


def test_the_client_sends_at_the_planned_times():
    client, transport, clock = _client(window=10, count=3, at=0.5)
    [cer] = _sent(transport)
    client.dataReceived(_answer(cer))
    assert len(_sent(transport)) == 1
    clock.advance(0.5)
    assert len(_sent(transport)) == 1
    clock.advance(0.5)
    assert len(_sent(transport)) == 1


def test_a_refused_cea_fails_the_replay_with_the_result_and_the_fix():
    from captures.replay.client import ReplayError

    client, transport, _ = _client()
    [cer] = _sent(transport)
    client.dataReceived(_answer(cer, 3010))
    failure = client.done.result
    client.done.addErrback(lambda _: None)
    assert isinstance(failure.value, ReplayError)
    assert "CEA Result-Code 3010 DIAMETER_UNKNOWN_PEER" in str(failure.value) and transport.disconnecting


def test_the_progress_bar_is_for_long_replays_on_a_terminal(monkeypatch, capsys):
    from captures import replay as command

    assert command.progress_bar(5000) is None  # pytest's stderr is no terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert command.progress_bar(10) is None
    show = command.progress_bar(200)
    show(100, 200)
    show(200, 200)
    err = capsys.readouterr().err
    assert "\rreplay [###############...............] 100/200" in err and err.endswith("200/200\n")


# -- the shipped examples as real processes, provisioned as captures/samples/README.md says --
EXAMPLES = Path(__file__).resolve().parents[2] / "gateway" / "examples"
LISTENING = r"listening on 127\.0\.0\.1:(\d+) \(tcp\)"


def _example(name: str, folder: Path, primary_port: int | None = None) -> Path:
    text = re.sub(r"(?m)^port = \d+", "port = 0", (EXAMPLES / name).read_text())  # ports the OS picks
    if primary_port is not None:  # the [[peers]] entry of gw.primary.example
        text = re.sub(r'(host = "gw\.primary\.example"\s*\nrealm = "primary\.example"\s*\naddress = "127\.0\.0\.1"\n)'
                      r"port = 0\n", rf"\1port = {primary_port}\n", text)
    path = folder / name
    path.write_text(text)
    return path


def _readme_provisioning(folder: Path) -> None:
    """The `cxgw provision` lines of captures/samples/README.md, run against ``folder``."""
    readme = (SAMPLES / "README.md").read_text()
    block = readme.split("## Replaying them")[1].split("```sh\n")[1].split("```")[0].replace("\\\n", " ")
    databases = {"$P": str(folder / "primary-core.sqlite"), "$Q": str(folder / "partner-core.sqlite")}
    for line in block.splitlines():
        words = line.split()
        if words and words[0] in databases:
            provision(databases[words[0]], *words[1:])


@pytest_twisted.ensureDeferred
async def test_the_samples_replay_against_the_shipped_examples_provisioned_as_the_readme_says(tmp_path):
    _readme_provisioning(tmp_path)
    primary = GatewayProcess(str(_example("primary-core.toml", tmp_path)))
    partner = None
    try:
        primary_port = int((await until(lambda: primary.find(LISTENING), "the primary's port", primary)).group(1))
        partner = GatewayProcess(str(_example("partner-core.toml", tmp_path, primary_port)))
        port = int((await until(lambda: partner.find(LISTENING), "the partner's port", partner)).group(1))
        await until(lambda: partner.find(r"peer gw\.primary\.example: open"), "the interconnect", partner)
        for name in SCENARIOS:
            done = await replay(SAMPLES / f"{name}.pcapng", "--target", f"127.0.0.1:{port}", "--json")
            assert done.returncode == 0, (name, done.stdout, done.stderr)
            report = json.loads(done.stdout)
            assert report["ok"] and report["matched"] == report["sent"] >= 1, (name, report)
    finally:
        for process in (partner, primary):
            if process is not None:
                process.stop()


def test_the_filters_choose_the_requests_and_the_client():
    from captures.replay import plan
    from captures.show import items_of, node_names, pair_answers

    reader = CaptureReader(SAMPLES / "resync.pcapng")
    items = items_of(reader)
    pair_answers(items)
    names = node_names(items, reader.streams)

    def chosen(**filters):
        options = {"commands": set(), "applications": set(), "peers": set(), "stream_numbers": set(), **filters}
        found, client, notes = plan(items, reader.streams, names, **options)
        return [item.field("User-Name") for item in found], client, notes

    users, client, notes = chosen()
    assert users == ["mig-sample@partner.example"] * 2 and client == "scscf.partner.example"
    assert "choose with --peer or --stream" in notes[0]  # the gateway's own requests on the interconnect
    users, client, notes = chosen(peers={"gw.partner.example"})
    assert users == ["out-sample@primary.example"] * 2 and client == "gw.partner.example" and notes == []
    interconnect = next(item.captured.stream for item in items if item.field("User-Name") == "out-sample@primary.example")
    assert chosen(stream_numbers={interconnect})[1] == "gw.partner.example"
    assert chosen(commands={301})[0] == [] and chosen(applications={0})[0] == []
    assert chosen(applications={16777216}, peers={"127.0.0.1"})[0] == ["mig-sample@partner.example"] * 2
