"""Long-run adversarial fuzzing of a live DiameterNode over loopback (gateway.testing.fuzz).

    python bench/fuzz_node.py --seconds 600 --seed 7 --path both

Batches of mutated Cx request streams (cut into TCP writes at random points) go from a
client that did its CER/CEA to the node, which relays them to two upstream servers that
answer correctly, late, twice, never, mutated, with unknown hop-by-hop ids, or break their
own framing; plus broken-framing streams and mutated CERs. After every batch the
invariants of gateway.testing.fuzz are checked (exactly one answer per request, RFC 6733
§6.2; strictly valid generated answers with the E bit iff 3xxx, §7.1; nothing left pending;
limits held; the node alive; nothing logged at error level; best-effort answer and close on
broken framing, §3/§7). Runs batches until --seconds is up, on the fast path (the relay's
hot loop), the general path (metrics on: every read through receive_general) or both;
prints inputs/s and the findings with the seed and batch that reproduce each, and exits 1
if there were any. tests/gateway/test_fuzz_node.py runs the same, bounded, in CI.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.runner import install_reactor  # noqa: E402

install_reactor()  # the reactor and loop the node runs on in production and in the tests

from twisted.internet import defer, task  # noqa: E402

from gateway.testing.fuzz import Finding, NodeUnderFuzz, describe  # noqa: E402


@defer.inlineCallbacks
def fuzz_path(path: str, seed: int, seconds: float, verbose: bool) -> defer.Deferred:
    fuzz = NodeUnderFuzz(path, seed=seed)
    findings: list[Finding] = []
    started = time.monotonic()
    yield fuzz.start()
    batch = 0
    try:
        while time.monotonic() - started < seconds:
            found = yield fuzz.run_batch(batch)
            findings += found
            if verbose or found:
                kinds = sorted({f.kind for f in found})
                print(f"{path} batch {batch} ({fuzz.last_kind}): {len(found)} finding(s) {kinds}", flush=True)
            batch += 1
    finally:
        yield fuzz.stop()
    elapsed = time.monotonic() - started
    print(f"{path}: {batch} batches, {fuzz.inputs} inputs in {elapsed:.1f} s = {fuzz.inputs / elapsed:.0f} inputs/s, "
          f"{len(findings)} finding(s)", flush=True)
    return findings


@defer.inlineCallbacks
def main(reactor: object, args: argparse.Namespace) -> defer.Deferred:
    paths = ["fast", "general"] if args.path == "both" else [args.path]
    findings: list[Finding] = []
    for path in paths:
        found = yield fuzz_path(path, args.seed, args.seconds / len(paths), args.verbose)
        findings += found
    if findings:
        print()
        print(describe(findings))
        print(f"\nreproduce one batch: NodeUnderFuzz(path, seed={args.seed}).run_batch(batch) "
              f"(the stream cuts are seeded; how the node's reads fall is up to the kernel)")
        raise SystemExit(1)
    print("no findings")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="total running time (split between paths)")
    parser.add_argument("--seed", type=int, default=1, help="the run's seed: batch n uses seed * 1000003 + n")
    parser.add_argument("--path", choices=["fast", "general", "both"], default="both")
    parser.add_argument("--verbose", "-v", action="store_true", help="a line per batch, with or without findings")
    return parser.parse_args(argv)


if __name__ == "__main__":
    task.react(main, (parse_args(),))
