"""docs/systemd: the unit file is what systemd accepts, and its command lines run.

`systemd-analyze verify` reads the unit as systemd would (unknown keys and bad values are
warnings there: any output fails the test), `systemd-analyze security --offline` rates its
hardening, and the ExecStartPre/ExecStart command lines are run with `--check` against the
shipped loopback examples put where the unit expects them.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gateway.config.schema import TimersConfig

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "docs" / "systemd" / "cxgw-gateway@.service"
SYSUSERS = ROOT / "docs" / "systemd" / "cxgw.sysusers.conf"
INSTALLED = "/opt/cxgw/.venv/bin/cxgw"  # where docs/operations.md installs it
CXGW = Path(sys.executable).parent / "cxgw"
LOOPBACK_EXAMPLES = ("relay.toml", "primary-core.toml", "partner-core.toml")


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def local_copy(folder: Path, instance: str) -> Path:
    """The unit as an instance, with the cxgw of this virtualenv where /opt/cxgw's would be."""
    assert CXGW.exists(), f"{CXGW}: the project is not installed in this environment (.ci/install)"
    path = folder / f"cxgw-gateway@{instance}.service"
    path.write_text(UNIT.read_text().replace(INSTALLED, str(CXGW)))
    return path


def test_systemd_analyze_verify_has_nothing_to_say(tmp_path, require_program):
    analyze = require_program("systemd-analyze")
    done = subprocess.run([analyze, "verify", str(local_copy(tmp_path, "partner"))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


def test_hardening_is_rated_ok_offline(tmp_path, require_program):
    analyze = require_program("systemd-analyze")
    done = subprocess.run([analyze, "security", "--offline=yes", str(local_copy(tmp_path, "partner"))],
                          capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= 2.0 and match.group(2) == "OK", match.group(0)


@pytest.mark.parametrize("example", LOOPBACK_EXAMPLES)
def test_exec_start_pre_checks_the_instance_configuration(tmp_path, example):
    service = unit()["Service"]
    pre, start = shlex.split(service["ExecStartPre"]), shlex.split(service["ExecStart"])
    assert pre == [*start, "--check"], "ExecStartPre is ExecStart with --check"
    assert pre[0] == INSTALLED
    instance = example.removesuffix(".toml")
    config_dir = tmp_path / "etc" / "cxgw"
    config_dir.mkdir(parents=True)
    shutil.copy(ROOT / "gateway" / "examples" / example, config_dir / example)
    command = [str(CXGW)] + [arg.replace("/etc/cxgw/%i.toml", str(config_dir / f"{instance}.toml")) for arg in pre[1:]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("configuration is valid")


def test_an_invalid_configuration_is_not_restarted(tmp_path):
    service = unit()["Service"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[node]\norigin_host = "gw.example"\norigin_realm = "example"\n[[listen]]\nport = 70000\n')
    done = subprocess.run([str(CXGW), "gateway", "--config", str(bad), "--check"], capture_output=True, text=True,
                          timeout=60)
    assert str(done.returncode) in service["RestartPreventExitStatus"].split()
    assert service["Restart"] == "on-failure"


def test_stop_timeout_covers_the_graceful_shutdown():
    """TimeoutStopSec above Tx (answers drained) + dpa_timeout + close_grace for the
    defaults and every shipped example, or systemd would SIGKILL a gateway still saying
    goodbye (the [timers] tables read as TOML: the TLS examples need certificates to load)."""
    service = unit()["Service"]
    limit = float(service["TimeoutStopSec"])
    examples = sorted((ROOT / "gateway" / "examples").glob("*.toml"))
    assert len(examples) >= 5
    for path in [None, *examples]:
        values = tomllib.loads(path.read_text()).get("timers", {}) if path else {}
        timers = dataclasses.replace(TimersConfig(), **values)
        assert timers.tx + timers.dpa_timeout + timers.close_grace < limit, path
    assert service["KillSignal"] == "SIGTERM"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"


def test_state_is_writable_and_nothing_else():
    service = unit()["Service"]
    assert service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "cxgw" and service["WorkingDirectory"] == "/var/lib/cxgw"
    assert service["CapabilityBoundingSet"] == "" and service["AmbientCapabilities"] == ""
    user = service["User"]
    assert re.search(rf"(?m)^u {re.escape(user)} - ", SYSUSERS.read_text()), "the unit's user is in cxgw.sysusers.conf"
