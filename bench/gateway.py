"""Cx gateway benchmark: `cxgw gateway` processes in their Cx roles, in one run.

    python bench/gateway.py [--seconds 3] [--repeat 3] [--rate 5000] [--bindings 1000000]
                            [--subscribers 100000] [--cache-dir /tmp/cxgw-bench]
                            [--skip-freediameter] [--postgres] [--paths hss,partner,...] [--verbose]

Paths (each gateway is `cxgw gateway --config FILE` as users run it, [metrics] on; the
S-CSCF and the HSS stub are bench/relay_roles.py's cx-client and hss-stub):
  hss            S-CSCF -> cxgw role ["hss"]: MAAs with AKA vectors from its SQLite store,
                 an SQN committed per MAR (subscribers' real identities)
  partner        S-CSCF -> cxgw role "partner" (SQLite) -> HSS stub: the translation alone
  partner 10k    the same, identities drawn among 10,000 of the bindings only (a working set
                 the partner holds in memory: repeated registrations; no store read per MAR)
  chain          S-CSCF -> partner -> cxgw role ["primary", "hss"]: the whole chain
  relay          S-CSCF -> cxgw role "relay" -> HSS stub: the same node as a plain relay
  freeDiameter   S-CSCF -> freeDiameterd 1.2.1 relaying -> HSS stub
  with --postgres, the shared set-up (partner store in a PostgreSQL started here):
  partner pg x1  S-CSCF -> one partner on PostgreSQL -> HSS stub
  partner pg x2  S-CSCF (two connections) -> two partner processes on ONE port
                 (SO_REUSEPORT, [[listen]] reuse_port) -> HSS stub

The stores hold --bindings inbound bindings (partner) and as many outbound bindings plus
--subscribers subscribers (primary), built once with batched inserts through the stores'
own connections and cached under --cache-dir, keyed by the sizes. Every request names an
identity drawn at random and carries a new Session-Id.

For each path: closed-loop MAR/MAA pairs/s with 1, 16 and 128 requests outstanding (median
of --repeat runs; paths interleaved run by run), the CPU time (utime+stime, /proc) of every
gateway process per pair within the client's measuring window, and open-loop p50/p99 at
--rate requests/s. Every answer's result code is counted; the first answers of each run
are decoded in full and compared with their request (Session-Id, User-Name, vectors). A
path that answers anything but 2001, loses answers or mismatches is reported as failing,
with the codes, and measured no further.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
# this file is named like the `gateway` package: keep bench/ off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))


def _relay_module():  # type: ignore[no-untyped-def]
    """bench/relay.py's helpers: role(), cpu_seconds() and the roles' script."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_relay", HERE / "relay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_relay = _relay_module()
ROLES, cpu_seconds, role = _relay.ROLES, _relay.cpu_seconds, _relay.role

WINDOWS = (1, 16, 128)
HOT_IDENTITIES = 10_000  # the "partner 10k" path: a working set the partner holds in memory
PARTNER_IMPI, PARTNER_IMPU = "mig-{:07d}@partner.example", "sip:mig-{:07d}@partner.example"
OUT_IMPI, OUT_IMPU = "out-{:07d}@primary.example", "sip:out-{:07d}@primary.example"
REAL_IMPI, REAL_IMPU = "user{:07d}@primary.example", "sip:user{:07d}@primary.example"
EXTRA_IMPU = "sip:user{:07d}-{}@primary.example"  # further IMPUs of a subscriber's set
PRIMARY_REALM, PRIMARY_HOST = "primary.example", "gw.primary.example"
PARTNER_ID = "partner-a"
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+) \(tcp\)")
HTTP = re.compile(r"http://127\.0\.0\.1:(\d+)/")


