"""Action classes and the autonomy schedule: Eq. 7 with the ρ_irr term, priced per class.

Sec. 3.2 of the paper: an agent should publish an *autonomy schedule*, a map from action
class to the confirmation level it requires (read → free, draft → free, commit → confirm,
deploy/transfer → multi-party). This module derives that schedule from the price vector.

For an action class ``k`` with error probability ``p``, consequence ``L`` (USD),
irreversible share ``φ`` and recovery cost ``c_rec`` (USD to undo the reversible part),
the loss if the action goes wrong is

    ℓ = (1 − φ)·min(L, c_rec) + φ·L,     ℓ_irr = φ·L,

a two-point distribution {0 w.p. 1 − p, ℓ w.p. p}. Its risk ΔR is the expectation
``p·ℓ`` for routine classes and ``CVaR_β`` for rare, high-consequence (``tail``) classes
(Sec. 2, "The Knightian limit of ρ"). The four confirmation levels are four options of
Eq. 1 with the same marginal value ``V·Δp_k`` of acting now:

    S(level) = V·Δp_k − H(level) − λ·D(level) − (1 − κ(level))·(ρ·ΔR + ρ_irr·ΔR_irr),
    S(forbid) = 0,

where ``H`` is the human-oversight cost, ``D`` the wait for the reviewer(s) and ``κ``
the share of errors the reviewers catch (``κ = 1 − (1 − κ₁)^n`` for ``n`` independent
reviewers). Asking buys the option value ``κ·(ρ·ΔR + ρ_irr·ΔR_irr)`` at the price
``H + λ·D``; the level with the highest surplus is the discrete solution of Eq. 7
(autonomy expands until the saved oversight cost equals the marginal risk).

This module is stdlib-only at import: the ``margin gate`` hook imports it on every tool
call of a coding agent. The two-point CVaR is computed in closed form here and checked
against :class:`margin.core.risk.CVaR` in the tests.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace

from margin._io import atomic_write_text, parse_structured
from margin.core.prices import InputError, Option, PriceVector, check_fields

# Not `typing.TYPE_CHECKING`: importing typing costs ~9 ms of `margin gate`'s start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DEFAULT_SCHEDULE_PATH",
    "HOOK_DECISIONS",
    "LEVELS",
    "UNKNOWN_CLASS",
    "ActionClass",
    "ActionPrice",
    "AutonomySchedule",
    "Oversight",
    "load_schedule",
    "two_point_cvar",
    "write_text_atomic",
]

#: Confirmation levels, from most to least autonomous.
LEVELS: tuple[str, ...] = ("free", "confirm", "multi_party", "forbid")
_RANK = {name: i for i, name in enumerate(LEVELS)}

#: Pseudo-class of a tool call the classifier does not recognize (MCP tools, unknown programs).
UNKNOWN_CLASS = "unknown"

#: Default map from confirmation level to a Claude Code ``permissionDecision``. Claude Code
#: has one approver, so a multi-party action cannot be approved inside it: it is denied with a
#: reason that names the required sign-off.
HOOK_DECISIONS: dict[str, str] = {
    "free": "allow",
    "confirm": "ask",
    "multi_party": "deny",
    "forbid": "deny",
}

#: The schedule shipped with the package (``margin/data/default_schedule.json``).
DEFAULT_SCHEDULE_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "default_schedule.json"
)


def _num(where: str, name: str, value: Any, lo: float = 0.0, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: field '{name}' must be a number, got {value!r}")
    x = float(value)
    if not (lo <= x <= hi) or math.isnan(x):
        raise InputError(f"{where}: field '{name}' must be in [{lo}, {hi}], got {value!r}")
    return x


def two_point_cvar(p: float, loss: float, level: float) -> float:
    """CVaR_β of the two-point loss {0 w.p. 1 − p, ``loss`` w.p. p}, in closed form.

    ``CVaR_β = loss · min(p, 1 − β) / (1 − β)``: the mean of the worst (1 − β) tail
    (Rockafellar–Uryasev). ``level = 0`` gives the expectation ``p·loss``.

    Examples
    --------
    >>> round(two_point_cvar(0.01, 1000.0, 0.95), 9)
    200.0
    >>> round(two_point_cvar(0.10, 1000.0, 0.95), 9)
    1000.0
    >>> two_point_cvar(0.01, 1000.0, 0.0)
    10.0
    """
    if not 0.0 <= level < 1.0:
        raise InputError(f"CVaR: field 'level' must be in [0, 1), got {level}")
    tail = 1.0 - level
    return loss * min(p, tail) / tail


@dataclass(frozen=True, slots=True)
class ActionClass:
    """One action class of the autonomy schedule.

    Parameters
    ----------
    name : str
        Identifier (``read``, ``draft``, ``execute``, ``commit``, ``publish`` ...).
    p_error : float
        Probability that an action of this class goes wrong, in [0, 1].
    consequence : float
        L, the loss in USD when it goes wrong and nothing is undone.
    irreversible_share : float
        φ in [0, 1], the share of L that cannot be recovered.
    recovery_cost : float
        c_rec, USD to undo the reversible part (capped at that part's size).
    value_share : float
        Δp, the success probability gained by acting now instead of waiting (∂p/∂a).
    tail : bool
        Price risk with CVaR instead of the expectation (rare, high-consequence classes).
    description : str
        One line for the printed schedule.
    override : str or None
        A confirmation level imposed by policy, replacing the derived one.

    Examples
    --------
    >>> a = ActionClass("commit", p_error=0.1, consequence=20.0, irreversible_share=0.1,
    ...                 recovery_cost=5.0, value_share=0.01)
    >>> a.loss_on_error, a.irreversible_loss_on_error
    (6.5, 2.0)
    """

    name: str
    p_error: float
    consequence: float
    irreversible_share: float
    recovery_cost: float
    value_share: float = 0.0
    tail: bool = False
    description: str = ""
    override: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(
                f"action class: field 'name' must be a non-empty string, got {self.name!r}"
            )
        where = f"action class '{self.name}'"
        object.__setattr__(self, "p_error", _num(where, "p_error", self.p_error, 0.0, 1.0))
        object.__setattr__(self, "consequence", _num(where, "consequence", self.consequence))
        object.__setattr__(
            self,
            "irreversible_share",
            _num(where, "irreversible_share", self.irreversible_share, 0.0, 1.0),
        )
        object.__setattr__(self, "recovery_cost", _num(where, "recovery_cost", self.recovery_cost))
        object.__setattr__(
            self, "value_share", _num(where, "value_share", self.value_share, 0.0, 1.0)
        )
        if not isinstance(self.tail, bool):
            raise InputError(f"{where}: field 'tail' must be true or false, got {self.tail!r}")
        if self.override is not None and self.override not in _RANK:
            raise InputError(
                f"{where}: field 'override' must be one of {LEVELS}, got {self.override!r}"
            )

    @property
    def loss_on_error(self) -> float:
        """ℓ = (1 − φ)·min(L, c_rec) + φ·L."""
        phi = self.irreversible_share
        return (1.0 - phi) * min(self.consequence, self.recovery_cost) + phi * self.consequence

    @property
    def irreversible_loss_on_error(self) -> float:
        """ℓ_irr = φ·L."""
        return self.irreversible_share * self.consequence

    def risk(self, tail_level: float) -> tuple[float, float]:
        """(ΔR, ΔR_irr): expectation, or CVaR at ``tail_level`` for tail classes."""
        level = tail_level if self.tail else 0.0
        return (
            two_point_cvar(self.p_error, self.loss_on_error, level),
            two_point_cvar(self.p_error, self.irreversible_loss_on_error, level),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "action class") -> ActionClass:
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected an object, got {type(data).__name__}")
        check_fields(where, data, (f.name for f in fields(cls)))
        for key in ("name", "p_error", "consequence", "irreversible_share", "recovery_cost"):
            if key not in data:
                raise InputError(f"{where}: missing field '{key}'")
        try:
            return cls(**dict(data))
        except InputError as e:
            raise InputError(f"{where}: {e}") from None

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if out["override"] is None:
            del out["override"]
        return out


@dataclass(frozen=True, slots=True)
class Oversight:
    """The cost and power of asking a human (the H(a) and κ of Eq. 6-7).

    Parameters
    ----------
    review_seconds : float
        Human time per review.
    human_usd_per_hour : float
        Price of that time.
    wait_seconds : float
        Latency a confirmation adds before the action runs (priced by λ).
    catch_rate : float
        κ₁, share of the wrong actions one reviewer catches.
    reviewers : int
        Reviewers for the multi-party level (independent; κ = 1 − (1 − κ₁)^n).

    Examples
    --------
    >>> o = Oversight(review_seconds=36.0, human_usd_per_hour=100.0)
    >>> round(o.human_cost(1), 6), round(o.catch(2), 6)
    (1.0, 0.99)
    """

    review_seconds: float = 30.0
    human_usd_per_hour: float = 100.0
    wait_seconds: float = 60.0
    catch_rate: float = 0.9
    reviewers: int = 2

    def __post_init__(self) -> None:
        w = "oversight"
        object.__setattr__(self, "review_seconds", _num(w, "review_seconds", self.review_seconds))
        object.__setattr__(
            self, "human_usd_per_hour", _num(w, "human_usd_per_hour", self.human_usd_per_hour)
        )
        object.__setattr__(self, "wait_seconds", _num(w, "wait_seconds", self.wait_seconds))
        object.__setattr__(self, "catch_rate", _num(w, "catch_rate", self.catch_rate, 0.0, 1.0))
        if (
            isinstance(self.reviewers, bool)
            or not isinstance(self.reviewers, int)
            or self.reviewers < 2
        ):
            raise InputError(
                f"{w}: field 'reviewers' must be an integer >= 2, got {self.reviewers!r}"
            )

    def human_cost(self, n: int) -> float:
        """H for ``n`` reviewers, USD."""
        return n * self.review_seconds * self.human_usd_per_hour / 3600.0

    def catch(self, n: int) -> float:
        """κ for ``n`` independent reviewers."""
        return 1.0 - (1.0 - self.catch_rate) ** n

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "oversight") -> Oversight:
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected an object, got {type(data).__name__}")
        check_fields(where, data, (f.name for f in fields(cls)))
        return cls(**dict(data))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class ActionPrice:
    """The priced decision for one action class: surplus per level and the chosen level."""

    action: str
    level: str
    derived_level: str
    risk: float
    irreversible_risk: float
    options: tuple[Option, ...]
    surplus: Mapping[str, float]
    prices: PriceVector

    def explain(self) -> str:
        """The price arithmetic in one line (the hook's ``permissionDecisionReason``)."""
        p = self.prices
        free = self.options[0]
        parts = [
            f"{o.name} {self.surplus[o.name]:+.2f}" for o in self.options if o.name != "forbid"
        ]
        text = (
            f"class={self.action}: V·Δp={p.value * free.quality:.2f} USD, "
            f"ρ·ΔR={p.risk_price * self.risk:.2f}, ρ_irr·ΔR_irr="
            f"{p.irreversible_risk_price * self.irreversible_risk:.2f}; "
            f"surplus {', '.join(parts)}, forbid +0.00 → {self.level}"
        )
        if self.level != self.derived_level:
            text += f" (policy override of {self.derived_level})"
        return text


def _price_class(
    action: ActionClass, prices: PriceVector, oversight: Oversight, tail_level: float
) -> ActionPrice:
    risk, irr = action.risk(tail_level)
    q = action.value_share
    n = oversight.reviewers
    options = (
        Option("free", q, 0.0, 0.0, risk, irr),
        Option(
            "confirm",
            q,
            oversight.human_cost(1),
            oversight.wait_seconds,
            (1.0 - oversight.catch(1)) * risk,
            (1.0 - oversight.catch(1)) * irr,
        ),
        Option(
            "multi_party",
            q,
            oversight.human_cost(n),
            n * oversight.wait_seconds,
            (1.0 - oversight.catch(n)) * risk,
            (1.0 - oversight.catch(n)) * irr,
        ),
        Option("forbid", 0.0, 0.0),
    )
    surplus = {o.name: o.surplus(prices) for o in options}
    derived = max(LEVELS, key=lambda k: surplus[k])  # first maximum: ties favour autonomy
    level = action.override if action.override is not None else derived
    return ActionPrice(action.name, level, derived, risk, irr, options, surplus, prices)


@dataclass(frozen=True)
class AutonomySchedule:
    """Action class → confirmation level, derived from the price vector (Eq. 7 with ρ_irr).

    Parameters
    ----------
    prices : PriceVector
        V (USD per task), λ (USD per second of waiting), ρ, ρ_irr.
    classes : tuple of ActionClass
        The action classes.
    oversight : Oversight
        Cost and catch rate of human confirmation.
    tail_level : float
        β of the CVaR used for ``tail`` classes.
    unknown_level : str
        Level for tool calls the classifier does not recognize (default ``confirm``).
    tools : mapping
        Extra tool-name patterns (``fnmatch``, e.g. ``mcp__github__*``) → action class.
    hook_decisions : mapping
        Level → Claude Code ``permissionDecision`` (see :data:`HOOK_DECISIONS`).

    Examples
    --------
    >>> s = AutonomySchedule.default()
    >>> [s.level(c) for c in ("read", "draft", "commit", "publish", "destroy")]
    ['free', 'free', 'confirm', 'multi_party', 'forbid']
    """

    prices: PriceVector
    classes: tuple[ActionClass, ...]
    oversight: Oversight = field(default_factory=Oversight)
    tail_level: float = 0.99
    unknown_level: str = "confirm"
    tools: Mapping[str, str] = field(default_factory=dict)
    hook_decisions: Mapping[str, str] = field(default_factory=lambda: dict(HOOK_DECISIONS))
    _priced: dict[str, ActionPrice] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise InputError(f"schedule: duplicate action class names in {names}")
        if UNKNOWN_CLASS in names:
            raise InputError(f"schedule: '{UNKNOWN_CLASS}' is reserved; set 'unknown_level'")
        if not 0.0 <= self.tail_level < 1.0:
            raise InputError(
                f"schedule: field 'tail_level' must be in [0, 1), got {self.tail_level}"
            )
        if self.unknown_level not in _RANK:
            raise InputError(
                f"schedule: field 'unknown_level' must be one of {LEVELS}, "
                f"got {self.unknown_level!r}"
            )
        for tool, cls in self.tools.items():
            if cls not in names:
                raise InputError(f"schedule: tool '{tool}' maps to unknown action class '{cls}'")
        decisions = dict(HOOK_DECISIONS)
        decisions.update(self.hook_decisions)
        for lvl, dec in decisions.items():
            if lvl not in _RANK or dec not in ("allow", "ask", "deny"):
                raise InputError(
                    f"schedule: hook_decisions entry {lvl!r}: {dec!r} is invalid "
                    "(levels free/confirm/multi_party/forbid → allow/ask/deny)"
                )
        object.__setattr__(self, "hook_decisions", decisions)

    # -- pricing -----------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    def action(self, name: str) -> ActionClass:
        for c in self.classes:
            if c.name == name:
                return c
        raise InputError(
            f"schedule: unknown action class '{name}' (known: {', '.join(self.names)})"
        )

    def price(self, name: str) -> ActionPrice:
        """The Eq. 7 decision for one class (cached)."""
        cache = self._priced
        if name not in cache:
            cache[name] = _price_class(
                self.action(name), self.prices, self.oversight, self.tail_level
            )
        return cache[name]

    def level(self, name: str) -> str:
        """Confirmation level of a class; :attr:`unknown_level` for ``"unknown"``."""
        if name == UNKNOWN_CLASS:
            return self.unknown_level
        return self.price(name).level

    def levels(self) -> dict[str, str]:
        return {c.name: self.level(c.name) for c in self.classes}

    def hook_decision(self, name: str) -> str:
        return self.hook_decisions[self.level(name)]

    def with_prices(self, prices: PriceVector) -> AutonomySchedule:
        return replace(self, prices=prices)

    @staticmethod
    def rank(level: str) -> int:
        """Strictness of a level: free 0 < confirm 1 < multi_party 2 < forbid 3."""
        return _RANK[level]

    # -- artifact ----------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """The JSON/YAML artifact (derived levels included for readers; recomputed on load)."""
        return {
            "version": 1,
            "prices": self.prices.as_dict(),
            "oversight": self.oversight.as_dict(),
            "tail_level": self.tail_level,
            "unknown_level": self.unknown_level,
            "hook_decisions": dict(self.hook_decisions),
            "tools": dict(self.tools),
            "classes": [c.as_dict() for c in self.classes],
            "levels": self.levels(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "schedule") -> AutonomySchedule:
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected an object, got {type(data).__name__}")
        allowed = {
            "version",
            "prices",
            "oversight",
            "tail_level",
            "unknown_level",
            "hook_decisions",
            "tools",
            "classes",
            "levels",
        }
        check_fields(where, data, allowed)
        if data.get("version", 1) != 1:
            raise InputError(f"{where}: field 'version' must be 1, got {data.get('version')!r}")
        for key in ("prices", "classes"):
            if key not in data:
                raise InputError(f"{where}: missing field '{key}'")
        raw = data["classes"]
        if not isinstance(raw, list) or not raw:
            raise InputError(f"{where}: field 'classes' must be a non-empty list")
        classes = tuple(
            ActionClass.from_dict(c, f"{where}: classes[{i}]") for i, c in enumerate(raw)
        )
        tools = data.get("tools", {})
        decisions = data.get("hook_decisions", {})
        if not isinstance(tools, Mapping) or not isinstance(decisions, Mapping):
            raise InputError(f"{where}: fields 'tools' and 'hook_decisions' must be objects")
        try:
            return cls(
                prices=PriceVector.from_dict(data["prices"], f"{where}: prices"),
                classes=classes,
                oversight=Oversight.from_dict(data.get("oversight", {}), f"{where}: oversight"),
                tail_level=_num(where, "tail_level", data.get("tail_level", 0.99), 0.0, 1.0),
                unknown_level=str(data.get("unknown_level", "confirm")),
                tools={str(k): str(v) for k, v in tools.items()},
                hook_decisions={str(k): str(v) for k, v in decisions.items()},
            )
        except InputError as e:
            msg = str(e)
            raise InputError(msg if msg.startswith(where) else f"{where}: {msg}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AutonomySchedule:
        """Read a schedule from ``.json`` or ``.yaml``/``.yml``."""
        p = os.fspath(path)
        try:
            with open(p, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as e:
            raise InputError(f"{p}: cannot read schedule ({e.strerror})") from None
        except UnicodeDecodeError:
            raise InputError(f"{p}: schedule is not UTF-8 text") from None
        data = parse_structured(text, p)
        if not isinstance(data, Mapping):
            raise InputError(f"{p}: expected a schedule object")
        return cls.from_dict(data, p)

    def dumps(self, fmt: str = "json") -> str:
        """Serialize as ``json`` or ``yaml``."""
        if fmt == "json":
            return json.dumps(self.as_dict(), indent=2) + "\n"
        if fmt == "yaml":
            import yaml

            return str(yaml.safe_dump(self.as_dict(), sort_keys=False))
        raise InputError(f"schedule: unknown format '{fmt}' (json, yaml)")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (temp file in the same folder, then ``os.replace``)."""
        p = os.fspath(path)
        fmt = "yaml" if p.lower().endswith((".yaml", ".yml")) else "json"
        write_text_atomic(p, self.dumps(fmt))

    @classmethod
    def default(cls) -> AutonomySchedule:
        """The shipped schedule (``margin/data/default_schedule.json``)."""
        return cls.load(DEFAULT_SCHEDULE_PATH)

    # -- exports -----------------------------------------------------------------------
    def table_rows(self) -> list[dict[str, Any]]:
        """One row per class with the arithmetic of Eq. 7 (for tables and ``--json``)."""
        rows = []
        for c in self.classes:
            pr = self.price(c.name)
            rows.append(
                {
                    "class": c.name,
                    "p_error": c.p_error,
                    "loss_usd": c.loss_on_error,
                    "irreversible_usd": c.irreversible_loss_on_error,
                    "measure": f"CVaR{self.tail_level:g}" if c.tail else "E",
                    "risk_price_usd": self.prices.risk_price * pr.risk
                    + self.prices.irreversible_risk_price * pr.irreversible_risk,
                    "surplus": dict(pr.surplus),
                    "level": pr.level,
                    "hook": self.hook_decisions[pr.level],
                }
            )
        return rows

    def to_claude_code(self) -> dict[str, Any]:
        """Claude Code ``settings.json`` ``permissions`` (allow/ask/deny rules).

        Each class has a list of rule patterns (``Bash(git push:*)``, ``Edit(src/**)``...);
        a class's rules go to the list of its level's hook decision. Classes that map to
        ``allow`` but whose tools also appear in stricter lists are safe: Claude Code
        evaluates deny, then ask, then allow.
        """
        from margin.agent.classify import CLAUDE_CODE_RULES

        out: dict[str, list[str]] = {"allow": [], "ask": [], "deny": []}
        for c in self.classes:
            for rule in CLAUDE_CODE_RULES.get(c.name, ()):
                out[self.hook_decision(c.name)].append(rule)
        for pattern, cls_name in self.tools.items():
            if "*" not in pattern[:-1] and "?" not in pattern and "[" not in pattern:
                out[self.hook_decision(cls_name)].append(pattern)
        unknown = self.hook_decisions[self.unknown_level]
        if unknown != "allow":
            out[unknown].append("mcp__*")
        return {"permissions": {k: sorted(set(v), key=v.index) for k, v in out.items()}}

    def to_openhands(self) -> dict[str, Any]:
        """OpenHands-style risk levels (LOW/MEDIUM/HIGH) and a ``ConfirmRisky`` threshold.

        free → LOW, confirm → MEDIUM, multi_party/forbid → HIGH; the confirmation
        threshold is the lowest risk level that needs a human; unknown actions are
        confirmed unless the unknown level is free.
        """
        risk = {"free": "LOW", "confirm": "MEDIUM", "multi_party": "HIGH", "forbid": "HIGH"}
        levels = self.levels()
        confirm_levels = [risk[lv] for lv in levels.values() if lv != "free"]
        order = ["LOW", "MEDIUM", "HIGH"]
        threshold = min(confirm_levels, key=order.index) if confirm_levels else "HIGH"
        return {
            "security_risk": {name: risk[lv] for name, lv in levels.items()},
            "confirmation_policy": {
                "type": "ConfirmRisky",
                "threshold": threshold,
                "confirm_unknown": self.unknown_level != "free",
            },
            "blocked": [name for name, lv in levels.items() if lv == "forbid"],
        }

    def to_langgraph(self) -> dict[str, Any]:
        """``interrupt_on`` for LangChain/LangGraph's human-in-the-loop middleware.

        Keys are action classes (map your tool names to them); free → ``False``, confirm →
        approve/edit/reject, multi_party → approve/reject (no in-place edit), forbid → reject.
        """
        decisions = {
            "free": False,
            "confirm": {"allowed_decisions": ["approve", "edit", "reject"]},
            "multi_party": {"allowed_decisions": ["approve", "reject"]},
            "forbid": {"allowed_decisions": ["reject"]},
        }
        return {"interrupt_on": {name: decisions[lv] for name, lv in self.levels().items()}}

    def export(self, fmt: str) -> str:
        """``json``, ``yaml``, ``claude-code``, ``openhands`` or ``langgraph`` text."""
        if fmt in ("json", "yaml"):
            return self.dumps(fmt)
        makers = {
            "claude-code": self.to_claude_code,
            "openhands": self.to_openhands,
            "langgraph": self.to_langgraph,
        }
        if fmt not in makers:
            known = ", ".join(["json", "yaml", *makers])
            raise InputError(f"schedule: unknown export format '{fmt}' (known: {known})")
        return json.dumps(makers[fmt](), indent=2) + "\n"


def load_schedule(path: str | os.PathLike[str] | None = None) -> AutonomySchedule:
    """The schedule at ``path``, or the shipped default when ``None``."""
    return AutonomySchedule.default() if path is None else AutonomySchedule.load(path)


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to a temp file in the same folder, then ``os.replace`` it."""
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise InputError(f"{path}: cannot write ({e.strerror})") from None


def strictest(levels: Iterable[str]) -> str:
    """The strictest of several levels (``free`` when empty)."""
    return max(levels, key=_RANK.__getitem__, default="free")
