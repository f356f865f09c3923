"""`cxgw` as a child process, for tests that drive the real program from outside."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from typing import Any

from twisted.internet import reactor, task


class GatewayProcess:
    """`cxgw gateway --config PATH`; stderr is read by a thread and searched for log lines."""

    def __init__(self, config_path: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "gateway", "--config", config_path],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:  # type: ignore[union-attr]
            self.lines.append(line)

    def find(self, pattern: str) -> re.Match[str] | None:
        for line in list(self.lines):
            match = re.search(pattern, line)
            if match:
                return match
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def provision(db: str, *args: str) -> str:
    """`cxgw provision --db DB ARGS...` as an operator runs it; its output (JSON)."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "provision", "--db", db, "--create", "--json", *args],
        capture_output=True, text=True, timeout=60,
    )
    if done.returncode:
        raise AssertionError(f"cxgw provision {' '.join(args)} failed: {done.stderr}")
    return done.stdout


async def until(condition: Any, what: str, process: GatewayProcess | None = None, timeout: float = 15.0) -> Any:
    """Poll ``condition`` until it is true (its value), or fail naming ``what`` with the
    process's last log lines."""
    deadline = reactor.seconds() + timeout
    while True:
        value = condition()
        if value:
            return value
        if reactor.seconds() > deadline:
            log = "".join(process.lines[-30:]) if process else ""
            raise AssertionError(f"timed out waiting for {what}\n{log}")
        await task.deferLater(reactor, 0.05, lambda: None)
