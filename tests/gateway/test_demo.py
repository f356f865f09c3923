"""`cxgw demo` as a user runs it (README: `.venv/bin/cxgw demo`): its output, its exit
code, and its recording of both Diameter legs dissected by tshark; `--keep-running` up,
reachable, and stopped by Ctrl-C with no process left behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CXGW = Path(sys.executable).with_name("cxgw")  # .venv/bin/cxgw when run with .venv/bin/python
STEPS = ["1", "2", "3", "4-6", "7", "8-12", "13", "14", "15", "16", "17-20", "21", "22", "23", "24", "25",
         "resync", "5001", "5006"]
CER, SAR, MAR, DPR = 257, 301, 303, 282


def _cxgw() -> str:
    if not CXGW.exists():
        pytest.fail(f"{CXGW} is missing: install the project into the venv (.ci/install)")
    return str(CXGW)


def _tshark(tshark: str, recording: str, ports: list[str], *args: str) -> list[str]:
    decode = [arg for port in ports for arg in ("-d", f"tcp.port=={port},diameter")]
    done = subprocess.run([tshark, "-n", "-r", recording, *decode, *args], capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.splitlines()


@pytest.mark.parametrize("options", [[], ["--interconnect", "tls"]], ids=["as-the-readme-says", "tls-interconnect"])
def test_the_demo_runs_every_step_and_records_both_legs(tmp_path, require_program, options):
    tshark = require_program("tshark")
    # exactly the README's command; its folder goes where TMPDIR says (here: this test's)
    done = subprocess.run([_cxgw(), "demo", *options], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    folder = re.search(r"^folder (\S+)$", out, re.MULTILINE).group(1)
    assert Path(folder).parent == tmp_path
    for step in STEPS:
        assert re.search(rf"^\[\s*{re.escape(step)}\] ", out, re.MULTILINE), f"step {step} missing:\n{out}"
    assert "FAILED" not in out
    over = "TLS, mutually authenticated" if options else "TCP"
    assert f"interconnect open over {over}" in out
    assert re.search(r"^result: every step behaved as specified \(\d+ checks\) in [\d.]+ s$", out, re.MULTILINE), out
    inbound = re.search(r"UE configuration for partner-a: realm partner\.example, P-CSCF \S+, (mig-\S+@partner\.example)",
                        out).group(1)
    outbound = re.search(r"^\[\s*4-6\] outbound identities allocated: (out-\S+@primary\.example)", out, re.MULTILINE)
    assert outbound, out
    recording = re.search(r"^recording of both Diameter legs: (\S+)$", out, re.MULTILINE).group(1)
    ports = re.search(r"open with: tshark -r \S+ ((?:-d tcp\.port==\d+,diameter ?)+)", out).group(1)
    ports = re.findall(r"tcp\.port==(\d+)", ports)
    assert len(ports) == 2 and Path(recording).is_file()
    # every frame carrying data dissects as Diameter, none malformed or with an expert warning
    problems = _tshark(tshark, recording, ports, "-Y", '_ws.malformed || _ws.expert.severity >= "Warning"')
    assert problems == [], problems
    data_frames = _tshark(tshark, recording, ports, "-Y", "tcp.len > 0", "-T", "fields", "-e", "frame.number")
    diameter_frames = _tshark(tshark, recording, ports, "-Y", "diameter", "-T", "fields", "-e", "frame.number")
    assert data_frames == diameter_frames and len(data_frames) >= 20
    rows = _tshark(tshark, recording, ports, "-Y", "diameter", "-T", "fields", "-e", "tcp.srcport",
                   "-e", "tcp.dstport", "-e", "diameter.cmd.code", "-e", "diameter.flags.request",
                   "-e", "diameter.User-Name")
    seen = []
    for row in rows:
        src, dst, code, request, user = (row.split("\t") + [""] * 5)[:5]
        seen.append((int(code), request in ("1", "True"), {src, dst}, user))
    for code in (CER, MAR, SAR, DPR):
        for request in (True, False):
            assert any(c == code and r == request for c, r, _, _ in seen), (code, request, rows)
    # the interconnect leg (the primary core's port) carries the outbound identity only
    primary_port = re.search(r"primary core gw\.primary\.example \(primary \+ hss\) on 127\.0\.0\.1:(\d+)", out).group(1)
    across = [user for c, _, ports_, user in seen if c == MAR and primary_port in ports_]
    assert across and set(across) == {outbound.group(1)}, across
    assert inbound not in across
    scscf_leg = [user for c, _, ports_, user in seen if c == MAR and primary_port not in ports_ and user]
    assert outbound.group(1) not in scscf_leg and inbound in scscf_leg


def test_a_used_folder_is_refused_with_the_fix(tmp_path):
    (tmp_path / "something").write_text("x")
    done = subprocess.run([_cxgw(), "demo", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "is not empty; give an empty or new folder with --dir" in done.stderr
    assert "Traceback" not in done.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_keep_running_leaves_both_cores_up_until_ctrl_c(tmp_path):
    demo = subprocess.Popen([_cxgw(), "demo", "--keep-running"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("  migrate another user:"):
                break
        out = "".join(lines)
        cores = re.findall(r"^  (primary|partner) core \(pid (\d+)\): Diameter 127\.0\.0\.1:(\d+), config (\S+), "
                           r"store (\S+), log (\S+), metrics", out, re.MULTILINE)
        assert len(cores) == 2, out
        for _, pid, port, config, store, log in cores:
            assert _alive(int(pid)) and Path(config).is_file() and Path(store).is_file() and Path(log).is_file()
            socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()  # reachable
        assert re.search(r"provisioning API https://localhost:\d+ \(bearer token in \S+", out), out
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        rest, err = demo.communicate(timeout=60)
        assert demo.returncode == 0, rest + err
        assert "stopping both cores" in rest and "result: every step behaved as specified" in rest
        for _, pid, *_ in cores:
            deadline = time.monotonic() + 10
            while _alive(int(pid)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(int(pid)), f"core {pid} still running"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
