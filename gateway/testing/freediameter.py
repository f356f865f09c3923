"""Run a real freeDiameter daemon (``freeDiameterd`` 1.2.1, Debian ``freediameter``) on
loopback, for the interop tests and the bench.

    fd = FreeDiameter(
        "fd.example", "example",
        peers=[FdPeer("gw.partner.example", node_port)],         # ConnectPeer: fD connects
        routes=[FdRoute("primary.example", "hss.primary.example")],  # rt_default relay rule
        accept_realms=["partner.example"],                        # acl_wl: peers may connect in
    )
    with fd:                 # start(): config in a temp dir, free port, wait until listening
        fd.port, fd.log_path, fd.log_text()
    # stop(): SIGTERM (freeDiameter sends DPR to its open peers), SIGKILL after a deadline

What freeDiameter 1.2.1 insists on (docs/interop.md), and what this does about it:

- ``TLS_Cred`` is mandatory even when every peer is ``No_TLS``, and the certificate's CN
  must equal ``Identity``: a throwaway self-signed certificate is generated per run.
- ``ListenOn = "127.0.0.1"`` is ignored (it listens on every address), so the port is
  chosen by binding port 0 on all IPv4 addresses first; a lost race (the daemon exits
  because the port was taken meanwhile) is retried with another port.
- ``ConnectPeer`` names must equal the Origin-Host the peer sends in its CEA.
- Unknown peers connecting in are refused unless the acl_wl extension lists them:
  ``ALLOW_OLD_TLS ALLOW_IPSEC *.<realm>`` per accepted realm.
- rt_default rules read ``dr="<Destination-Realm>" : "<peer>" += <score> ;``.
- ``TwTimer`` must be at least 6 s (RFC 3539 §3.4.1).
- ``dict_dcca_3gpp`` needs ``dict_nasreq`` and ``dict_dcca`` loaded before it. Relaying
  needs no dictionary (and none of these has the Cx AVPs); without a Cx application, a
  MAR addressed to freeDiameter itself is answered 3007 DIAMETER_APPLICATION_UNSUPPORTED.
- Readiness is read from the kernel's LISTEN table and the "daemon initialized" log line:
  a probe connection closed before its CER shows up as an ERROR in freeDiameter's log.
- On SIGTERM it sends DPR to every open peer and waits up to 16 s for the DPAs: a caller
  whose own Diameter node runs in this thread (a Twisted reactor) must not block in
  :meth:`FreeDiameter.stop`; call :meth:`FreeDiameter.terminate`, let the reactor run until
  :attr:`FreeDiameter.running` is false, then :meth:`FreeDiameter.stop` to reap.

No Twisted here: :meth:`FreeDiameter.start` blocks for its bounded poll (about 0.1 s).
:func:`bench_relay` is the set-up bench/relay.py measures.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BINARY = "freeDiameterd"
EXTENSION_DIR = Path("/usr/lib/freeDiameter")
DICTIONARIES = (
    "dict_nasreq",
    "dict_dcca",
    "dict_dcca_3gpp",
)  # this order: dict_dcca_3gpp needs both
READY_LINE = "freeDiameterd daemon initialized."
TW_MINIMUM = 6  # RFC 3539 §3.4.1; freeDiameter refuses less

# dbg_msg_dumps flags (extensions/dbg_msg_dumps): errors, send/receive and routing
# decisions one line per message (FULL), peer events compact
DUMP_FLAGS = 0x0004 | 0x0040 | 0x0400 | 0x2000


class FreeDiameterError(RuntimeError):
    """freeDiameterd did not start, or died; the message names its log."""


@dataclass(frozen=True, slots=True)
class FdPeer:
    """A ``ConnectPeer``: freeDiameter connects to it over TCP without TLS (and accepts
    it when it connects in). ``host`` must equal the Origin-Host of the peer's CEA."""

    host: str
    port: int
    address: str = "127.0.0.1"
    tc: int | None = None  # per-peer TcTimer, else the daemon's
    tw: int | None = None  # per-peer TwTimer, else the daemon's


@dataclass(frozen=True, slots=True)
class FdRoute:
    """An rt_default rule: requests whose Destination-Realm is ``realm`` go to the peer
    ``host`` (``score`` is added to that peer's routing score; freeDiameter's own scores
    are below 100, see ``enum fd_rt_out_score``)."""

    realm: str
    host: str
    score: int = 100

    def rule(self) -> str:
        return f'dr="{_quoted(self.realm)}" : "{_quoted(self.host)}" += {int(self.score)} ;'


