"""Wall time of a small sweep on each backend (``margin sweep --backend ...``).

Grid: the engine doctest's tiny economy (6 coding tasks over 120 s) × ``--seeds`` seeds
(default 4) × the siloed and shared regimes = 8 jobs, agent regret off. Prints one JSON object: wall
seconds per backend (serial; a spawn process pool; a local Ray instance, start-up
included), the worker count, the per-job mean of the serial run, and whether every
backend gave the serial run's numbers exactly. Ray is skipped (null) when not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

from margin.economy.sweep import run_sweep

SPEC: dict[str, Any] = {
    "base": {
        "n_coding": 6,
        "horizon_s": 120.0,
        "interval_s": 60.0,
        "chat_rate": 0.2,
        "long_rate": 0.02,
    },
    "grid": {"seed": [0, 1, 2, 3]},
    "regimes": ["siloed", "shared"],
    "regret": False,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4, help="grid size: seeds (2 jobs each)")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    workers = args.workers
    spec = {**SPEC, "grid": {"seed": list(range(args.seeds))}}
    walls: dict[str, float | None] = {}
    tables = {}
    for backend in ("serial", "process", "ray"):
        if backend == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                walls[backend] = None
                continue
        t0 = time.perf_counter()
        tables[backend] = run_sweep(spec, backend=backend, workers=workers)
        walls[backend] = round(time.perf_counter() - t0, 3)
    ref = tables["serial"].drop_columns(["wall_s"])
    print(
        json.dumps(
            {
                "benchmark": "sweep_small_grid",
                "python": platform.python_version(),
                "workers": workers,
                "jobs": ref.num_rows,
                "wall_s": walls,
                "job_wall_s_mean_serial": round(
                    sum(tables["serial"]["wall_s"].to_pylist()) / ref.num_rows, 3
                ),
                "identical": {b: t.drop_columns(["wall_s"]).equals(ref) for b, t in tables.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
