"""`cxgw capture show` on the committed samples and on captures made here: the lines,
the trees, the ladder (translated requests matched by comment, and by timing when there
is none), the statistics, the filters, and one-line errors for bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from captures.pcap import PcapWriter
from captures.reader import CaptureReader
from captures.show import items_of, match_forwarded, node_names, pair_answers
from gateway.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "captures" / "samples"
REGISTRATION, RESYNC = SAMPLES / "registration.pcapng", SAMPLES / "resync.pcapng"
COLUMNS = ["scscf.partner.example", "gw.partner.example", "gw.primary.example"]


def show(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["capture", "show", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_line_per_message_with_ids_identities_and_results(capsys):
    code, out, err = show(capsys, REGISTRATION)
    assert code == 0 and err == ""
    lines = [line for line in out.splitlines() if line.startswith("#")]
    assert len(lines) == len(list(CaptureReader(REGISTRATION)))
    mars = [line for line in lines if " MAR RP-- " in line]
    assert len(mars) == 2
    assert "scscf.partner.example (127.0.0.1:" in mars[0] and "-> gw.partner.example (127.0.0.1:" in mars[0]
    assert "user=mig-sample@partner.example  impu=sip:mig-sample@partner.example" in mars[0]
    assert "user=out-sample@primary.example" in mars[1] and "-> gw.primary.example" in mars[1]
    assert re.search(r"hbh=0x[0-9a-f]{8} e2e=0x[0-9a-f]{8}", mars[0])
    maas = [line for line in lines if " MAA -P-- " in line]
    assert len(maas) == 2 and all(line.endswith("result=2001") for line in maas)
    assert out.count("comment: translated: inbound mig-sample@partner.example") == 2


def test_tree_prints_every_avp_with_names(capsys):
    code, out, _ = show(capsys, SAMPLES / "unknown-user.pcapng", "--tree", "--command", "MAR")
    assert code == 0
    assert "Multimedia-Auth-Answer (command 303, application 16777216" in out
    assert "Experimental-Result-Code (298) M = 5001" in out
    assert "SIP-Authentication-Scheme (608, 3GPP) VM = 'Digest-AKAv1-MD5'" in out
    assert "CER" not in out  # the filter


def test_filters_by_command_and_stream(capsys):
    _, out, _ = show(capsys, REGISTRATION, "--command", "SAR")
    assert [re.search(r"  (\w{3}) [-RPET]{4}  ", line).group(1) for line in out.splitlines() if line.startswith("#")] \
        == ["SAR", "SAA"]
    _, out, _ = show(capsys, REGISTRATION, "--stream", "0")
    assert out and all(" s0 " in line for line in out.splitlines() if line.startswith("#"))


def test_ladder_draws_the_session_across_the_three_nodes_with_the_translated_mar(capsys):
    code, out, _ = show(capsys, REGISTRATION, "--ladder")
    assert code == 0
    header = out.splitlines()[0]
    assert [name for name in header.split()] == COLUMNS
    session = out.split("session scscf.partner.example;")[1].split("\n\n")[0].splitlines()
    rows = session[1:]
    assert [re.search(r" (\w{3}) #", row).group(1) for row in rows] == ["MAR", "MAR", "MAA", "MAA"]
    original = re.search(r"MAR #(\d+)", rows[0]).group(1)
    assert f"(from #{original})" in rows[1]
    # the original goes from the first column to the second, the translated one from the second to the third
    assert rows[0].index("|") < rows[0].index(">") < rows[1].index(">")
    assert "<" in rows[2] and "2001" in rows[2] and "2001" in rows[3]


def test_ladder_without_comments_matches_by_command_and_order(tmp_path, capsys):
    """The same messages rewritten into a classic pcap (no comments): rule 2 still pairs
    each translated MAR with its original, the re-synchronisation's second MAR with the
    second."""
    plain = tmp_path / "resync.pcap"
    with PcapWriter(plain) as writer:
        for message in CaptureReader(RESYNC):
            writer.write_message(message.data, src=(message.source.address, message.source.port),
                                 dst=(message.destination.address, message.destination.port), timestamp=message.time)
    for path in (RESYNC, plain):
        reader = CaptureReader(path)
        items = items_of(reader)
        pair_answers(items)
        names = node_names(items, reader.streams)
        match_forwarded(items, names)
        mars = [item for item in items if item.name == "MAR"]
        assert [(item.field("User-Name"), item.origin and item.origin.number) for item in mars] == [
            ("mig-sample@partner.example", None), ("out-sample@primary.example", mars[0].number),
            ("mig-sample@partner.example", None), ("out-sample@primary.example", mars[2].number),
        ], path


def test_stats_count_by_command_and_result_with_latency(capsys):
    code, out, _ = show(capsys, RESYNC, "--stats")
    assert code == 0
    assert re.search(r"^MAR/MAA\s+4\s+0$", out, re.M)
    assert re.search(r"^MAR/MAA\s+2001\s+4\s+\d+\.\d{3}\s+\d+\.\d{3}$", out, re.M)
    assert re.search(r"^CER/CEA\s+2\s+0$", out, re.M)
    _, out, _ = show(capsys, SAMPLES / "digest-refused.pcapng", "--stats", "--command", "MAR")
    assert re.search(r"^MAR/MAA\s+5006 \(exp\)\s+1\s", out, re.M) and "CER" not in out


def test_a_damaged_capture_is_shown_as_far_as_it_goes_with_its_problems_on_stderr(tmp_path, capsys):
    cut = tmp_path / "cut.pcapng"
    data = REGISTRATION.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    code, out, err = show(capsys, cut)
    assert code == 0 and "CER R---" in out
    assert err.startswith(f"{cut}: ") and "frame" in err


def test_problems_beyond_the_reader_s_cap_are_counted(tmp_path, capsys):
    from captures.reader import MAX_PROBLEMS

    empty = tmp_path / "empty-records.pcap"  # a problem per empty record, two more than the cap
    header = (0xA1B2C3D4).to_bytes(4, "little") + bytes([2, 0, 4, 0]) + bytes(8) + (65535).to_bytes(4, "little")
    empty.write_bytes(header + (101).to_bytes(4, "little") + bytes(16) * (MAX_PROBLEMS + 2))
    code, _, err = show(capsys, empty)
    assert code == 0
    lines = err.splitlines()
    assert len(lines) == 1 + MAX_PROBLEMS + 1, lines[:3]
    assert lines[-1] == f"{empty}: ... and 2 more problems"


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, [], "no such file"),
        ("not a capture at all", [], "is not a pcap or pcapng file"),
        ("", [], "is empty"),
        (None, ["--command", "MARS"], "--command 'MARS' is not a Diameter command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make, args, message):
    path = tmp_path / "input.pcap"
    if make is not None:
        path.write_text(make)
    code, out, err = show(capsys, path if args == [] else REGISTRATION, *args)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1, err