class FreeDiameter:
    """One freeDiameterd child process with a generated configuration.

    ``verbosity``: 0 is freeDiameter's default (notices), 1 is ``-d``, 2 is ``-dd``
    (debug), -1 is ``-q`` (errors only: use it for the bench). ``dump_messages`` loads
    dbg_msg_dumps so every message sent and received is one log line (with its AVPs).
    ``port=None`` picks a free port. ``workdir=None`` makes a temporary directory, removed
    on stop unless ``keep_workdir``.
    """

    def __init__(
        self,
        identity: str = "fd.example",
        realm: str | None = None,
        *,
        peers: Iterable[FdPeer] = (),
        routes: Iterable[FdRoute] = (),
        accept_realms: Iterable[str] = (),
        port: int | None = None,
        tc: int = 2,
        tw: int = 30,
        relay: bool = True,
        dictionaries: bool = False,
        dump_messages: bool = False,
        verbosity: int = 0,
        app_threads: int | None = None,
        extra_config: str = "",
        binary: str = BINARY,
        extension_dir: Path | str = EXTENSION_DIR,
        workdir: Path | str | None = None,
        keep_workdir: bool = False,
        stop_timeout: float = 10.0,
    ) -> None:
        if tw < TW_MINIMUM:
            raise ValueError(
                f"tw = {tw}: freeDiameter's TwTimer must be at least {TW_MINIMUM} s (RFC 3539 §3.4.1)"
            )
        self.identity = identity
        self.realm = realm or identity.partition(".")[2] or identity
        self.peers: tuple[FdPeer, ...] = tuple(peers)
        self.routes: tuple[FdRoute, ...] = tuple(routes)
        self.accept_realms: tuple[str, ...] = tuple(accept_realms)
        for peer in self.peers:
            if peer.tw is not None and peer.tw < TW_MINIMUM:
                raise ValueError(
                    f"peer {peer.host}: tw = {peer.tw} is below freeDiameter's minimum of {TW_MINIMUM} s"
                )
        self.requested_port = port
        self.port: int = port or 0
        self.tc, self.tw = tc, tw
        self.relay = relay
        self.dictionaries = dictionaries
        self.dump_messages = dump_messages
        self.verbosity = verbosity
        self.app_threads = app_threads
        self.extra_config = extra_config
        self.binary = shutil.which(binary) or binary
        self.extension_dir = Path(extension_dir)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else None
        self.keep_workdir = keep_workdir
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    # -- paths -------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self._dir() / "freeDiameter.conf"

    @property
    def log_path(self) -> Path:
        """stdout and stderr of the daemon (its logger writes to stdout)."""
        return self._dir() / "freeDiameterd.log"

    def _dir(self) -> Path:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="freediameter-"))
        else:
            self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 10.0, attempts: int = 3) -> FreeDiameter:
        """Write the configuration, start the daemon and wait until it accepts TCP
        connections on ``port``. Raises FreeDiameterError (naming the log) otherwise."""
        if self.process is not None:
            raise FreeDiameterError("freeDiameterd is already running")
        if not os.access(self.binary, os.X_OK):
            raise FreeDiameterError(
                f"{self.binary} not found; install the Debian packages freediameter and freediameter-extensions"
            )
        self._write_credentials()
        for attempt in range(attempts):
            self.port = self.requested_port or free_port()
            self.config_path.write_text(self.config())
            self._write_extension_files()
            self._spawn()
            if self._wait_listening(time.monotonic() + timeout):
                return self
            last = self.log_tail()
            self._reap(kill=True)
            port_taken = "Address already in use" in last
            if not port_taken or self.requested_port or attempt == attempts - 1:
                raise FreeDiameterError(
                    f"freeDiameterd ({self.identity}) did not start listening on port {self.port} within "
                    f"{timeout:.0f} s (exit status {self.returncode}); see {self.log_path}:\n{last}"
                )
        raise AssertionError("unreachable")

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM (freeDiameter sends DPR to its open peers and waits up to 16 s for their
        DPA), SIGKILL after ``timeout`` (default ``stop_timeout``); always reaps. Returns
        the exit status (negative: killed by that signal)."""
        if timeout is None:
            timeout = self.stop_timeout
        process = self.process
        if process is None:
            return self.returncode
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout)
        self._reap(kill=True)
        if self._own_workdir and not self.keep_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.returncode

    def terminate(self) -> None:
        """SIGTERM without waiting: freeDiameter starts its shutdown (DPR to every peer);
        call :meth:`stop` (or :meth:`wait`) later to reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` for the process to exit (after :meth:`terminate`);
        the exit status, or None while it still runs."""
        if self.process is None:
            return self.returncode
        try:
            self.returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> FreeDiameter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self) -> None:
        args = [self.binary, "-c", str(self.config_path)]
        if self.verbosity > 0:
            args.append("-" + "d" * self.verbosity)
        elif self.verbosity < 0:
            args.append("-" + "q" * -self.verbosity)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._dir(),
                start_new_session=True,  # our Ctrl-C is not its SIGINT
            )
        self.returncode = None

    def _wait_listening(self, deadline: float) -> bool:
        """Poll until the port is in LISTEN state (the kernel's table, so no probe
        connection shows up as an error in its log) and, unless quiet, the daemon logged
        that it is initialised; False when the process dies or the deadline passes."""
        delay = 0.01
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            if is_listening(self.port) and (self.verbosity < 0 or READY_LINE in self.log_text()):
                return True
            time.sleep(delay)  # a bounded poll step, not a blind wait
            delay = min(delay * 2, 0.1)
        return False

    def _reap(self, kill: bool) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None and kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own session: nothing of ours
        try:
            self.returncode = process.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
            self.returncode = None
        self.process = None

    # -- the log ---------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_search(self, pattern: str) -> list[str]:
        """Log lines matching the regular expression ``pattern``."""
        compiled = re.compile(pattern)
        return [line for line in self.log_text().splitlines() if compiled.search(line)]

    def peer_state(self, host: str) -> str | None:
        """The last state freeDiameter logged for peer ``host`` ("STATE_OPEN",
        "STATE_CLOSED", ...), or None; needs ``verbosity >= 0`` (state changes are notices)."""
        pattern = re.compile(rf"-> '?(STATE_[A-Z_]+)'?.*'{re.escape(host)}'\s*$")
        state = None
        for line in self.log_text().splitlines():
            found = pattern.search(line)
            if found:
                state = found.group(1)
        return state

    def wait_peer_open(self, host: str, timeout: float = 10.0) -> None:
        """Block until freeDiameter logs peer ``host`` OPEN (for callers without a reactor,
        like the bench; tests poll :meth:`peer_state` instead). Raises FreeDiameterError."""
        if self.verbosity < 0:
            raise FreeDiameterError(
                "wait_peer_open reads state changes from the log: use verbosity >= 0"
            )
        deadline = time.monotonic() + timeout
        while self.peer_state(host) != "STATE_OPEN":
            if not self.running or time.monotonic() > deadline:
                raise FreeDiameterError(
                    f"peer {host} not open within {timeout:.0f} s; {self.describe()}"
                )
            time.sleep(0.02)  # a bounded poll step

    def describe(self) -> str:
        """For assertion messages: where the log is, and its end."""
        return f"freeDiameterd {self.identity} on port {self.port}, log {self.log_path}:\n{self.log_tail()}"

    # -- configuration ---------------------------------------------------------------------
    def config(self) -> str:
        """The freeDiameter.conf text for the current settings and port."""
        d = self._dir()
        lines = [
            f'Identity = "{_quoted(self.identity)}";',
            f'Realm = "{_quoted(self.realm)}";',
            f"Port = {self.port};",
            "SecPort = 0;",  # no TLS listener (TLS_Cred is still required, see above)
            "No_SCTP;",
            "No_IPv6;",
            "Prefer_TCP;",
            'ListenOn = "127.0.0.1";',  # ignored by 1.2.1, kept for versions that honour it
            f"TcTimer = {int(self.tc)};",
            f"TwTimer = {int(self.tw)};",
            f'TLS_Cred = "{d / "cert.pem"}", "{d / "key.pem"}";',
            f'TLS_CA = "{d / "cert.pem"}";',
        ]
        if not self.relay:
            lines.append("NoRelay;")
        if self.app_threads is not None:
            lines.append(f"AppServThreads = {int(self.app_threads)};")
        for name, argument in self.extensions():
            path = self.extension_dir / f"{name}.fdx"
            lines.append(
                f'LoadExtension = "{path}"' + (f' : "{argument}"' if argument else "") + ";"
            )
        for peer in self.peers:
            options = [
                "No_TLS",
                "No_SCTP",
                "No_IPv6",
                "Prefer_TCP",
                f"Port = {int(peer.port)}",
                f'ConnectTo = "{_quoted(peer.address)}"',
            ]
            if peer.tc is not None:
                options.append(f"TcTimer = {int(peer.tc)}")
            if peer.tw is not None:
                options.append(f"TwTimer = {int(peer.tw)}")
            lines.append(f'ConnectPeer = "{_quoted(peer.host)}" {{ {"; ".join(options)}; }};')
        if self.extra_config:
            lines.append(self.extra_config)
        return "\n".join(lines) + "\n"

    def extensions(self) -> list[tuple[str, str | None]]:
        """(extension name, argument) in load order."""
        d = self._dir()
        loaded: list[tuple[str, str | None]] = []
        if self.dictionaries:
            loaded += [(name, None) for name in DICTIONARIES]
        if self.dump_messages:
            loaded.append(("dbg_msg_dumps", f"0x{DUMP_FLAGS:04x}"))
        if self.accept_realms:
            loaded.append(("acl_wl", str(d / "acl_wl.conf")))
        if self.routes:
            loaded.append(("rt_default", str(d / "rt_default.conf")))
        return loaded

    def _write_extension_files(self) -> None:
        d = self._dir()
        if self.accept_realms:
            # acl_wl: "*" as the first label accepts every host of the realm; the flags
            # accept a CER that offers TLS or IPsec in band (old-style) as well
            entries = " ".join(f"*.{realm}" for realm in self.accept_realms)
            (d / "acl_wl.conf").write_text(f"ALLOW_OLD_TLS ALLOW_IPSEC {entries}\n")
        if self.routes:
            (d / "rt_default.conf").write_text(
                "\n".join(route.rule() for route in self.routes) + "\n"
            )

    def _write_credentials(self) -> None:
        d = self._dir()
        if (d / "cert.pem").exists():
            return
        cert, key = self_signed_certificate(self.identity)
        (d / "cert.pem").write_bytes(cert)
        (d / "key.pem").write_bytes(key)
        os.chmod(d / "key.pem", 0o600)


@contextlib.contextmanager
def bench_relay(
    upstream: int,
    *,
    upstream_host: str = "server.bench",
    destination_realm: str = "partner.example",
    client_realm: str = "bench",
    binary: str = BINARY,
    timeout: float = 10.0,
    stop_timeout: float = 2.0,
) -> Iterator[dict[str, object]]:
    """freeDiameter as the relay of bench/relay.py: it connects to the answering peer
    ``upstream_host`` on 127.0.0.1:``upstream``, routes requests for ``destination_realm``
    to it (rt_default) and accepts clients of ``client_realm`` (acl_wl). No message dumps,
    notices only (peer state changes). Yields ``{"port", "pid", "log"}`` once the upstream
    peer is open. On exit freeDiameter gets ``stop_timeout`` seconds for its DPR/DPA
    exchanges before SIGKILL (the bench's answering peer does not answer DPR with a DPA)."""
    fd = FreeDiameter(
        f"fd.{client_realm}",
        client_realm,
        peers=[FdPeer(upstream_host, upstream)],
        routes=[FdRoute(destination_realm, upstream_host)],
        accept_realms=[client_realm],
        binary=binary,
        stop_timeout=stop_timeout,
    )
    with fd:
        fd.wait_peer_open(upstream_host, timeout)
        assert fd.process is not None
        yield {"port": fd.port, "pid": fd.process.pid, "log": str(fd.log_path)}


def is_listening(port: int) -> bool:
    """Whether some socket listens on TCP ``port`` (IPv4), from /proc/net/tcp; where
    there is no /proc, by connecting."""
    try:
        table = Path("/proc/net/tcp").read_text()
    except OSError:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    for line in table.splitlines()[1:]:
        fields = line.split()
        # local_address is HEXIP:HEXPORT, state 0A is LISTEN
        if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
            return True
    return False


def free_port() -> int:
    """A TCP port free on every IPv4 address (freeDiameter binds them all)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def self_signed_certificate(common_name: str, days: int = 7) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) with CN = ``common_name`` (freeDiameter
    compares it with its Identity at start-up)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _quoted(value: str) -> str:
    if any(ch in value for ch in '"\n;{}'):
        raise ValueError(f"{value!r} cannot be written into a freeDiameter configuration")
    return value


__all__: Sequence[str] = (
    "FdPeer",
    "FdRoute",
    "FreeDiameter",
    "FreeDiameterError",
    "bench_relay",
    "free_port",
    "self_signed_certificate",
)
