"""captures/samples: the committed files are readable, hold what the README's table says,
carry the binding comment on both legs of a translated MAR (read by the project's reader
and by tshark), keep no key material; make.py regenerates the same sequences from a real
run of the two cores."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import pytest_twisted

from captures.reader import CaptureReader
from captures.recorder import MARKER
from captures.samples.make import SCENARIOS, record
from captures.show import BASE, items_of, pair_answers, result_of

SAMPLES = Path(__file__).resolve().parents[2] / "captures" / "samples"
README = (SAMPLES / "README.md").read_text()
BINDING = "translated: inbound mig-sample@partner.example ↔ primary out-sample@primary.example (primary.example)"
KEYS = ("SIP-Authenticate", "SIP-Authorization", "Confidentiality-Key", "Integrity-Key")


def documented() -> dict[str, list[str]]:
    """file -> the message sequence of the README's table ("MAR", "MAA:2001", ...)."""
    rows = re.findall(r"^\| `([\w-]+\.pcapng)` \| ([^|]+) \|", README, re.M)
    return {name: cells.split() for name, cells in rows}


def sequence(path: Path) -> tuple[list[str], CaptureReader, list]:
    reader = CaptureReader(path)
    items = items_of(reader)
    pair_answers(items)
    found = []
    for item in items:
        if item.code in BASE:
            continue
        found.append(item.name if item.is_request else f"{item.name}:{result_of(item.message).split()[0]}")
    return found, reader, items


def test_the_readme_describes_every_scenario_and_every_file():
    assert sorted(documented()) == sorted(f"{name}.pcapng" for name in SCENARIOS)
    assert sorted(path.name for path in SAMPLES.glob("*.pcap*")) == sorted(documented())


@pytest.mark.parametrize("name", sorted(documented()))
def test_each_sample_is_readable_and_holds_what_the_readme_says(name):
    found, reader, items = sequence(SAMPLES / name)
    assert found == documented()[name]
    assert reader.problems == []
    assert all(item.message is not None for item in items)
    # every connection opens with CER/CEA and ends with DPR/DPA
    for stream in reader.streams:
        codes = [item.name for item in items if item.captured.stream == stream]
        assert codes[:2] == ["CER", "CEA"] and codes[-1] == "DPA", codes
    # key material redacted: every key AVP holds only the marker
    for item in items:
        for group in item.message.find_all("SIP-Auth-Data-Item"):
            for member in group.children:
                if member.name in KEYS:
                    assert member.data == (MARKER * 8)[: len(member.data)], (name, member.name)


@pytest.mark.parametrize("name", ["registration.pcapng", "resync.pcapng"])
def test_a_translated_mar_carries_the_binding_comment_on_both_legs(name):
    _, reader, items = sequence(SAMPLES / name)
    requests = [item for item in items if item.name == "MAR"]
    assert [item.captured.comment for item in requests] == [BINDING] * len(requests)
    assert {item.field("User-Name") for item in requests} == {"mig-sample@partner.example", "out-sample@primary.example"}
    assert len({item.captured.stream for item in requests}) == 2
    # and nothing else has one but the first frame of each connection (which the reader does not report)
    assert all(item.captured.comment is None for item in items if item.name != "MAR")


@pytest.mark.parametrize("name", ["unknown-user.pcapng", "digest-refused.pcapng"])
def test_a_refused_mar_has_no_comment_and_never_reaches_the_interconnect(name):
    _, reader, items = sequence(SAMPLES / name)
    requests = [item for item in items if item.name == "MAR"]
    assert len(requests) == 1 and requests[0].captured.comment is None
    assert requests[0].field("User-Name").endswith("@partner.example")


def test_tshark_dissects_the_samples_and_reads_the_binding_comment(require_program):
    tshark = require_program("tshark")
    for path in sorted(SAMPLES.glob("*.pcapng")):
        bad = subprocess.run([tshark, "-n", "-r", str(path), "--enable-heuristic", "diameter_tcp", "-Y",
                              "_ws.malformed || _ws.expert.severity >= warning"],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 0 and bad.stdout.strip() == "", (path.name, bad.stdout, bad.stderr)
    fields = subprocess.run(
        [tshark, "-n", "-r", str(SAMPLES / "registration.pcapng"), "--enable-heuristic", "diameter_tcp",
         "-Y", "diameter.cmd.code == 303 && diameter.flags.request == 1", "-T", "fields",
         "-e", "diameter.User-Name", "-e", "frame.comment"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()
    assert sorted(fields) == sorted([f"mig-sample@partner.example\t{BINDING}", f"out-sample@primary.example\t{BINDING}"])


@pytest_twisted.inlineCallbacks
def test_make_regenerates_the_documented_sequences_from_the_two_cores(tmp_path):
    for name in SCENARIOS:
        path = yield record(name, tmp_path)
        found, reader, _ = sequence(path)
        assert found == documented()[path.name], name
        assert reader.problems == []
