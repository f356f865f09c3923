"""Instructions per MAR/MAA pair of a Cx role in-process, counted by valgrind's callgrind:
a figure that does not drift with the machine, for comparing two versions of the code.

    python bench/instructions.py partner [--vs REV] [--reads 4 20]
    python bench/instructions.py primary [--vs REV]

Runs ``bench/relay_cx.py ROLE`` under ``valgrind --tool=callgrind`` twice, with two numbers
of reads of 128 MARs, on a small store (20,000 bindings, 10,000 subscribers, identities
among 10,000; built here once, in --cache-dir), and prints the difference in instructions
divided by the pairs between them: what one more pair costs, the set-up cancelled out. The
pairs include the benchmark's own work per pair (making the MARs, the HSS stub's answers:
the same in both versions), so a saving reads smaller here than in the role itself.

``--vs REV``: the same for a git revision of this checkout (a temporary worktree), run
alongside, and the ratio. Hash seeds and the identities drawn are fixed; what is left
varies by about 0.3% between runs (SQLite's and the allocator's paths). callgrind counts
instructions, not time: cache misses and system calls are not in it; bench/gateway.py
measures those.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WINDOW = 128
BINDINGS, SUBSCRIBERS, IDENTITIES = 20_000, 10_000, 10_000
# fixes the identities relay_cx.py draws (its module-level ``random``), before it runs
_SEEDED = "import random, runpy, sys; random.seed(1); sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def build_stores(cache: Path) -> None:
    """The small stores relay_cx.py reads, made by bench/gateway.py's builders."""
    sys.path.insert(0, str(ROOT))
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_gateway", HERE / "gateway.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cache.mkdir(parents=True, exist_ok=True)
    module.cached(cache / f"partner-b{BINDINGS}.sqlite", module.build_partner_sqlite, BINDINGS)
    module.cached(cache / f"primary-b{BINDINGS}-s{SUBSCRIBERS}.sqlite", module.build_primary_sqlite, BINDINGS, SUBSCRIBERS)


def instructions(tree: Path, role: str, reads: int, cache: Path) -> int:
    """Instructions of one whole run of relay_cx.py in ``tree`` (callgrind's total)."""
    with tempfile.TemporaryDirectory(prefix="cxgw-instructions-") as work:
        out = Path(work) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", _SEEDED,
            str(tree / "bench" / "relay_cx.py"), role, "--cache-dir", str(cache), "--bindings", str(BINDINGS),
            "--subscribers", str(SUBSCRIBERS), "--identities", str(IDENTITIES), "--window", str(WINDOW),
            "--reads", str(reads), "--rounds", "1",
        ]
        done = subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True,
                              text=True, check=False)
        if done.returncode:
            raise SystemExit(f"relay_cx.py {role} under callgrind failed in {tree}:\n{done.stderr[-1500:]}")
        found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if found is None:
            raise SystemExit(f"no instruction total in callgrind's output for {tree}")
        return int(found.group(1))


def per_pair(tree: Path, role: str, reads: tuple[int, int], cache: Path) -> float:
    few, many = (instructions(tree, role, n, cache) for n in reads)
    return (many - few) / ((reads[1] - reads[0]) * WINDOW)


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """``revision`` of this checkout in a temporary worktree."""
    path = Path(tempfile.mkdtemp(prefix="cxgw-instructions-tree-"))
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(path), revision], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False, capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("partner", "primary"))
    parser.add_argument("--vs", metavar="REV", help="also a git revision of this checkout, and the ratio")
    parser.add_argument("--reads", type=int, nargs=2, default=(4, 20), help="the two numbers of reads of 128 MARs")
    parser.add_argument("--cache-dir", default="/tmp/cxgw-bench-small")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    cache = Path(args.cache_dir)
    build_stores(cache)
    reads = tuple(args.reads)
    with contextlib.ExitStack() as stack:
        trees = {"this checkout": ROOT}
        if args.vs:
            trees[args.vs] = stack.enter_context(worktree(args.vs))
        with concurrent.futures.ThreadPoolExecutor(len(trees)) as pool:  # (one valgrind per core)
            counts = dict(zip(trees, pool.map(lambda tree: per_pair(tree, args.role, reads, cache), trees.values()), strict=True))
    for name, count in counts.items():
        print(f"{args.role} ({name}): {count:,.0f} instructions per MAR/MAA pair")
    if args.vs:
        print(f"this checkout / {args.vs}: {counts['this checkout'] / counts[args.vs]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
