from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from margin.capital.trace import MooncakeTrace, ValueModel, load_mooncake
from margin.core.prices import InputError


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def _row(t: int, blocks: list[int], inp: int | None = None) -> dict[str, object]:
    return {
        "timestamp": t,
        "input_length": inp if inp is not None else 512 * len(blocks),
        "output_length": 10,
        "hash_ids": blocks,
    }


def test_load_small_trace(tmp_path: Path) -> None:
    p = _write(tmp_path / "t.jsonl", [_row(0, [1, 2], 700), "", _row(5, [1, 2, 3], 1100)])
    t = load_mooncake(p)
    assert t.n_requests == 2
    assert t.offsets.tolist() == [0, 2, 5]
    assert t.block_ids.tolist() == [1, 2, 1, 2, 3]
    assert t.block_tokens.tolist() == [512, 188, 512, 512, 76]
    assert int(t.block_tokens.sum()) == 1800


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        ("[1, 2]", "line 2: expected a JSON object"),
        (
            json.dumps({"timestamp": 1, "output_length": 1, "hash_ids": [1]}),
            "line 2: missing field 'input_length'",
        ),
        (json.dumps(_row(1, [1, -2])), "line 2: field 'hash_ids'"),
        (json.dumps({**_row(1, [1]), "input_length": "x"}), "line 2: field 'input_length'"),
        (json.dumps(_row(1, [1, 2], 100)), "line 2: field 'hash_ids' has 2 blocks"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    p = _write(tmp_path / "bad.jsonl", [_row(0, [1]), bad])
    with pytest.raises(InputError) as e:
        load_mooncake(p)
    assert message in str(e.value)
    assert "bad.jsonl" in str(e.value)


def test_decreasing_timestamp_and_missing_file(tmp_path: Path) -> None:
    p = _write(tmp_path / "t.jsonl", [_row(5, [1]), _row(2, [1])])
    with pytest.raises(InputError, match="line 2: field 'timestamp' decreases"):
        load_mooncake(p)
    with pytest.raises(InputError, match="does not exist"):
        load_mooncake(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="holds no requests"):
        load_mooncake(tmp_path / "empty.jsonl")


def test_value_model_is_deterministic_per_conversation() -> None:
    # block 0 is a shared system prompt; conversations start at blocks 10, 20, 30
    reqs = [[0, 10, 11], [0, 20], [0, 10, 11, 12], [0, 30], [0, 20, 21]] * 10
    t = MooncakeTrace.from_requests(reqs)
    vm = ValueModel(shared_fraction=0.5)
    keys = vm.conversation_keys(t)
    assert keys[:5].tolist() == [10, 20, 10, 30, 20]
    a, b = vm.attach(t), vm.attach(t)
    assert np.array_equal(a.value, b.value)
    assert a.value[0] == a.value[2] and a.tenant[1] == a.tenant[4]
    assert np.all(a.value > 0)
    other = ValueModel(shared_fraction=0.5, seed=7).attach(t)
    assert not np.array_equal(a.value, other.value)


def test_value_model_median_matches_tenant_medians() -> None:
    reqs = [[i] for i in range(40_000)]
    p = ValueModel(tenant_medians=(2.0,), tenant_names=("only",), sigma=0.5).attach(
        MooncakeTrace.from_requests(reqs)
    )
    assert abs(float(np.median(p.value)) - 2.0) < 0.05
    assert abs(float(np.std(np.log(p.value))) - 0.5) < 0.01


def test_value_model_validation() -> None:
    with pytest.raises(InputError, match="tenant_medians"):
        ValueModel(tenant_medians=(1.0, -1.0), tenant_names=("a", "b"))
    with pytest.raises(InputError, match="differ in length"):
        ValueModel(tenant_medians=(1.0,))
