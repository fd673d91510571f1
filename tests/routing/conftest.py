"""Small hand-built routing tables shared by the routing tests."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from margin.routing.data import RoutingDataset

MODELS = ("small", "medium", "large")
COST = {"small": 0.001, "medium": 0.004, "large": 0.02}


def synthetic(n: int = 120, seed: int = 0) -> RoutingDataset:
    """Prompts whose words reveal difficulty: 'easy' prompts are solved by every model,
    'hard' ones only by 'large' (and by 'medium' half of the time)."""
    rng = np.random.default_rng(seed)
    prompts, tasks, q = [], [], []
    for k in range(n):
        hard = k % 2 == 1
        topic = ("algebra", "geometry", "poetry", "history")[k % 4]
        prompts.append(f"{'hard tricky proof' if hard else 'easy simple sum'} about {topic} #{k}")
        tasks.append("math" if topic in ("algebra", "geometry") else "words")
        if hard:
            q.append([0.0, float(rng.random() < 0.5), 1.0])
        else:
            q.append([1.0, 1.0, 1.0])
    cost = np.tile([COST[m] for m in MODELS], (n, 1))
    return RoutingDataset.from_arrays(
        prompts, MODELS, q, cost, tasks=tasks, sample_ids=[f"s{k}" for k in range(n)]
    )


def write_routerbench(
    path: Path,
    data: RoutingDataset,
    *,
    models: Sequence[str] | None = None,
    blank: Sequence[tuple[int, str]] = (),
    value: Sequence[float | None] | None = None,
) -> Path:
    """Write ``data`` as a RouterBench CSV (columns per model in ``models`` order)."""
    names = list(models or data.models)
    header = ["", "sample_id", "prompt", "eval_name"]
    for m in names:
        header += [m, f"{m}|model_response", f"{m}|total_cost"]
    header.append("oracle_model_to_route_to")
    if value is not None:
        header.append("value")
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for k in range(data.n):
            row: list[object] = [k, data.sample_ids[k], data.prompts[k], data.tasks[k]]
            for m in names:
                j = data.models.index(m)
                qv: object = data.quality[k, j]
                if (k, m) in blank:
                    qv = ""
                row += [qv, f"answer of {m}", data.cost[k, j]]
            row.append(names[0])
            if value is not None:
                row.append("" if value[k] is None else value[k])
            w.writerow(row)
    return path


@pytest.fixture
def toy() -> RoutingDataset:
    return synthetic()


@pytest.fixture
def rb_csv(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "rb.csv", data: RoutingDataset | None = None, **kw: object) -> Path:
        return write_routerbench(tmp_path / name, data or synthetic(), **kw)  # type: ignore[arg-type]

    return make


@pytest.fixture
def synth() -> Callable[..., RoutingDataset]:
    """The :func:`synthetic` table builder (tests cannot import conftest directly)."""
    return synthetic
