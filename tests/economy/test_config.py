"""Economy configuration: loading, validation, calibration to the shared data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from margin.core.prices import InputError
from margin.economy import DEFAULT_TIERS, EconomyConfig, calibrate_from_data, load_config


def test_json_and_yaml_round_trip(tmp_path):
    cfg = EconomyConfig(seed=4, n_coding=7)
    p = tmp_path / "e.json"
    p.write_text(json.dumps(cfg.as_dict()))
    assert load_config(p).as_dict() == cfg.as_dict()
    y = tmp_path / "e.yaml"
    y.write_text("seed: 2\nn_coding: 5\ntiers:\n  - {name: a, quality: 0.6, cost: 0.001}\n")
    c = load_config(y)
    assert c.seed == 2 and c.n_coding == 5 and c.tiers[0].name == "a"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"n_codng": 3}', "unknown field 'n_codng'"),
        ('{"n_coding": 0}', "n_coding"),
        ('{"horizon_s": -1}', "horizon_s"),
        ('{"quality_bar": 0.99}', "quality_bar"),
        ('{"tiers": [{"name": "a", "quality": 2, "cost": 1}]}', r"tiers\[0\]"),
        ('{"n_coding": 3', r"invalid JSON"),
        ("[1, 2]", "expected an object"),
    ],
)
def test_bad_configs_name_the_field_and_file(tmp_path, text, match):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(InputError, match=match) as e:
        load_config(p)
    assert "bad.json" in str(e.value)


def test_missing_and_bad_yaml(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "nope.json")
    p = tmp_path / "b.yaml"
    p.write_text("seed: [1,\n")
    with pytest.raises(InputError, match=r"b\.yaml"):
        load_config(p)


@pytest.mark.data
def test_builtin_calibration_matches_the_shared_data(shared_data):
    root = shared_data("routing/routerbench/mbpp_train.csv").parents[2]
    shared_data("serving/AzureLLMInferenceTrace_conv.csv")
    shared_data("rl/rl_staleness_ablations.csv")
    cal = calibrate_from_data(EconomyConfig(), root)
    for built, fresh in zip(DEFAULT_TIERS, cal.tiers, strict=True):
        assert built.name == fresh.name
        assert built.quality == pytest.approx(fresh.quality, abs=1e-3)
        assert built.cost == pytest.approx(fresh.cost, rel=1e-3)
    d = EconomyConfig()
    assert cal.chat_prompt_mean == pytest.approx(d.chat_prompt_mean, rel=1e-3)
    assert cal.chat_output_sigma == pytest.approx(d.chat_output_sigma, rel=1e-2)
    assert cal.omega == pytest.approx(d.omega, rel=1e-3)
    assert np.isfinite(cal.chat_prompt_sigma)


def test_test_blind_share_is_a_share():
    assert EconomyConfig().test_blind_share == pytest.approx(0.078)
    assert EconomyConfig(test_blind_share=0.0).test_blind_share == 0.0
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(InputError, match="test_blind_share"):
            EconomyConfig(test_blind_share=bad)
