"""Relay benchmark: pairs/s, latency and relay CPU per pair, in one run.

    python bench/relay.py [--seconds 3] [--repeat 3] [--rate 5000] [--skip-freediameter] [--floor] [--capture]

Paths measured (the client and the answering peer are bench/relay_roles.py):
  direct         client -> server
  null           client -> Twisted null forwarder (frames and copies bytes) -> server
  cxgw           client -> this project's DiameterNode as a relay -> server
  freeDiameter   client -> freeDiameterd 1.2.1 relaying by realm -> server
  asyncio floor  (--floor) client -> a null forwarder on bare asyncio sockets, no Twisted
                 -> server: what the loop and the kernel cost per pair, below any relay
  capture        (--capture) the cxgw relay recording every message to a temporary pcap
                 file (captures.recorder, as [capture] does)

For each path: closed-loop pairs/s with 1, 16 and 128 requests outstanding on one
connection (median of --repeat runs, the paths interleaved run by run so that drifts in
the machine's speed hit them alike), the relay process's CPU time per pair (utime +
stime from /proc, sampled when the client starts and stops measuring), and open-loop
latency p50/p99 at --rate requests/s (medians of --repeat runs, interleaved as well).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
# this checkout's packages ahead of this folder, whose gateway.py would shadow the package
sys.path.insert(0, os.path.dirname(HERE))
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


def client(port: int, relay_pid: int | None, *args: str) -> tuple[dict, float | None]:
    """Run one client; returns its result and the relay's CPU seconds inside the
    client's measuring window (sampled when it prints its start and stop lines)."""
    process = subprocess.Popen(
        [sys.executable, ROLES, "client", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    cpu_start = cpu_stop = None
    result = None
    for line in process.stdout:  # type: ignore[union-attr]
        fields = json.loads(line)
        if fields.get("phase") == "start" and relay_pid:
            cpu_start = cpu_seconds(relay_pid)
        elif fields.get("phase") == "stop" and relay_pid:
            cpu_stop = cpu_seconds(relay_pid)
        elif "pairs" in fields:
            result = fields
    process.wait(120)
    if process.returncode or result is None:
        raise RuntimeError(f"client failed: {process.stderr.read()[-800:]}")  # type: ignore[union-attr]
    cpu = cpu_stop - cpu_start if cpu_start is not None and cpu_stop is not None else None
    return result, cpu


def measure_all(
    paths: dict[str, dict], seconds: float, repeat: int, rate: float, verbose: bool = False
) -> dict[str, dict]:
    """Closed-loop runs interleaved path by path (the machine's speed drifts; each
    comparison is made of neighbouring runs), then one open-loop latency run per path."""
    runs: dict[str, dict[int, list[tuple[float, float | None]]]] = {name: {w: [] for w in WINDOWS} for name in paths}
    for _ in range(repeat):
        for window in WINDOWS:
            for name, info in paths.items():
                result, cpu = client(info["port"], info.get("pid"), "--window", str(window), "--seconds", str(seconds))
                if result["errors"]:
                    raise RuntimeError(f"{name}: {result['errors']} error answers at window {window}; misconfigured")
                per_pair = cpu / result["pairs"] * 1e6 if cpu is not None and result["pairs"] else None
                runs[name][window].append((result["rate"], per_pair))
                if verbose:
                    cpu_text = f", {per_pair:.1f} us/pair" if per_pair is not None else ""
                    print(f"  {name:20} w={window:<4} {result['rate']:>9,.0f} pairs/s{cpu_text}", file=sys.stderr)
    latencies: dict[str, list[dict]] = {name: [] for name in paths}
    for _ in range(repeat):  # open loop, interleaved too: one stall of the machine moves one run's p99
        for name, info in paths.items():
            latency, _ = client(info["port"], None, "--rate", str(rate), "--seconds", str(seconds))
            latencies[name].append(latency)
            if verbose:
                print(f"  {name:20} {rate:g}/s p50 {latency['p50_us']:.0f} us, p99 {latency['p99_us']:.0f} us", file=sys.stderr)
    results: dict[str, dict] = {}
    for name in paths:
        summary: dict = {}
        for window in WINDOWS:
            rates = [rate_ for rate_, _ in runs[name][window]]
            cpus = [cpu for _, cpu in runs[name][window] if cpu is not None]
            summary[window] = (statistics.median(rates), statistics.median(cpus) if cpus else None)
        summary["latency"] = tuple(
            statistics.median(run[key] for run in latencies[name]) for key in ("p50_us", "p99_us", "lost")
        )
        results[name] = summary
    return results


def freediameter_relay(upstream: int) -> contextlib.AbstractContextManager[dict]:
    from gateway.testing.freediameter import bench_relay

    return bench_relay(upstream)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--skip-freediameter", action="store_true")
    parser.add_argument("--floor", action="store_true", help="also measure the bare asyncio forwarder")
    parser.add_argument("--verbose", action="store_true", help="print every run on stderr")
    parser.add_argument("--capture", action="store_true",
                        help="also measure the cxgw relay recording every message ([capture], to a temporary file)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(role("server"))
        upstream = str(server["port"])
        paths: dict[str, dict] = {"direct": {"port": server["port"]}}
        paths["null forwarder"] = stack.enter_context(role("null", "--upstream", upstream))
        if args.floor:
            paths["asyncio floor"] = stack.enter_context(role("floor", "--upstream", upstream))
        paths["cxgw relay"] = stack.enter_context(role("node", "--upstream", upstream))
        if args.capture:
            directory = stack.enter_context(tempfile.TemporaryDirectory())
            paths["cxgw relay + capture"] = stack.enter_context(
                role("node", "--upstream", upstream, "--capture", os.path.join(directory, "relay.pcap"))
            )
        if not args.skip_freediameter:
            paths["freeDiameter relay"] = stack.enter_context(freediameter_relay(server["port"]))
        results = measure_all(paths, args.seconds, args.repeat, args.rate, args.verbose)
    print_table(results, args)
    return 0


def _ratio(value: float, reference: float, spec: str) -> str:
    return format(value / reference, spec) if reference else "-"


def print_table(results: dict[str, dict], args: argparse.Namespace) -> None:
    print(f"pairs/s (median of {args.repeat} x {args.seconds:g} s), relay CPU us/pair, latency at {args.rate:g} req/s (medians)")
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
            line = f"w={window}: cxgw/null {_ratio(ours[window][0], null[window][0], '.0%')}"
            if fd:
                line += f", cxgw/freeDiameter {_ratio(ours[window][0], fd[window][0], '.1f')}x"
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
