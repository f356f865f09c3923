"""A throw-away PostgreSQL server for tests and benchmarks (like ``httptest`` for HTTP).

``initdb`` into a fresh directory under the system temp dir, ``pg_ctl start`` listening
on 127.0.0.1 only, on a port the OS picked, with the Unix socket in the same directory;
``stop()`` shuts it down and removes the directory. Debian's ``initdb`` refuses to run
as root, so as root every command runs as the ``postgres`` system user (``runuser``)
on a directory that user owns.

    with TemporaryPostgres() as pg:
        store = open_store(pg.url)
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from hss_store.errors import StoreUnavailable

DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TemporaryPostgres:
    """A PostgreSQL cluster in a temporary directory, on loopback."""

    def __init__(self, bindir: str = DEFAULT_BINDIR, *, durable: bool = False, user: str = "postgres") -> None:
        self.bindir = bindir
        self.durable = durable  # False: fsync=off, fine for tests whose server never crashes
        self._as_root = os.geteuid() == 0
        self._user = user
        self.port = 0
        self.base: Path | None = None
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        assert self.base is not None
        return self.base / "data"

    def _cmd(self, program: str, *args: str) -> list[str]:
        argv = [os.path.join(self.bindir, program), *args]
        return ["runuser", "-u", self._user, "--", *argv] if self._as_root else argv

    def _call(self, program: str, *args: str) -> None:
        result = subprocess.run(self._cmd(program, *args), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = ""
            if self.base and (self.base / "log").exists():
                log = (self.base / "log").read_text(errors="replace")[-2000:]
            raise StoreUnavailable(
                f"{program} {' '.join(args[:3])}... failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{log}"
            )

    def _options(self) -> str:
        assert self.base is not None
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.base}"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        return options

    def start(self) -> str:
        """Create and start the cluster; returns its URL."""
        if not os.access(os.path.join(self.bindir, "initdb"), os.X_OK):
            raise StoreUnavailable(f"PostgreSQL binaries not found in {self.bindir}; install the Debian package postgresql")
        self.base = Path(tempfile.mkdtemp(prefix="cxgw-pg-"))
        if self._as_root:
            entry = pwd.getpwnam(self._user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self._call("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
        for attempt in range(3):  # the port may be taken between free_port() and bind()
            self.port = free_port()
            try:
                self._pg_ctl("start")
                break
            except StoreUnavailable:
                if attempt == 2:
                    raise
        self.running = True
        return self.url

    def _pg_ctl(self, action: str) -> None:
        assert self.base is not None
        args = ["-D", str(self.data), "-w", "-t", str(START_TIMEOUT_SECONDS)]
        if action in ("start", "restart"):
            args += ["-l", str(self.base / "log"), "-o", self._options()]
        if action in ("stop", "restart"):
            args += ["-m", "fast"]
        self._call("pg_ctl", *args, action)  # -w: pg_ctl polls until ready, with the -t deadline

    def stop_server(self) -> None:
        """Stop the server but keep the data (start it again with :meth:`start_server`)."""
        self._pg_ctl("stop")
        self.running = False

    def start_server(self) -> None:
        self._pg_ctl("start")
        self.running = True

    def restart(self) -> None:
        self._pg_ctl("restart")
        self.running = True

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        try:
            if self.running:
                self._pg_ctl("stop")
                self.running = False
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)
                self.base = None

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
