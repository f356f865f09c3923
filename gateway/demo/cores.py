"""The two operator cores of the demo as real `cxgw gateway` processes on loopback.

The primary core (roles primary + hss) and the partner core (role partner), each with its
SQLite store, written as TOML next to their stores in the demo's folder and started as
``python -m gateway.cli gateway --config FILE``. Every port is 0: the OS picks it and the
process logs it ("listening on 127.0.0.1:PORT (tcp)"), which is read back from its log;
the partner core's configuration is written once the primary core's port is known. Each
process gets its own session (``start_new_session``), so a Ctrl-C at the terminal reaches
the demo alone, which then stops both cores with SIGTERM, gracefully (DPR to every peer,
the recording closed).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PRIMARY_REALM, PARTNER_REALM = "primary.example", "partner.example"
PRIMARY_GW, PARTNER_GW, SCSCF = "gw.primary.example", "gw.partner.example", "scscf.partner.example"
PARTNER_ID = "partner-a"
LISTENING = r"listening on 127\.0\.0\.1:(\d+) \({transport}\)"
TRANSPORTS = ("tcp", "tls")
HTTP = r"http://127\.0\.0\.1:(\d+)/"
START_TIMEOUT = 20.0


class CoreError(RuntimeError):
    """A core did not start or stop as it should; the message carries its last log lines."""


@dataclass
class Core:
    """One `cxgw gateway` process and what the demo learnt of it."""

    name: str
    config: Path
    store: Path
    log: Path
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "gateway", "--config", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
        )
        threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        with open(self.log, "a", encoding="utf-8") as log:
            for line in stream:
                log.write(line)
                log.flush()
                with self.changed:
                    self.lines.append(line)
                    self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_for(self, pattern: str, what: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        """The first log line matching ``pattern``; CoreError if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.changed:
            while True:
                for line in self.lines[seen:]:
                    match = re.search(pattern, line)
                    if match:
                        return match
                seen = len(self.lines)
                assert self.process is not None
                if self.process.poll() is not None:
                    raise CoreError(f"the {self.name} core exited ({self.process.returncode}) before {what}:\n"
                                    + self.tail())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CoreError(f"the {self.name} core: no {what} within {timeout:g} s:\n" + self.tail())
                self.changed.wait(min(left, 0.2))

    def tail(self, count: int = 15) -> str:
        return "".join("    " + line for line in self.lines[-count:])

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it hangs; its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def interconnect_tls(identity: str) -> str:
    """``[tls]`` for the interconnect (RFC 6733 §13: TLS from the first byte, mutual, the
    peer's certificate checked against its Origin-Host), with the demo's lab certificates."""
    return f'''
[tls]
certificate = "tls/{identity}.pem"
private_key = "tls/{identity}.key"
ca_certificates = ["tls/demo-ca.pem"]
verify_peer_identity = true
'''


def primary_config(store: Path, provisioning: str, transport: str = "tcp") -> str:
    """The primary core: primary + hss roles, its store, the provisioning API; the
    interconnect over ``transport`` (tcp or tls)."""
    tls = interconnect_tls(PRIMARY_GW) if transport == "tls" else ""
    return f'''# cxgw demo: the primary MC system's core (TR 23.781 solution 2, steps 4-6 and 18-20)
[node]
origin_host = "{PRIMARY_GW}"
origin_realm = "{PRIMARY_REALM}"
role = ["primary", "hss"]
applications = ["cx"]

[[listen]]
address = "127.0.0.1"
port = 0                                # the OS picks it; the log says which
transport = "{transport}"
{tls}
[[peers]]
host = "{PARTNER_GW}"
realm = "{PARTNER_REALM}"
address = "127.0.0.1"
transport = "{transport}"
connect = false

[unknown_peers]
accept_realms = []

[[routes]]
realm = "{PRIMARY_REALM}"
action = "local"

[timers]
tc = 1
twinit = 30
tx = 4

[store]
target = "{store.name}"

[hss]
max_vectors = 1

[primary]
hide_topology = true

[[primary.partners]]
host = "{PARTNER_GW}"
partner_id = "{PARTNER_ID}"

[metrics]
address = "127.0.0.1"
port = 0

[logging]
level = "info"
format = "text"
{provisioning}'''


def partner_config(store: Path, primary_port: int, capture: Path, provisioning: str, transport: str = "tcp") -> str:
    """The partner core: partner role, its store, the recording of both legs (a TLS
    connection as its plaintext, docs/captures.md), the provisioning API."""
    tls = interconnect_tls(PARTNER_GW) if transport == "tls" else ""
    return f'''# cxgw demo: the partner MC system's core (TR 23.781 solution 2, steps 9-11 and 16-21)
[node]
origin_host = "{PARTNER_GW}"
origin_realm = "{PARTNER_REALM}"
role = "partner"
applications = ["cx"]

[[listen]]
address = "127.0.0.1"
port = 0                                # the S-CSCF connects here; the log says which port
transport = "tcp"
{tls}
[[peers]]
host = "{SCSCF}"
realm = "{PARTNER_REALM}"
address = "127.0.0.1"
connect = false

[[peers]]
host = "{PRIMARY_GW}"
realm = "{PRIMARY_REALM}"
address = "127.0.0.1"
port = {primary_port}
transport = "{transport}"
connect = true

[unknown_peers]
accept_realms = []

[[routes]]
realm = "{PRIMARY_REALM}"
action = "proxy"
peers = [{{ host = "{PRIMARY_GW}" }}]

[[routes]]
realm = "{PARTNER_REALM}"
action = "local"

[timers]
tc = 1
twinit = 30
tx = 4

[store]
target = "{store.name}"

[partner]
hide_topology = true
revocation_poll = 1

# Both Diameter legs (the S-CSCF's and the interconnect) as the partner core sees them.
[capture]
file = "{capture.name}"

[metrics]
address = "127.0.0.1"
port = 0

[logging]
level = "info"
format = "text"
{provisioning}'''
