"""Action classes, the Eq. 7 schedule and its exports."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from margin.agent.schedule import (
    LEVELS,
    ActionClass,
    AutonomySchedule,
    Oversight,
    two_point_cvar,
)
from margin.core.prices import InputError, PriceVector
from margin.core.risk import CVaR, Expectation, bernoulli_loss

probability = st.floats(0.0, 1.0)
money = st.floats(0.0, 1e5, allow_nan=False)


@given(p=probability, loss=money, level=st.floats(0.0, 0.999))
@settings(max_examples=200, deadline=None)
def test_two_point_cvar_matches_core_risk(p: float, loss: float, level: float) -> None:
    losses, probs = bernoulli_loss(p, loss)
    expected = CVaR(level).measure(losses, probs)
    assert math.isclose(two_point_cvar(p, loss, level), expected, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(
        two_point_cvar(p, loss, 0.0),
        Expectation().measure(losses, probs),
        rel_tol=1e-12,
        abs_tol=1e-12,
    )


def test_default_schedule_matches_the_paper() -> None:
    s = AutonomySchedule.default()
    # Sec. 3.2: read → free, draft → free, commit → confirm, deploy/transfer → multi-party
    assert s.levels() == {
        "read": "free",
        "draft": "free",
        "execute": "free",
        "commit": "confirm",
        "protected": "confirm",
        "publish": "multi_party",
        "spend": "multi_party",
        "destroy": "forbid",
    }
    assert s.level("unknown") == "confirm"
    assert s.hook_decision("commit") == "ask"


def test_level_is_the_argmax_of_surplus() -> None:
    s = AutonomySchedule.default()
    for name in s.names:
        pr = s.price(name)
        assert pr.level == max(pr.surplus, key=lambda k: pr.surplus[k])
        assert pr.surplus["forbid"] == 0.0


def test_surplus_arithmetic_by_hand() -> None:
    a = ActionClass(
        "x",
        p_error=0.1,
        consequence=100.0,
        irreversible_share=0.5,
        recovery_cost=10.0,
        value_share=0.2,
    )
    o = Oversight(
        review_seconds=36.0,
        human_usd_per_hour=100.0,
        wait_seconds=10.0,
        catch_rate=0.8,
        reviewers=2,
    )
    s = AutonomySchedule(PriceVector(50.0, 0.1, 2.0, 3.0), (a,), o)
    # loss on error = 0.5*10 + 0.5*100 = 55; E = 5.5; irreversible E = 5.0
    pr = s.price("x")
    assert pr.risk == pytest.approx(5.5) and pr.irreversible_risk == pytest.approx(5.0)
    free = 10.0 - 2.0 * 5.5 - 3.0 * 5.0
    confirm = 10.0 - 1.0 - 0.1 * 10.0 - 0.2 * (2.0 * 5.5 + 3.0 * 5.0)
    multi = 10.0 - 2.0 - 0.1 * 20.0 - 0.04 * (2.0 * 5.5 + 3.0 * 5.0)
    assert pr.surplus["free"] == pytest.approx(free)
    assert pr.surplus["confirm"] == pytest.approx(confirm)
    assert pr.surplus["multi_party"] == pytest.approx(multi)
    assert pr.level == "multi_party"
    assert "multi_party" in pr.explain() and "\n" not in pr.explain()


def test_tail_classes_price_cvar() -> None:
    base = dict(
        p_error=0.01, consequence=1000.0, irreversible_share=1.0, recovery_cost=0.0, value_share=0.1
    )
    e = AutonomySchedule(
        PriceVector(100.0, risk_price=1.0), (ActionClass("a", **base),), tail_level=0.95
    )
    c = AutonomySchedule(
        PriceVector(100.0, risk_price=1.0), (ActionClass("a", tail=True, **base),), tail_level=0.95
    )
    assert e.price("a").risk == pytest.approx(10.0)
    assert c.price("a").risk == pytest.approx(200.0)
    assert AutonomySchedule.rank(c.level("a")) >= AutonomySchedule.rank(e.level("a"))


@given(
    rho=st.floats(0.0, 50.0),
    bump=st.floats(0.0, 50.0),
    p=st.floats(0.001, 0.5),
    phi=probability,
    value=st.floats(1.0, 500.0),
)
@settings(max_examples=150, deadline=None)
def test_levels_tighten_as_risk_prices_rise(
    rho: float, bump: float, p: float, phi: float, value: float
) -> None:
    """Comparative statics of Eq. 7: autonomy never expands when ρ or ρ_irr rises."""
    a = ActionClass(
        "a",
        p_error=p,
        consequence=200.0,
        irreversible_share=phi,
        recovery_cost=20.0,
        value_share=0.1,
    )
    low = AutonomySchedule(PriceVector(value, 0.01, rho, rho), (a,))
    hi_r = AutonomySchedule(PriceVector(value, 0.01, rho + bump, rho), (a,))
    hi_irr = AutonomySchedule(PriceVector(value, 0.01, rho, rho + bump), (a,))
    assert AutonomySchedule.rank(hi_r.level("a")) >= AutonomySchedule.rank(low.level("a"))
    assert AutonomySchedule.rank(hi_irr.level("a")) >= AutonomySchedule.rank(low.level("a"))


def test_override_wins_and_is_reported() -> None:
    d = AutonomySchedule.default()
    classes = tuple(
        ActionClass(**{**c.as_dict(), "override": "confirm"}) if c.name == "execute" else c
        for c in d.classes
    )
    s = AutonomySchedule(d.prices, classes, d.oversight, d.tail_level)
    assert s.level("execute") == "confirm"
    assert "policy override of free" in s.price("execute").explain()


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_save_load_roundtrip(tmp_path: Path, suffix: str) -> None:
    s = AutonomySchedule.default()
    path = tmp_path / f"s{suffix}"
    s.save(path)
    back = AutonomySchedule.load(path)
    assert back.levels() == s.levels()
    assert back.classes == s.classes and back.prices == s.prices
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_load_errors_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"prices": {"value": 1},\n "classes": [}')
    with pytest.raises(InputError, match=r"bad\.json:2: invalid JSON"):
        AutonomySchedule.load(bad)
    data = AutonomySchedule.default().as_dict()
    data["classes"][2]["p_error"] = 1.5
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"classes\[2\].*'p_error'"):
        AutonomySchedule.load(bad)
    data = AutonomySchedule.default().as_dict()
    data["unknown_level"] = "maybe"
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown_level"):
        AutonomySchedule.load(bad)
    with pytest.raises(InputError, match="cannot read"):
        AutonomySchedule.load(tmp_path / "missing.json")
    with pytest.raises(InputError, match="unknown field 'colour'"):
        AutonomySchedule.from_dict({**AutonomySchedule.default().as_dict(), "colour": 1})


_RULE = re.compile(
    r"^(Bash|Read|Edit|Write|MultiEdit|NotebookEdit|Grep|Glob|LS|WebFetch|WebSearch)(\((?P<arg>[^()]+)\))?$|^mcp__[A-Za-z0-9_*-]+$"
)


def test_claude_code_export_is_valid_settings() -> None:
    s = AutonomySchedule.default()
    settings_ = json.loads(s.export("claude-code"))
    perms = settings_["permissions"]
    assert set(perms) == {"allow", "ask", "deny"}
    for lst in perms.values():
        assert len(lst) == len(set(lst))
        for rule in lst:
            m = _RULE.match(rule)
            assert m, rule
            arg = m.group("arg")
            if rule.startswith("Bash(") and arg and arg.endswith("*"):
                assert arg.endswith(":*"), rule  # legacy prefix syntax, word boundary
    assert "Bash(git push:*)" in perms["deny"]  # publish → multi_party → deny
    assert "Bash(git commit:*)" in perms["ask"]
    assert "Bash(rm:*)" in perms["deny"]
    assert "Edit" in perms["allow"] and "Edit(./.env)" in perms["ask"]
    assert "mcp__*" in perms["ask"]


def test_openhands_and_langgraph_exports() -> None:
    s = AutonomySchedule.default()
    oh = json.loads(s.export("openhands"))
    assert oh["security_risk"]["read"] == "LOW"
    assert oh["security_risk"]["commit"] == "MEDIUM"
    assert oh["security_risk"]["publish"] == "HIGH"
    assert oh["confirmation_policy"] == {
        "type": "ConfirmRisky",
        "threshold": "MEDIUM",
        "confirm_unknown": True,
    }
    assert oh["blocked"] == ["destroy"]
    lg = json.loads(s.export("langgraph"))["interrupt_on"]
    assert lg["read"] is False
    assert lg["commit"] == {"allowed_decisions": ["approve", "edit", "reject"]}
    assert lg["destroy"] == {"allowed_decisions": ["reject"]}
    import yaml

    assert yaml.safe_load(s.export("yaml"))["levels"] == s.levels()
    with pytest.raises(InputError, match="unknown export format"):
        s.export("xml")


def test_levels_constant() -> None:
    assert LEVELS == ("free", "confirm", "multi_party", "forbid")


def test_package_exports_are_lazy_and_resolve() -> None:
    import margin.agent as agent

    for name in agent.__all__:
        assert getattr(agent, name) is not None
