"""Benchmark of hss_store (not a test: it prints figures, it asserts nothing about time).

    python bench/store.py                   # 1,000,000 bindings, SQLite and PostgreSQL
    python bench/store.py --rows 100000 --no-postgres

Prints:
- AKA vectors/s, pure computation (hss_store.aka.build_vectors), and the same vectors from
  an independent, straightforward MILENAGE written below (its output is compared too);
- persisted vectors/s (SQN committed before the vector is returned), SQLite
  synchronous=NORMAL and FULL, PostgreSQL with fsync on;
- binding lookups/s and p50/p99 latency with --rows inbound bindings, SQLite and PostgreSQL,
  and the SQLite file size;
- allocation rate (allocate_inbound, random identities).
The PostgreSQL server is a TemporaryPostgres started here, with fsync on.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

from hss_store.aka import build_vectors  # noqa: E402
from hss_store.allocation import AllocationPolicy, random_token, request_key  # noqa: E402
from hss_store.identities import identity_key  # noqa: E402
from hss_store.milenage import Milenage  # noqa: E402
from hss_store.records import PrimaryDatabase, Subscriber  # noqa: E402

K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
AMF = b"\x80\x00"


# -- an independent MILENAGE, byte by byte from TS 35.206 §4.1 (one AES call per function) ------------


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _rot_bytes(x: bytes, r_bits: int) -> bytes:
    n = r_bits // 8  # all default rotations are whole octets
    return x[n:] + x[:n]


_C = [bytes(15) + bytes([c]) for c in (0, 1, 2, 4, 8)]


class ReferenceMilenage:
    def __init__(self, k: bytes, opc: bytes) -> None:
        self.enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
        self.opc = opc

    def e(self, x: bytes) -> bytes:
        return self.enc.update(x)

    def vector(self, rand: bytes, sqn: bytes, amf: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        opc = self.opc
        temp = self.e(_xor(rand, opc))
        in1 = sqn + amf + sqn + amf
        out1 = _xor(self.e(_xor(_xor(temp, _rot_bytes(_xor(in1, opc), 64)), _C[0])), opc)
        out2 = _xor(self.e(_xor(_rot_bytes(_xor(temp, opc), 0), _C[1])), opc)
        out3 = _xor(self.e(_xor(_rot_bytes(_xor(temp, opc), 32), _C[2])), opc)
        out4 = _xor(self.e(_xor(_rot_bytes(_xor(temp, opc), 64), _C[3])), opc)
        mac_a, res, ak = out1[:8], out2[8:], out2[:6]
        return _xor(sqn, ak) + amf + mac_a, res, out3, out4


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def bench_compute(seconds: float) -> list[str]:
    lines = []
    m = Milenage(K, OPC)
    for batch in (1, 5):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(200):
                build_vectors(m, list(range(1, batch + 1)), AMF)
            n += 200 * batch
        lines.append(f"AKA vectors computed (build_vectors, batches of {batch}, one core): {rate(n, time.perf_counter() - start)}")
    ref = ReferenceMilenage(K, OPC)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(200):
            ref.vector(os.urandom(16), (i + 1).to_bytes(6, "big"), AMF)
        n += 200
    lines.append(f"AKA vectors computed (independent reference MILENAGE in this file): {rate(n, time.perf_counter() - start)}")
    for _ in range(1000):  # cross-check: same inputs, same outputs
        rand, sqn = os.urandom(16), random.getrandbits(48)
        [v] = build_vectors(m, [sqn], AMF, [rand])
        assert (v.autn, v.xres, v.ck, v.ik) == ref.vector(rand, sqn.to_bytes(6, "big"), AMF), "MILENAGE mismatch"
    lines.append("  cross-check: 1,000 random vectors identical in both implementations")
    return lines


def bench_persisted(store, label: str, seconds: float) -> str:
    impi = f"bench-{random_token()}@ims.example.net"
    store.add_subscriber(Subscriber.new(impi, [f"sip:{impi}"], K, opc=OPC))
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        store.generate_vectors(impi, 1)
        n += 1
    elapsed = time.perf_counter() - start
    return f"persisted vectors, 1 per request, {label}: {rate(n, elapsed)} ({elapsed / n * 1e6:.0f} us per request)"


def load_bindings_sqlite(store, rows: int) -> list[str]:
    primary_id = store._primary_id(PrimaryDatabase("primary.example"))
    sample: list[str] = []
    conn = store._conn
    conn.execute("BEGIN")
    for first in range(0, rows, 100_000):
        batch = []
        for i in range(first, min(rows, first + 100_000)):
            token = random_token()
            p_impi, p_impu = f"user{i:07d}@primary.example", f"sip:user{i:07d}@primary.example"
            impi = f"mig-{token}@partner.example"
            batch.append((impi, f"sip:{impi}", primary_id, p_impi, p_impu,
                          request_key("inbound", "primary.example", None, p_impi, p_impu), 1_800_000_000,
                          identity_key(impi), identity_key(f"sip:{impi}")))  # fmt: skip
            if i % 10 == 0:
                sample.append(impi)
        conn.executemany(
            "INSERT INTO inbound_binding (inbound_impi, inbound_impu, primary_db, primary_impi, primary_impu, "
            "request_key, created_at, impi_key, impu_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sample


def load_bindings_postgres(store, rows: int) -> list[str]:
    primary_id = store._primary_id(PrimaryDatabase("primary.example"))
    sample: list[str] = []
    with store._conn.cursor() as cur:
        with cur.copy(
            "COPY inbound_binding (inbound_impi, inbound_impu, primary_db, primary_impi, primary_impu, "
            "request_key, created_at, impi_key, impu_key) FROM STDIN"
        ) as copy:
            for i in range(rows):
                token = random_token()
                p_impi, p_impu = f"user{i:07d}@primary.example", f"sip:user{i:07d}@primary.example"
                impi = f"mig-{token}@partner.example"
                copy.write_row((impi, f"sip:{impi}", primary_id, p_impi, p_impu,
                                request_key("inbound", "primary.example", None, p_impi, p_impu), 1_800_000_000,
                          identity_key(impi), identity_key(f"sip:{impi}")))  # fmt: skip
                if i % 10 == 0:
                    sample.append(impi)
    store._conn.execute("ANALYZE inbound_binding")
    return sample


def bench_lookups(store, sample: list[str], label: str, count: int) -> str:
    rng = random.Random(1)
    keys = [rng.choice(sample) for _ in range(count)]
    for key in keys[:1000]:  # warm up (statement cache, prepared statements)
        store.inbound_by_impi(key)
    latencies = []
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for key in keys:
        t0 = clock()
        store.inbound_by_impi(key)
        latencies.append(clock() - t0)
    elapsed = time.perf_counter() - start
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2] / 1000, latencies[int(len(latencies) * 0.99)] / 1000
    return f"binding lookups by inbound IMPI, {label}: {rate(count, elapsed)}, p50 {p50:.1f} us, p99 {p99:.1f} us"


def bench_allocation(store, label: str, count: int) -> str:
    store.set_policy(AllocationPolicy("inbound", "random", "mig-{random}@partner.example", "sip:mig-{random}@partner.example"))
    primary = PrimaryDatabase("other.example")
    start = time.perf_counter()
    for i in range(count):
        store.allocate_inbound(primary, f"a{i}@other.example", f"sip:a{i}@other.example")
    return f"allocations (allocate_inbound, random identities), {label}: {rate(count, time.perf_counter() - start)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="bindings loaded for the lookup figures")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each rate measurement")
    parser.add_argument("--lookups", type=int, default=200_000, help="lookups timed per backend")
    parser.add_argument("--allocations", type=int, default=2_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    from hss_store.sqlite_store import SqliteStore

    print(f"# hss_store benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, rows={args.rows:,}")
    for line in bench_compute(args.seconds):
        print(line, flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="cxgw-bench-"))
    try:
        for sync in ("NORMAL", "FULL"):
            with SqliteStore(workdir / f"vectors-{sync}.db", synchronous=sync) as store:
                print(bench_persisted(store, f"SQLite synchronous={sync}", args.seconds), flush=True)
        with SqliteStore(workdir / "bindings.db") as store:
            start = time.perf_counter()
            sample = load_bindings_sqlite(store, args.rows)
            print(f"loaded {args.rows:,} bindings into SQLite in {time.perf_counter() - start:.1f} s", flush=True)
            size = sum(p.stat().st_size for p in workdir.glob("bindings.db*"))
            print(f"SQLite file with {args.rows:,} bindings: {size / 1e6:.0f} MB ({size / args.rows:.0f} bytes per binding)")
            print(bench_lookups(store, sample, f"SQLite, {args.rows:,} bindings", args.lookups), flush=True)
            print(bench_allocation(store, "SQLite", args.allocations), flush=True)

        if not args.no_postgres:
            from hss_store.pgserver import TemporaryPostgres
            from hss_store.postgres_store import PostgresStore

            with TemporaryPostgres(durable=True) as server:
                with PostgresStore(server.url) as store:
                    print(bench_persisted(store, "PostgreSQL (fsync on, loopback)", args.seconds), flush=True)
                    start = time.perf_counter()
                    sample = load_bindings_postgres(store, args.rows)
                    print(f"loaded {args.rows:,} bindings into PostgreSQL (COPY) in {time.perf_counter() - start:.1f} s", flush=True)
                    print(bench_lookups(store, sample, f"PostgreSQL, {args.rows:,} bindings", args.lookups // 4), flush=True)
                    print(bench_allocation(store, "PostgreSQL", args.allocations // 4), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
