"""Relay benchmark: pairs/s, latency and relay CPU per pair, in one run.

    python bench/relay.py [--seconds 3] [--repeat 3] [--rate 5000] [--skip-freediameter]

Paths measured (the client and the answering peer are bench/relay_roles.py):
  direct         client -> server
  null           client -> Twisted null forwarder (frames and copies bytes) -> server
  cxgw           client -> this project's DiameterNode as a relay -> server
  freeDiameter   client -> freeDiameterd 1.2.1 relaying by realm -> server

For each path: closed-loop pairs/s with 1, 16 and 128 requests outstanding on one
connection (median of --repeat runs), the relay process's CPU time per pair (utime +
stime from /proc over the measured window), and open-loop latency p50/p99 at --rate
requests/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
ROLES = os.path.join(HERE, "relay_roles.py")
TICKS = os.sysconf("SC_CLK_TCK")
WINDOWS = (1, 16, 128)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (proc(5) fields 14, 15)


@contextlib.contextmanager
def role(*args: str) -> Iterator[dict]:
    process = subprocess.Popen(
        [sys.executable, ROLES, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"bench role {args[0]} exited before it was ready")
        info = json.loads(line)
        info.setdefault("pid", process.pid)
        yield info
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def client(port: int, *args: str) -> dict:
    output = subprocess.run(
        [sys.executable, ROLES, "client", "--port", str(port), *args], capture_output=True, text=True, timeout=120
    )
    if output.returncode or not output.stdout.strip():
        raise RuntimeError(f"client failed: {output.stderr[-800:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def measure(port: int, relay_pid: int | None, seconds: float, repeat: int, rate: float) -> dict:
    result: dict = {}
    for window in WINDOWS:
        rates, cpu = [], []
        for _ in range(repeat):
            before = cpu_seconds(relay_pid) if relay_pid else 0.0
            run = client(port, "--window", str(window), "--seconds", str(seconds))
            if run["errors"]:
                raise RuntimeError(f"port {port}: {run['errors']} error answers at window {window}; the path is misconfigured")
            after = cpu_seconds(relay_pid) if relay_pid else 0.0
            rates.append(run["rate"])
            if relay_pid and run["pairs"]:
                # includes warm-up and connection set-up: a slight overestimate
                cpu.append((after - before) / (run["pairs"] * (1 + 0.5 / seconds)) * 1e6)
        result[window] = (statistics.median(rates), statistics.median(cpu) if cpu else None)
    latency = client(port, "--rate", str(rate), "--seconds", str(seconds))
    result["latency"] = (latency["p50_us"], latency["p99_us"], latency["lost"])
    return result


def freediameter_relay(upstream: int) -> contextlib.AbstractContextManager[dict]:
    from gateway.interop.freediameter import bench_relay

    return bench_relay(upstream)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--skip-freediameter", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with role("server") as server:
        upstream = str(server["port"])
        results["direct"] = measure(server["port"], None, args.seconds, args.repeat, args.rate)
        with role("null", "--upstream", upstream) as null:
            results["null forwarder"] = measure(null["port"], null["pid"], args.seconds, args.repeat, args.rate)
        with role("node", "--upstream", upstream) as node:
            results["cxgw relay"] = measure(node["port"], node["pid"], args.seconds, args.repeat, args.rate)
        if not args.skip_freediameter:
            with freediameter_relay(server["port"]) as fd:
                results["freeDiameter relay"] = measure(fd["port"], fd["pid"], args.seconds, args.repeat, args.rate)
    print_table(results, args)
    return 0


def print_table(results: dict[str, dict], args: argparse.Namespace) -> None:
    print(f"pairs/s (median of {args.repeat} x {args.seconds:g} s), relay CPU us/pair, latency at {args.rate:g} req/s")
    header = ["path"] + [f"w={w} pairs/s" for w in WINDOWS] + [f"w={w} cpu" for w in WINDOWS] + ["p50 us", "p99 us"]
    rows = []
    for name, result in results.items():
        row = [name]
        row += [f"{result[w][0]:,.0f}" for w in WINDOWS]
        row += [f"{result[w][1]:.1f}" if result[w][1] is not None else "-" for w in WINDOWS]
        p50, p99, lost = result["latency"]
        row += [f"{p50:.0f}" if p50 else "-", f"{p99:.0f}" if p99 else "-"]
        rows.append(row)
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, ["-" * w for w in widths], *rows):
        print("  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths, strict=True))))
    null, ours = results.get("null forwarder"), results.get("cxgw relay")
    fd = results.get("freeDiameter relay")
    direct = results.get("direct")
    if null and ours:
        print()
        for window in WINDOWS:
            line = f"w={window}: cxgw/null {ours[window][0] / null[window][0]:.0%}"
            if fd:
                line += f", cxgw/freeDiameter {ours[window][0] / fd[window][0]:.1f}x"
            print(line)
        if direct:
            added = ours["latency"][1] - direct["latency"][1]
            print(f"added p99 latency at {args.rate:g} req/s: {added:.0f} us (goal < 1000)")
            print(f"cxgw CPU per pair at w=16/128: {ours[16][1]:.1f}/{ours[128][1]:.1f} us (goal <= 10)")


if __name__ == "__main__":
    started = time.time()
    status = main()
    print(f"\n(bench took {time.time() - started:.0f} s)")
    sys.exit(status)
