"""SQN durability: kill -9 a process generating vectors (generate_vectors, a whole MAR:
multimedia_auth, or the MARs of one read: multimedia_auth_many), at any moment; no SQN is
ever issued twice.

Two child processes generate vectors for the same subscriber in a loop and write the SQN
of every vector they got to stdout as soon as the call returns ("handed out"). The test
SIGKILLs them mid-load at random points, then checks that the stored SQN is at or above
every SQN handed out and that new vectors continue above all of them. A negative control
(a child that holds its writes in a transaction) shows the check does catch lost writes.
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hss_store import open_store
from hss_store.records import Subscriber

IMPI = "ue@ims.example.net"
REPO = Path(__file__).resolve().parents[2]
CHILD = r"""
import os, random, sys
from hss_store import open_store
store = open_store(sys.argv[1])
mode = sys.argv[2]
if mode == "non-durable":  # negative control: writes sit in an open transaction
    store._conn.execute("BEGIN")
if mode == "checkpointed":  # as the gateway runs it: WAL checkpoints in a thread, very often
    store.checkpoint_in_background(0.002)
os.write(1, b"ready\n")
mar = sys.argv[4] == "multimedia_auth"
group = sys.argv[4] == "multimedia_auth_many"
while True:
    count = random.randint(1, 5)
    if group:  # the MARs of one read: one transaction (gateway/applications/hss_batch.py)
        mars = [(sys.argv[3], None, "Unknown", count, None, "sip:scscf.example", 5)] * random.randint(1, 4)
        vectors = [v for result in store.multimedia_auth_many(mars) for v in result.vectors]
    elif mar:
        vectors = store.multimedia_auth(sys.argv[3], None, "Unknown", count, server_name="sip:scscf.example").vectors
    else:
        vectors = store.generate_vectors(sys.argv[3], count)
    for vector in vectors:
        os.write(1, b"%d\n" % vector.sqn)
"""


def _spawn(target: str, mode: str, call: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, target, mode, IMPI, call], stdout=subprocess.PIPE, env=env, cwd=REPO
    )


def _load_and_kill(
    target: str, mode: str, children: int, rng: random.Random, call: str = "generate_vectors"
) -> list[int]:
    """Run the children, SIGKILL each after a random number of vectors; all SQNs handed out."""
    procs = [_spawn(target, mode, call) for _ in range(children)]
    kill_after = {p.pid: rng.randint(150, 600) for p in procs}
    seen: dict[int, list[int]] = {p.pid: [] for p in procs}
    buffers = {p.pid: b"" for p in procs}
    selector = selectors.DefaultSelector()
    for p in procs:
        selector.register(p.stdout, selectors.EVENT_READ, p)
    deadline = time.monotonic() + 120
    try:
        while selector.get_map():
            assert time.monotonic() < deadline, "children did not produce vectors in time"
            for key, _ in selector.select(timeout=1.0):
                proc = key.data
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:  # EOF: the child is dead and everything it wrote is read
                    selector.unregister(key.fileobj)
                    continue
                lines = (buffers[proc.pid] + chunk).split(b"\n")
                buffers[proc.pid] = lines.pop()
                seen[proc.pid] += [int(x) for x in lines if x and x != b"ready"]
                if len(seen[proc.pid]) >= kill_after[proc.pid] and proc.returncode is None:
                    os.kill(proc.pid, signal.SIGKILL)  # mid-load: it is generating right now
                    proc.returncode = -9
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stdout.close()
    assert all(p.returncode == -signal.SIGKILL for p in procs)
    return [sqn for pid in seen for sqn in seen[pid]]


@pytest.fixture
def target(backend, tmp_path, request) -> str:
    if backend == "sqlite":
        return str(tmp_path / "hss.db")
    return request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("call", ["generate_vectors", "multimedia_auth", "multimedia_auth_many"])
def test_kill_9_never_reissues_a_sqn(target, call):
    _never_reissued(target, call, "durable")


def test_kill_9_with_background_checkpoints(tmp_path):
    """The gateway's SQLite set-up (hss_store.checkpoint): a kill -9 may land mid-checkpoint."""
    _never_reissued(str(tmp_path / "hss.db"), "multimedia_auth_many", "checkpointed")


def _never_reissued(target: str, call: str, mode: str) -> None:
    with open_store(target) as store:
        store.add_subscriber(Subscriber.new(IMPI, [f"sip:{IMPI}"], bytes(16), opc=bytes(16)))
    rng = random.Random()
    handed_out: list[int] = []
    for _ in range(3):
        handed_out += _load_and_kill(target, mode, children=2, rng=rng, call=call)
        assert len(handed_out) == len(set(handed_out)), "a SQN was handed out twice"
        with open_store(target) as store:
            stored = store.get_subscriber(IMPI).sqn
            assert stored >= max(handed_out), "a handed-out SQN was not committed before it left"
            after = [v.sqn for v in store.generate_vectors(IMPI, 5)]
            assert min(after) > max(handed_out)
            handed_out += after


def test_negative_control_detects_uncommitted_sqns(tmp_path):
    """The same check fails for a store whose SQN writes are not committed before hand-out."""
    target = str(tmp_path / "hss.db")
    with open_store(target) as store:
        store.add_subscriber(Subscriber.new(IMPI, [f"sip:{IMPI}"], bytes(16), opc=bytes(16)))
    handed_out = _load_and_kill(target, "non-durable", children=1, rng=random.Random(1))
    with open_store(target) as store:
        assert store.get_subscriber(IMPI).sqn < max(handed_out)
