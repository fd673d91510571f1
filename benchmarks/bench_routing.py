"""Routing benchmarks: Eq. 4 decision latency per prompt (featurization included) and batch
throughput of the fitted :class:`margin.routing.MarginalRouter`. Prints one JSON object.

Trains on the RouterBench-format tables in ../shared/data/routing/routerbench (70% of each
task, seed 0) when present, else on a synthetic table; routes the held-out prompts.

Usage: python benchmarks/bench_routing.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(
    os.environ.get("MARGIN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def load() -> tuple[Any, Any, str]:
    from margin.routing.data import (
        RoutingDataset,
        concat_datasets,
        load_routerbench,
        train_test_split,
    )

    files = sorted((DATA / "routing" / "routerbench").glob("*_train.csv"))
    if files:
        data = concat_datasets([load_routerbench(f) for f in files])
        source = "RouterBench (withmartian/routerbench via RouterDC), 3 train files"
    else:
        rng = np.random.default_rng(0)
        n = 2000
        words = [f"w{k}" for k in range(3000)]
        prompts = [" ".join(rng.choice(words, 200)) for _ in range(n)]
        q = (rng.random((n, 5)) < np.linspace(0.5, 0.9, 5)).astype(float)
        c = np.tile(np.linspace(1e-4, 5e-3, 5), (n, 1))
        data = RoutingDataset.from_arrays(prompts, [f"m{j}" for j in range(5)], q, c)
        source = "synthetic (shared data absent)"
    train, test = train_test_split(data, 0.3, seed=0)
    return train, test, source


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer single-prompt timings")
    args = ap.parse_args()
    from margin.routing.router import MarginalRouter

    train, test, source = load()
    t0 = time.perf_counter()
    router = MarginalRouter().fit(train)
    fit_s = time.perf_counter() - t0

    prompts, tasks = list(test.prompts), list(test.tasks)
    k = min(len(prompts), 200 if args.quick else 1000)
    for i in range(20):  # warm-up
        router.choose([prompts[i % len(prompts)]], 1.0, tasks=[tasks[i % len(tasks)]])
    lat = np.empty(k)
    for i in range(k):
        p, t = [prompts[i]], [tasks[i]]
        t1 = time.perf_counter()
        router.choose(p, 1.0, tasks=t)
        lat[i] = time.perf_counter() - t1

    reps = 3 if args.quick else 10
    batch = prompts * max(1, 5000 // len(prompts))
    btasks = tasks * max(1, 5000 // len(tasks))
    values = np.geomspace(1e-3, 10.0, len(batch))
    best = np.inf
    for _ in range(reps):
        t1 = time.perf_counter()
        router.choose(batch, values, tasks=btasks)
        best = min(best, time.perf_counter() - t1)

    print(
        json.dumps(
            {
                "benchmark": "routing",
                "data": source,
                "train_rows": train.n,
                "models": train.m,
                "fit_seconds": round(fit_s, 3),
                "single_prompt_ms": {
                    "n": k,
                    "p50": round(float(np.percentile(lat, 50)) * 1e3, 4),
                    "p99": round(float(np.percentile(lat, 99)) * 1e3, 4),
                    "mean_prompt_chars": round(float(np.mean([len(p) for p in prompts[:k]])), 1),
                },
                "batch": {
                    "prompts": len(batch),
                    "seconds": round(float(best), 4),
                    "prompts_per_second": round(len(batch) / float(best), 1),
                },
                "targets": {"p50_ms": 1.0, "prompts_per_second": 5000},
                "python": sys.version.split()[0],
                "machine": platform.machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
