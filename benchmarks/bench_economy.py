"""Wall time of the default economy (``margin economy run`` on the built-in workload).

Prints one JSON object: wall seconds of the full run (siloed, shared and the four
one-layer swaps), of the two main regimes alone, the number of model calls simulated,
records written, the welfare figures and the prefix cache's figures per regime (policy,
evictions, hit rates overall, of the agent calls and by V tier, model spend saved), so
speed and results are tracked together.
"""

from __future__ import annotations

import json
import platform
import time

from margin.economy import EconomyConfig, run_economy
from margin.ledger.records import LedgerRecord


def main() -> None:
    cfg = EconomyConfig()
    siloed: list[LedgerRecord] = []
    shared: list[LedgerRecord] = []
    t0 = time.perf_counter()
    full = run_economy(cfg, sink_siloed=siloed, sink_shared=shared)
    t_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_economy(cfg, attribute=False)
    t_main = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "benchmark": "economy_default",
                "python": platform.python_version(),
                "n_coding": cfg.n_coding,
                "horizon_s": cfg.horizon_s,
                "wall_s_full": round(t_full, 3),
                "wall_s_two_regimes": round(t_main, 3),
                "calls_siloed": full.siloed.calls,
                "calls_shared": full.shared.calls,
                "records": len(siloed) + len(shared),
                "welfare_siloed": round(full.siloed.total.welfare, 2),
                "welfare_shared": round(full.shared.total.welfare, 2),
                "attribution": {k: round(v, 2) for k, v in full.attribution.items()},
                "cache": {
                    name: {
                        k: (
                            {t: round(x, 4) for t, x in v.items()}
                            if isinstance(v, dict)
                            else (round(v, 4) if isinstance(v, float) else v)
                        )
                        for k, v in res.cache.items()
                    }
                    for name, res in (("siloed", full.siloed), ("shared", full.shared))
                },
            }
        )
    )


if __name__ == "__main__":
    main()
