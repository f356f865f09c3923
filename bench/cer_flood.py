"""A good client's relay throughput while hostile peers send 64 KiB CERs, in one run.

    python bench/cer_flood.py [--seconds 3] [--repeat 3] [--window 16] [--flooders 4]

The node relays (bench/relay_roles.py node) for a client at --window requests
outstanding; runs without flood and with --flooders connections that each send a CER of
--cer-size bytes from an unknown host, read the answer or the close, and start again.
Two node set-ups: the shipped limits (limits.max_cer_size = 8192: the CER is refused by
its length before any of it is decoded) and max_cer_size = 65536 (the whole CER is
decoded before the 3010 verdict: what linear decoding alone buys). The runs are
interleaved; medians are printed, with the undisturbed figure of the same set-up as the
reference (the goal: within 20% of it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from relay import ROLES, client, role  # noqa: E402


@contextlib.contextmanager
def flood(port: int, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    process = subprocess.Popen(
        [sys.executable, ROLES, "flood", "--port", str(port), "--connections", str(args.flooders),
         "--cer-size", str(args.cer_size), "--seconds", str(args.seconds + 5)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        json.loads(process.stdout.readline())  # type: ignore[union-attr]
        yield process
    finally:
        process.terminate()
        process.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--flooders", type=int, default=4)
    parser.add_argument("--cer-size", type=int, default=65536)
    args = parser.parse_args()
    setups = {"shipped limits (max_cer_size 8192)": [], "max_cer_size 65536": ["--max-cer-size", "65536"]}
    rates: dict[tuple[str, bool], list[float]] = {(name, flooded): [] for name in setups for flooded in (False, True)}
    with role("server") as server:
        for _ in range(args.repeat):
            for name, options in setups.items():
                with role("node", "--upstream", str(server["port"]), *options) as node:
                    for flooded in (False, True):
                        with flood(node["port"], args) if flooded else contextlib.nullcontext():
                            result, _ = client(node["port"], None, "--window", str(args.window),
                                               "--seconds", str(args.seconds))
                        if result["errors"]:
                            raise RuntimeError(f"{name}: {result['errors']} error answers to the good client")
                        rates[name, flooded].append(result["rate"])
    print(f"good client at window {args.window}, {args.flooders} flooders sending {args.cer_size}-byte CERs; "
          f"medians of {args.repeat}")
    print(f"{'set-up':38} {'undisturbed':>12} {'flooded':>12} {'flooded/undisturbed':>20}")
    for name in setups:
        calm, flooded = statistics.median(rates[name, False]), statistics.median(rates[name, True])
        print(f"{name:38} {calm:>12,.0f} {flooded:>12,.0f} {flooded / calm:>20.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
