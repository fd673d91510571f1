"""Several writer processes, and a writer SIGKILLed in the middle of a batch."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from margin.ledger.store import Ledger

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

_PRELUDE = """
import sys, time
from margin.core.prices import Option, PriceVector
from margin.ledger.records import LedgerRecord, TokenUsage
from margin.ledger.store import Ledger

def rec(tag, i):
    return LedgerRecord(f"{tag}-req-{i}", "serving", "decode", (Option("decode", 0.5, 1e-4),),
                        PriceVector(1.0, latency_price=0.2), tenant=tag,
                        usage=TokenUsage(input=i, output=1), cost_nanos=1000 + i,
                        record_id=f"{tag}-{i}")
"""

_WRITER = (
    _PRELUDE
    + """
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Ledger(path, timeout=60) as led:
    for i in range(n // 2):              # half as single appends...
        led.append(rec(tag, i))
    for start in range(n // 2, n, 25):   # ...half as small batches
        led.extend(rec(tag, i) for i in range(start, min(start + 25, n)))
"""
)

_KILLED_MID_BATCH = (
    _PRELUDE
    + """
path = sys.argv[1]
with Ledger(path) as led:
    led.extend(rec("before", i) for i in range(10))
    def batch():
        for i in range(20000):
            if i == 15000:
                print("ready", flush=True)   # 15000 rows written, transaction still open
                time.sleep(120)
            yield rec("doomed", i)
    led.extend(batch())
"""
)

_KILLED_ANYWHERE = (
    _PRELUDE
    + """
path = sys.argv[1]
with Ledger(path) as led:
    print("ready", flush=True)
    b = 0
    while True:
        led.extend(rec(f"b{b}", i) for i in range(2000))
        b += 1
"""
)


def _spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _integrity(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def test_four_writer_processes_all_land(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    Ledger(path).close()
    n = 300
    procs = [_spawn(_WRITER, str(path), f"w{k}", str(n)) for k in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with Ledger(path) as led:
        assert len(led) == 4 * n
        s = led.summary()
        assert s["by_tenant"] == {f"w{k}": n for k in range(4)}
        assert s["cost_nanos"] == 4 * sum(1000 + i for i in range(n))
        for k in range(4):  # each writer's records are all there, in its own order
            ids = [r.record_id for r in led.records(tenant=f"w{k}")]
            assert ids == [f"w{k}-{i}" for i in range(n)]
    assert _integrity(path) == "ok"


def test_sigkill_mid_batch_leaves_no_partial_batch(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    p = _spawn(_KILLED_MID_BATCH, str(path))
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line.strip() == "ready", p.stderr.read() if p.stderr else ""
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    assert _integrity(path) == "ok"
    with Ledger(path) as led:
        assert len(led) == 10  # the committed batch survives, the doomed one is absent
        assert {r.tenant for r in led.records()} == {"before"}
        led.append(replace(next(led.records()), record_id="after-kill"))
        assert len(led) == 11  # the file is writable again


def test_sigkill_at_a_random_moment_keeps_whole_batches(tmp_path: Path) -> None:
    path = tmp_path / "random.db"
    p = _spawn(_KILLED_ANYWHERE, str(path))
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert _integrity(path) == "ok"
    with Ledger(path) as led:
        n = len(led)
        per_batch = led.summary()["by_tenant"]
    assert n > 0 and n % 2000 == 0
    assert set(per_batch.values()) == {2000}
