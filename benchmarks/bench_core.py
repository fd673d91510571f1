"""Core benchmarks: Eq. 1 throughput, LP price discovery, ledger inserts. Prints one JSON object.

Usage: python benchmarks/bench_core.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_allocation(n: int, m: int, repeat: int) -> dict[str, Any]:
    from margin.core.allocation import allocate_batch

    rng = np.random.default_rng(0)
    v = rng.lognormal(1.0, 1.5, n)
    q, c, lat, r = (rng.random((n, m)) for _ in range(4))
    lam = rng.random(n)
    secs = best_of(
        lambda: allocate_batch(v, q, c, lat, r, latency_price=lam, risk_price=3.0), repeat
    )
    return {
        "requests": n,
        "options": m,
        "seconds": round(secs, 4),
        "option_evaluations_per_s": round(n * m / secs),
        "target_per_s": 50_000_000,
    }


def bench_discovery(n: int, m: int) -> dict[str, Any]:
    """LP price discovery (Eq. 3) with all three budgets binding."""
    from margin.core.discovery import Budgets, TaskBatch, discover_prices

    rng = np.random.default_rng(0)
    tier = np.linspace(0.0, 1.0, m)[None, :]
    batch = TaskBatch.from_arrays(
        rng.lognormal(np.log(20.0), 0.8, n),
        0.4 + 0.5 * tier + rng.normal(0, 0.05, (n, m)),
        (0.2 + 4.0 * tier**2) * rng.lognormal(0, 0.2, (n, m)),
        (0.5 + 3.0 * tier) * rng.lognormal(0, 0.2, (n, m)),
        (0.05 * (1 - tier) + 0.005) * rng.lognormal(0, 0.3, (n, m)),
    )
    free = discover_prices(batch).usage
    budgets = Budgets(
        cost=0.7 * free["cost"], latency=0.6 * free["latency"], risk=0.5 * free["risk"]
    )
    t0 = time.perf_counter()
    res = discover_prices(batch, budgets)
    secs = time.perf_counter() - t0
    return {
        "tasks": n,
        "options": m,
        "seconds": round(secs, 3),
        "mu": {"cost": res.mu_cost, "latency": res.mu_latency, "risk": res.mu_risk},
    }


def bench_ledger(n: int) -> dict[str, Any]:
    from margin.core.prices import Option, PriceVector
    from margin.ledger.records import LedgerRecord, TokenUsage
    from margin.ledger.store import Ledger

    opts = (Option("cheap", 0.7, 0.001), Option("frontier", 0.9, 0.005))
    prices = PriceVector(10.0, 0.01, 5.0)
    recs = [
        LedgerRecord(
            request_id=f"r{k}",
            layer="routing",
            choice="cheap",
            options=opts,
            prices=prices,
            usage=TokenUsage(input=1000, output=200),
            cost_nanos=1_000_000,
        )
        for k in range(n)
    ]
    with tempfile.TemporaryDirectory() as d:
        with Ledger(os.path.join(d, "a.db")) as led:
            t0 = time.perf_counter()
            for k in range(0, n, 1000):
                led.extend(recs[k : k + 1000])
            batch = n / (time.perf_counter() - t0)
        with Ledger(os.path.join(d, "b.db")) as led:
            single_n = min(n, 2000)
            t0 = time.perf_counter()
            for rec in recs[:single_n]:
                led.append(rec)
            single = single_n / (time.perf_counter() - t0)
    return {"records": n, "batched_1000_per_s": round(batch), "single_append_per_s": round(single)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    a = ap.parse_args()
    n_alloc, n_lp, n_led = (10_000, 500, 2_000) if a.quick else (1_000_000, 10_000, 50_000)
    out = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "allocation_eq1": bench_allocation(n_alloc, 8, repeat=5),
        "price_discovery_lp": bench_discovery(n_lp, 8),
        "ledger_inserts": bench_ledger(n_led),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
