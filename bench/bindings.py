"""A binding looked up among many in memory (gateway/applications/packed.py), as the partner
and the primary role look one up for every MAR: this checkout, and with ``--vs REV`` the
``packed.py`` of a git revision, alternated in one process on the same identities.

    python bench/bindings.py [--count 1000000] [--lookups 100000] [--rounds 5] [--vs REV]

Each lookup is of a random IMPI among ``--count``, made into bytes just before (a MAR's
User-Name is: its hash is computed every time), so the table's and the records' memory is
read as a live gateway reads it, cache misses included. Prints nanoseconds per lookup,
each round and the median; with ``--vs``, the median of the rounds' ratios too.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hss_store.records import PrimaryDatabase  # noqa: E402

IMPI, IMPU = "mig-{:07d}@partner.example", "sip:mig-{:07d}@partner.example"
TO_IMPI, TO_IMPU = "out-{:07d}@primary.example", "sip:out-{:07d}@primary.example"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def filled(module: ModuleType, count: int) -> object:
    bindings = module.PackedBindings()
    owners = [PrimaryDatabase("primary.example"), PrimaryDatabase("primary.example", "hss.primary.example")]
    for n in range(count):
        bindings.put(IMPI.format(n).encode(), IMPU.format(n).encode(), TO_IMPI.format(n).encode(),
                     TO_IMPU.format(n).encode(), owners[n & 1], 1_800_000_000 + n, None)
    return bindings


def per_lookup(bindings: object, impis: list[str]) -> float:
    find = bindings.find  # type: ignore[attr-defined]
    started = time.perf_counter()
    for impi in impis:
        find(impi.encode())
    return (time.perf_counter() - started) / len(impis) * 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--vs", metavar="REV")
    args = parser.parse_args()
    versions = {"this checkout": ROOT / "gateway/applications/packed.py"}
    with tempfile.TemporaryDirectory() as work:
        if args.vs:
            old = Path(work) / "packed_vs.py"
            old.write_bytes(subprocess.run(["git", "-C", str(ROOT), "show", f"{args.vs}:gateway/applications/packed.py"],
                                           check=True, capture_output=True).stdout)
            versions[args.vs] = old
        tables = {}
        for index, (name, path) in enumerate(versions.items()):
            started = time.perf_counter()
            tables[name] = filled(load(path, f"packed_{index}"), args.count)
            print(f"{name}: {args.count:,} bindings packed in {time.perf_counter() - started:.1f} s", flush=True)
    random.seed(1)
    impis = [IMPI.format(random.randrange(args.count)) for _ in range(args.lookups)]
    runs: dict[str, list[float]] = {name: [] for name in tables}
    for round_ in range(args.rounds):
        for name, bindings in tables.items():
            runs[name].append(per_lookup(bindings, impis))
        print(f"round {round_ + 1}: " + ", ".join(f"{name} {runs[name][-1]:.0f} ns" for name in tables), flush=True)
    for name, values in runs.items():
        print(f"{name}: median {statistics.median(values):.0f} ns per lookup")
    if args.vs:
        ratios = [a / b for a, b in zip(runs["this checkout"], runs[args.vs], strict=True)]
        print(f"this checkout / {args.vs}: median of the rounds' ratios {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