# -- the stores ------------------------------------------------------------------------------
def _real_impu(i: int, subscribers: int) -> str:
    """The real IMPU outbound binding i is bound with: subscriber i % S, IMPU i // S of its
    set, so that no two bindings are the same allocation request."""
    j, n = i % subscribers, i // subscribers
    return REAL_IMPU.format(j) if n == 0 else EXTRA_IMPU.format(j, n)


def build_partner_sqlite(path: Path, bindings: int) -> None:
    from hss_store.allocation import request_key
    from hss_store.identities import identity_key
    from hss_store.records import PrimaryDatabase
    from hss_store.sqlite_store import SqliteStore

    with SqliteStore(path) as store:
        primary_id = store._primary_id(PrimaryDatabase(PRIMARY_REALM, PRIMARY_HOST))
        now = int(time.time())
        conn = store._conn
        conn.execute("BEGIN")
        for first in range(0, bindings, 100_000):
            rows = []
            for i in range(first, min(bindings, first + 100_000)):
                impi, impu = PARTNER_IMPI.format(i), PARTNER_IMPU.format(i)
                p_impi, p_impu = OUT_IMPI.format(i), OUT_IMPU.format(i)
                rows.append((impi, impu, primary_id, p_impi, p_impu,
                             request_key("inbound", PRIMARY_REALM, PRIMARY_HOST, p_impi, p_impu), now,
                             identity_key(impi), identity_key(impu)))  # fmt: skip
            conn.executemany(
                "INSERT INTO inbound_binding (inbound_impi, inbound_impu, primary_db, primary_impi, primary_impu, "
                "request_key, created_at, impi_key, impu_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def build_primary_sqlite(path: Path, bindings: int, subscribers: int) -> None:
    from hss_store.allocation import request_key
    from hss_store.identities import identity_key
    from hss_store.records import DEFAULT_AMF, SCHEME_AKA_V1, Agreement
    from hss_store.sqlite_store import SqliteStore

    per_subscriber = max(1, -(-bindings // subscribers))  # IMPUs in each implicit registration set
    with SqliteStore(path) as store:
        store.add_agreement(Agreement(PARTNER_ID, "all"))
        now = int(time.time())
        conn = store._conn
        conn.execute("BEGIN")
        for first in range(0, subscribers, 20_000):
            rows, impus = [], []
            for j in range(first, min(subscribers, first + 20_000)):
                impi = REAL_IMPI.format(j)
                rows.append((impi, os.urandom(16), os.urandom(16), DEFAULT_AMF, 0, SCHEME_AKA_V1, None, "", 0))
                impus.append((impi, REAL_IMPU.format(j), 0))
                impus.extend((impi, EXTRA_IMPU.format(j, n), n) for n in range(1, per_subscriber))
            conn.executemany(
                "INSERT INTO subscriber (impi, k, opc, amf, sqn, schemes, scscf_name, groups, wrapped) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            conn.executemany("INSERT INTO impu (impi, impu, position) VALUES (?, ?, ?)", impus)
        for first in range(0, bindings, 100_000):
            rows = []
            for i in range(first, min(bindings, first + 100_000)):
                impi, impu = OUT_IMPI.format(i), OUT_IMPU.format(i)
                real_impi, real_impu = REAL_IMPI.format(i % subscribers), _real_impu(i, subscribers)
                rows.append((impi, impu, identity_key(impi), identity_key(impu), real_impi, real_impu, PARTNER_ID,
                             request_key("outbound", real_impi, real_impu, PARTNER_ID), now))
            conn.executemany(
                "INSERT INTO outbound_binding (outbound_impi, outbound_impu, impi_key, impu_key, real_impi, real_impu, "
                "partner_id, request_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def cached(path: Path, build, *args: int) -> Path:  # type: ignore[no-untyped-def]
    if path.exists():
        return path
    partial = path.with_name(path.name + ".building")
    for leftover in path.parent.glob(partial.name + "*"):
        leftover.unlink()
    started = time.time()
    print(f"building {path} ...", file=sys.stderr, flush=True)
    build(partial, *args)
    os.replace(partial, path)
    for leftover in path.parent.glob(partial.name + "*"):  # an empty -wal/-shm
        leftover.unlink()
    print(f"  built in {time.time() - started:.0f} s ({path.stat().st_size / 1e6:.0f} MB)", file=sys.stderr, flush=True)
    return path


def check_store(path: Path, table: str, expected: int) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        count = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] if table.endswith("binding") else \
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if count != expected:
        raise SystemExit(f"{path}: {table} has {count} rows, expected {expected}; delete the file to rebuild it")


def load_partner_postgres(url: str, bindings: int) -> None:
    from hss_store.allocation import request_key
    from hss_store.identities import identity_key
    from hss_store.postgres_store import PostgresStore

    started = time.time()
    PostgresStore(url).close()  # opening it creates the schema
    import psycopg

    with psycopg.connect(url) as conn:
        primary_id = conn.execute(
            "INSERT INTO primary_db (realm, host) VALUES (%s, %s) RETURNING id", (PRIMARY_REALM, PRIMARY_HOST)
        ).fetchone()[0]  # type: ignore[index]
        now = int(time.time())
        with conn.cursor() as cur, cur.copy(
            "COPY inbound_binding (inbound_impi, inbound_impu, primary_db, primary_impi, primary_impu, "
            "request_key, created_at, impi_key, impu_key) FROM STDIN"
        ) as copy:
            for i in range(bindings):
                impi, impu = PARTNER_IMPI.format(i), PARTNER_IMPU.format(i)
                p_impi, p_impu = OUT_IMPI.format(i), OUT_IMPU.format(i)
                copy.write_row((impi, impu, primary_id, p_impi, p_impu,
                                request_key("inbound", PRIMARY_REALM, PRIMARY_HOST, p_impi, p_impu), now,
                                identity_key(impi), identity_key(impu)))  # fmt: skip
        conn.commit()
        conn.execute("ANALYZE inbound_binding")
    print(f"  {bindings:,} bindings copied into PostgreSQL in {time.time() - started:.0f} s", file=sys.stderr, flush=True)


# -- gateway processes -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Gateway:
    """`cxgw gateway --config FILE` as a child; its log (stderr) read by a thread."""

    def __init__(self, name: str, config: Path) -> None:
        self.name = name
        self.config = config
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "gateway", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=str(HERE.parent),
        )
        self.pid = self.process.pid
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:  # type: ignore[union-attr]
            self.lines.append(line)

    def wait_for(self, pattern: re.Pattern[str] | str, what: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.time() + timeout
        while True:
            for line in list(self.lines):
                match = re.search(pattern, line)
                if match:
                    return match
            if self.process.poll() is not None:
                time.sleep(0.2)  # the reader thread's last lines
                raise RuntimeError(f"gateway {self.name} exited ({self.process.returncode}) before {what}:\n{self.tail()}")
            if time.time() > deadline:
                raise RuntimeError(f"gateway {self.name}: timed out waiting for {what}:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, lines: int = 25) -> str:
        return "".join(self.lines[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"gateway {self.name} died ({self.process.returncode}):\n{self.tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: DPR to its peers, exit 0
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def gateway(name: str, config: Path, upstream: str | None = None, bindings: str | None = None) -> Iterator[Gateway]:
    """A started gateway, listening (and with ``upstream`` open, and its ``bindings``,
    "inbound" or "outbound", loaded into memory), stopped on exit."""
    process = Gateway(name, config)
    try:
        process.port = int(process.wait_for(LISTENING, "its listening port").group(1))  # type: ignore[attr-defined]
        process.wait_for(HTTP, "its /metrics endpoint")
        if upstream:
            process.wait_for(rf"peer {re.escape(upstream)}: open", f"peer {upstream} to open")
        if bindings:
            loaded = process.wait_for(rf"([\d,]+) active {bindings} bindings held in memory.*", f"its {bindings} bindings",
                                      timeout=300)
            print(f"{name}: {loaded.group(0).strip()}", file=sys.stderr, flush=True)
        yield process
    finally:
        process.stop()


COMMON = """
[timers]
tc = 1
twinit = 30
tx = 4

[metrics]
address = "127.0.0.1"
port = 0

[logging]
level = "info"
format = "text"
"""


def _peers(hosts: list[str], realm: str) -> str:
    return "".join(f'\n[[peers]]\nhost = "{h}"\nrealm = "{realm}"\naddress = "127.0.0.1"\nconnect = false\n' for h in hosts)


def _listen(port: int = 0, reuse_port: bool = False) -> str:
    return f'\n[[listen]]\naddress = "127.0.0.1"\nport = {port}\ntransport = "tcp"\n' + (
        "reuse_port = true\n" if reuse_port else "")


def hss_config(store: str) -> str:
    return f"""
[node]
origin_host = "hss.primary.example"
origin_realm = "primary.example"
role = ["hss"]
applications = ["cx"]
{_listen()}{_peers(["scscf.primary.example"], "primary.example")}
[unknown_peers]
accept_realms = []

[[routes]]
realm = "primary.example"
action = "local"

[store]
target = "{store}"

[hss]
max_vectors = 5
{COMMON}"""


def partner_config(store: str, upstream_port: int, host: str = "gw.partner.example", listen_port: int = 0,
                   reuse_port: bool = False, scscfs: int = 1) -> str:
    scscf_hosts = ["scscf.partner.example"] + [f"scscf{i + 1}.partner.example" for i in range(1, scscfs)]
    return f"""
[node]
origin_host = "{host}"
origin_realm = "partner.example"
role = "partner"
applications = ["cx"]
{_listen(listen_port, reuse_port)}{_peers(scscf_hosts, "partner.example")}
[[peers]]
host = "{PRIMARY_HOST}"
realm = "{PRIMARY_REALM}"
address = "127.0.0.1"
port = {upstream_port}
transport = "tcp"
connect = true

[unknown_peers]
accept_realms = []

[[routes]]
realm = "{PRIMARY_REALM}"
action = "proxy"
peers = [{{ host = "{PRIMARY_HOST}" }}]

[[routes]]
realm = "partner.example"
action = "local"

[store]
target = "{store}"

[partner]
hide_topology = true
revocation_poll = 1
{COMMON}"""


def primary_config(store: str) -> str:
    return f"""
[node]
origin_host = "{PRIMARY_HOST}"
origin_realm = "{PRIMARY_REALM}"
role = ["primary", "hss"]
applications = ["cx"]
{_listen()}{_peers(["gw.partner.example"], "partner.example")}
[unknown_peers]
accept_realms = []

[[routes]]
realm = "{PRIMARY_REALM}"
action = "local"

[store]
target = "{store}"

[hss]
max_vectors = 5

[primary]
hide_topology = true

[[primary.partners]]
host = "gw.partner.example"
partner_id = "{PARTNER_ID}"
{COMMON}"""


def relay_config(upstream_port: int) -> str:
    return f"""
[node]
origin_host = "relay.partner.example"
origin_realm = "partner.example"
role = "relay"
applications = ["cx"]
{_listen()}{_peers(["scscf.partner.example"], "partner.example")}
[[peers]]
host = "{PRIMARY_HOST}"
realm = "{PRIMARY_REALM}"
address = "127.0.0.1"
port = {upstream_port}
transport = "tcp"
connect = true

[unknown_peers]
accept_realms = []

[[routes]]
realm = "partner.example"
action = "relay"
peers = [{{ host = "{PRIMARY_HOST}" }}]
{COMMON}"""


# -- measuring -------------------------------------------------------------------------------
class PathFailed(RuntimeError):
    """A path answered errors or lost answers in a closed-loop run: reported, not measured."""


def client(path: dict, *args: str) -> tuple[dict, dict[str, float]]:
    """One cx-client run against ``path``; its result and each gateway's CPU seconds
    within the client's measuring window."""
    command = [sys.executable, ROLES, "cx-client", "--port", str(path["port"]), *path["client"], *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start: dict[str, float] = {}
    stop: dict[str, float] = {}
    result = None
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            fields = json.loads(line)
            if fields.get("phase") == "start":
                start = {name: cpu_seconds(pid) for name, pid in path["pids"].items()}
            elif fields.get("phase") == "stop":
                stop = {name: cpu_seconds(pid) for name, pid in path["pids"].items()}
            elif "pairs" in fields:
                result = fields
        process.wait(120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode or result is None:
        raise PathFailed(f"the S-CSCF client failed: {process.stderr.read()[-800:]}")  # type: ignore[union-attr]
    cpu = {name: stop[name] - start[name] for name in start} if start and stop else {}
    return result, cpu


def judge(name: str, result: dict, label: str, closed_loop: bool = True) -> None:
    """Raise PathFailed when the path answered errors, lost answers or mismatched them (in
    the open loop, errors and lost answers may be overload: they are reported, not fatal)."""
    problems = []
    if result["errors"] and closed_loop:
        problems.append(f"{result['errors']} error answers (by code: {result['error_codes']})")
    if result["mismatch_count"]:
        problems.append(f"{result['mismatch_count']} of {result['checked']} checked answers do not fit their "
                        f"request, e.g. {result['mismatches'][:2]}")
    if result["lost"] > 0 and closed_loop:
        problems.append(f"{result['lost']} requests never answered")
    if result["lost_connections"]:
        problems.append(f"{result['lost_connections']} connections closed by the gateway")
    if not result["pairs"]:
        problems.append("no answer at all")
    if problems:
        raise PathFailed(f"{name} ({label}): " + "; ".join(problems))


def measure_all(paths: dict[str, dict], args: argparse.Namespace) -> dict[str, dict]:
    runs: dict[str, dict[int, list[tuple[float, dict[str, float]]]]] = {n: {w: [] for w in WINDOWS} for n in paths}
    failed: dict[str, str] = {}
    common = ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]

    def attempt(name: str, path: dict, label: str, *extra: str, closed_loop: bool = True) -> tuple[dict, dict[str, float]] | None:
        if name in failed:
            return None
        try:
            for process in path.get("processes", ()):
                process.check_alive()
            result, cpu = client(path, *common, *extra)
            judge(name, result, label, closed_loop)
            return result, cpu
        except (PathFailed, RuntimeError) as error:
            failed[name] = str(error)
            print(f"  FAILED {name}: {error}", file=sys.stderr, flush=True)
            return None

    for _ in range(args.repeat):
        for window in WINDOWS:
            for name, path in paths.items():
                done = attempt(name, path, f"window {window}", "--window", str(window))
                if done is None:
                    continue
                result, cpu = done
                per_pair = {process: seconds / result["pairs"] * 1e6 for process, seconds in cpu.items()}
                runs[name][window].append((result["rate"], per_pair))
                if args.verbose:
                    text = ", ".join(f"{p} {us:.1f}" for p, us in per_pair.items())
                    print(f"  {name:16} w={window:<4} {result['rate']:>8,.0f} pairs/s  cpu us/pair: {text}"
                          f"  peers {result['peers']}", file=sys.stderr, flush=True)
    latencies: dict[str, list[dict]] = {n: [] for n in paths}
    for _ in range(args.repeat):
        for name, path in paths.items():
            done = attempt(name, path, f"{args.rate:g}/s", "--rate", str(args.rate), closed_loop=False)
            if done is None:
                continue
            latencies[name].append(done[0])
            if args.verbose:
                r = done[0]
                print(f"  {name:16} {args.rate:g}/s p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us, "
                      f"{r['rate']:,.0f} answers/s, errors {r['error_codes']}, unanswered {r['lost']}",
                      file=sys.stderr, flush=True)
    results: dict[str, dict] = {}
    for name, path in paths.items():
        summary: dict = {"processes": list(path["pids"]), "failed": failed.get(name)}
        for window in WINDOWS:
            if runs[name][window]:
                rates = [rate for rate, _ in runs[name][window]]
                cpu = {p: statistics.median(run[1][p] for run in runs[name][window]) for p in path["pids"]}
                summary[window] = (statistics.median(rates), cpu)
        if latencies[name]:
            summary["latency"] = tuple(statistics.median(r[k] for r in latencies[name])
                                       for k in ("p50_us", "p99_us", "rate", "errors", "lost"))
        results[name] = summary
    return results


# -- the set-up ------------------------------------------------------------------------------
def freediameter_relay(upstream: int) -> contextlib.AbstractContextManager[dict]:
    from gateway.testing.freediameter import bench_relay

    return bench_relay(upstream, upstream_host=PRIMARY_HOST, destination_realm="partner.example",
                       client_realm="partner.example")


def run(args: argparse.Namespace) -> dict[str, dict]:
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    b, s = args.bindings, args.subscribers
    partner_store = cached(cache / f"partner-b{b}.sqlite", build_partner_sqlite, b)
    primary_store = cached(cache / f"primary-b{b}-s{s}.sqlite", build_primary_sqlite, b, s)
    check_store(partner_store, "inbound_binding", b)
    check_store(primary_store, "outbound_binding", b)
    check_store(primary_store, "subscriber", s)
    partner_client = ["--realm", "partner.example", "--impi-format", PARTNER_IMPI, "--impu-format", PARTNER_IMPU,
                      "--count", str(b)]
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cxgw-gateway-bench-")))
        # the hss path gets a copy of the primary store: the two never write one file
        hss_store = work / "hss.sqlite"
        shutil.copyfile(primary_store, hss_store)

        def config(name: str, text: str) -> Path:
            path = work / f"{name}.toml"
            path.write_text(text)
            return path

        def started(name: str, text: str, upstream: str | None = None, bindings: str | None = None) -> Gateway:
            return stack.enter_context(gateway(name, config(name, text), upstream, bindings))

        stub = stack.enter_context(role("hss-stub", "--host", PRIMARY_HOST, "--realm", PRIMARY_REALM))
        paths: dict[str, dict] = {}
        hss = started("hss", hss_config(str(hss_store)))
        paths["hss"] = {"port": hss.port, "pids": {"hss": hss.pid}, "processes": [hss], "client": [
            "--host", "scscf.primary.example", "--origin-realm", "primary.example", "--realm", "primary.example",
            "--impi-format", REAL_IMPI, "--impu-format", REAL_IMPU, "--count", str(s)]}
        partner = started("partner", partner_config(str(partner_store), stub["port"]), PRIMARY_HOST, "inbound")
        paths["partner"] = {"port": partner.port, "pids": {"partner": partner.pid}, "processes": [partner],
                            "client": partner_client}
        # the same process, identities drawn among 10,000 only: bindings held in memory
        hot = [*partner_client[:-1], str(min(b, HOT_IDENTITIES))]
        paths["partner 10k"] = {"port": partner.port, "pids": {"partner": partner.pid}, "processes": [partner],
                                "client": hot}
        primary = started("primary", primary_config(str(primary_store)), bindings="outbound")
        chain_partner = started("chain-partner", partner_config(str(partner_store), primary.port), PRIMARY_HOST,
                                "inbound")
        paths["chain"] = {"port": chain_partner.port, "pids": {"partner": chain_partner.pid, "primary": primary.pid},
                          "processes": [chain_partner, primary], "client": partner_client}
        relay = started("relay", relay_config(stub["port"]), PRIMARY_HOST)
        paths["relay"] = {"port": relay.port, "pids": {"relay": relay.pid}, "processes": [relay],
                          "client": [*partner_client, "--any-user-name"]}
        if not args.skip_freediameter:
            fd = stack.enter_context(freediameter_relay(stub["port"]))
            paths["freeDiameter"] = {"port": fd["port"], "pids": {"freeDiameter": fd["pid"]},
                                     "client": [*partner_client, "--any-user-name"]}
        if args.postgres:
            from hss_store.pgserver import TemporaryPostgres

            pg = stack.enter_context(TemporaryPostgres(durable=True))
            load_partner_postgres(pg.url, b)
            one = started("partner-pg", partner_config(pg.url, stub["port"], scscfs=2), PRIMARY_HOST, "inbound")
            paths["partner pg x1"] = {"port": one.port, "pids": {"partner": one.pid}, "processes": [one],
                                      "client": partner_client}
            port = free_port()
            pair = [started(f"partner-pg-{i}", partner_config(pg.url, stub["port"], host=f"gw-{i}.partner.example",
                                                              listen_port=port, reuse_port=True, scscfs=2),
                            PRIMARY_HOST, "inbound") for i in (1, 2)]
            paths["partner pg x2"] = {
                "port": port, "pids": {"partner-1": pair[0].pid, "partner-2": pair[1].pid}, "processes": pair,
                "client": [*partner_client, "--cx-connections", "2", "--distinct"],
            }
        if args.paths:
            paths = {name: path for name, path in paths.items() if name in args.paths}
        print(f"all {len(paths)} paths ready; measuring", file=sys.stderr, flush=True)
        return measure_all(paths, args)


# -- the report ------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, ["-" * w for w in widths], *rows):
        print("  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths, strict=True))))


def print_report(results: dict[str, dict], args: argparse.Namespace) -> None:
    print(f"Cx gateway benchmark: {args.bindings:,} bindings, {args.subscribers:,} subscribers; "
          f"MAR/MAA pairs/s (median of {args.repeat} x {args.seconds:g} s), latency at {args.rate:g} req/s (medians)")
    header = ["path"] + [f"w={w} pairs/s" for w in WINDOWS] + ["p50 us", "p99 us", "answers/s", "errors", "unanswered"]
    rows = []
    for name, r in results.items():
        row = [name] + [f"{r[w][0]:,.0f}" if w in r else "-" for w in WINDOWS]
        p50, p99, answered, errors, lost = r.get("latency", (None,) * 5)
        row += [f"{p50:.0f}" if p50 else "-", f"{p99:.0f}" if p99 else "-", f"{answered:,.0f}" if answered else "-",
                f"{errors:.0f}" if errors is not None else "-", f"{lost:.0f}" if lost is not None else "-"]
        rows.append(row)
    _table(header, rows)
    print()
    print("CPU per pair of every gateway process, us (utime+stime within the measuring window / pairs answered)")
    header = ["path", "process"] + [f"w={w}" for w in WINDOWS]
    rows = []
    for name, r in results.items():
        for process in r["processes"]:
            rows.append([name, process] + [f"{r[w][1][process]:.1f}" if w in r else "-" for w in WINDOWS])
        if len(r["processes"]) > 1:
            rows.append([name, "all"] + [f"{sum(r[w][1].values()):.1f}" if w in r else "-" for w in WINDOWS])
    _table(header, rows)
    failures = {name: r["failed"] for name, r in results.items() if r["failed"]}
    if failures:
        print()
        for name, why in failures.items():
            print(f"FAILED {name}: {why}")
    print_goals(results, args)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def print_goals(results: dict[str, dict], args: argparse.Namespace) -> None:
    def rate(name: str, window: int) -> float | None:
        r = results.get(name)
        return r[window][0] if r and window in r and not r["failed"] else None

    def cpu(name: str, process: str, window: int) -> float | None:
        r = results.get(name)
        return r[window][1][process] if r and window in r and not r["failed"] else None

    print()
    print("Goals")
    for window in (16, 128):
        ours, plain = cpu("partner", "partner", window), cpu("relay", "relay", window)
        if ours is None:
            print(f"  partner CPU per translated pair at w={window}: n/a")
            continue
        print(f"  partner CPU per translated pair at w={window}: {ours:.1f} us (goal <= 20): {_verdict(ours <= 20)}")
        if plain is not None:
            print(f"  ... vs the plain relay's {plain:.1f} us: {ours / plain:.2f}x (goal <= 2x): {_verdict(ours <= 2 * plain)}")
    for window in WINDOWS:
        ours, plain, fd = rate("partner", window), rate("relay", window), rate("freeDiameter", window)
        if ours is None:
            continue
        line = f"  translated throughput at w={window}: {ours:,.0f}/s"
        if plain:
            line += f"; {ours / plain:.0%} of the plain relay's {plain:,.0f} (goal >= 50%): {_verdict(ours >= plain / 2)}"
        if fd:
            line += f"; {ours / fd:.1f}x freeDiameter's {fd:,.0f} (goal >= 2x): {_verdict(ours >= 2 * fd)}"
        print(line)
    chain = results.get("chain")
    if chain and "latency" in chain and not chain["failed"]:
        p99 = chain["latency"][1]
        answered = chain["latency"][2]
        print(f"  whole chain p99 at {args.rate:g}/s: {p99 / 1000:.2f} ms (goal < 2 ms): {_verdict(p99 < 2000)}"
              + ("" if answered >= 0.98 * args.rate else f" (it answered {answered:,.0f}/s: offered more than it serves)"))
    hss = results.get("hss")
    if hss and not hss["failed"]:
        best = max(hss[w][0] for w in WINDOWS if w in hss)
        print(f"  HSS MAAs per second: {', '.join(f'w={w} {hss[w][0]:,.0f}' for w in WINDOWS if w in hss)}; "
              f"best {best:,.0f} (goal >= 10,000): {_verdict(best >= 10_000)}")
        print("    every MAR commits its SQN before the MAA leaves (one SQLite transaction, WAL, "
              "synchronous=NORMAL: survives kill -9 of the gateway, not power loss); PyHSS states about 500/s")
    for name in ("partner pg x1", "partner pg x2"):
        r = results.get(name)
        if r and not r["failed"]:
            print(f"  {name}: {', '.join(f'w={w} {r[w][0]:,.0f}/s' for w in WINDOWS if w in r)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring window of each run")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before each measuring window")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=5000.0, help="open-loop requests/s for the latency runs")
    parser.add_argument("--bindings", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--cache-dir", default="/tmp/cxgw-bench")
    parser.add_argument("--skip-freediameter", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="also the partner on PostgreSQL, one and two processes")
    parser.add_argument("--paths", default="", help="measure only these paths (comma-separated names of the table)")
    parser.add_argument("--verbose", action="store_true", help="print every run on stderr")
    args = parser.parse_args()
    args.paths = {name.strip() for name in args.paths.split(",") if name.strip()}
    unknown = args.paths - {"hss", "partner", "partner 10k", "chain", "relay", "freeDiameter", "partner pg x1",
                            "partner pg x2"}
    if unknown:
        parser.error(f"--paths: no path {sorted(unknown)}; the paths are hss, partner, 'partner 10k', chain, relay, freeDiameter, "
                     "'partner pg x1', 'partner pg x2'")
    if args.subscribers < 1 or args.bindings < 1:
        parser.error("--bindings and --subscribers must be at least 1")
    results = run(args)
    print_report(results, args)
    return 1 if any(r["failed"] for r in results.values()) else 0


if __name__ == "__main__":
    started = time.time()
    status = main()
    print(f"\n(bench took {time.time() - started:.0f} s)")
    sys.exit(status)
