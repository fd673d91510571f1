"""Iteration-time cost models of a serving replica.

A cost model answers one question: how long does one engine iteration take, given the
prefill tokens and the decode batch it carries? Two models are provided:

* :class:`DistServeCostModel`, the fitted form of DistServe (Zhong et al., OSDI 2024):
  prefill ``a_p + b_p·Σprompt + c_p·Σprompt²`` and decode ``a_d + b_d·Σcontext + c_d·batch``
  (milliseconds); defaults are the published A100-80G fits in
  :mod:`margin.serving.profiles`.
* :class:`SplitwiseCostModel`, piecewise-linear interpolation of the measured table of
  splitwise-sim (Patel et al., ISCA 2024; ``data/perf_model.csv``, MIT), loaded from a path.

A chunked-prefill iteration (Sarathi-Serve, Agrawal et al., OSDI 2024) mixes prefill chunks
and decodes; its time is ``P + D − min(a_p, a_d)``: the two parts add, the fixed per-iteration
overhead is paid once. For a chunk of ``x`` tokens after ``d`` tokens already in the KV
cache, the quadratic (attention) term uses ``x·(d + x)``, which is ``prompt²`` for an
unchunked prefill.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError, check_fields
from margin.serving.profiles import DISTSERVE_A100_80G

__all__ = [
    "COST_MODELS",
    "CostModel",
    "DistServeCostModel",
    "SplitwiseCostModel",
    "load_cost_model",
]

FloatArray = npt.NDArray[np.float64]


@runtime_checkable
class CostModel(Protocol):
    """Iteration time of a replica (seconds)."""

    def iteration_time(
        self, prefill_tokens: float, prefill_attn: float, decode_ctx: float, decode_batch: int
    ) -> float:
        """Seconds for one iteration with ``prefill_tokens`` prompt tokens (attention term
        ``prefill_attn`` = Σ chunk·(cached + chunk)) and ``decode_batch`` decodes whose
        contexts sum to ``decode_ctx``."""
        ...

    def decode_coefficients(self, batch: int) -> tuple[float, float]:
        """``(alpha, beta)`` with decode-only iteration time ``alpha + beta·Σcontext`` (s)."""
        ...


def _coef(where: str, name: str, raw: Any) -> tuple[float, float, float]:
    if not isinstance(raw, list | tuple) or len(raw) != 3:
        raise InputError(f"{where}: field '{name}' must be a list of 3 numbers (a, b, c)")
    out = []
    for x in raw:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise InputError(f"{where}: field '{name}' must hold finite numbers, got {x!r}")
        out.append(float(x))
    return out[0], out[1], out[2]


@dataclass(frozen=True, slots=True)
class DistServeCostModel:
    """DistServe's fitted iteration-time model (coefficients in milliseconds).

    prefill(Σp, Σp²) = a_p + b_p·Σp + c_p·Σp² and decode(Σctx, B) = a_d + b_d·Σctx + c_d·B,
    with ``(a_d, b_d, c_d)`` taken from ``decode_small`` when B < ``threshold`` and from
    ``decode_large`` otherwise.

    Examples
    --------
    >>> m = DistServeCostModel.default()
    >>> round(m.iteration_time(512, 512 * 512, 0, 0) * 1e3, 2)  # OPT-13B, 1 GPU, 512 tokens
    72.15
    >>> round(m.iteration_time(0, 0, 16 * 1024, 16) * 1e3, 2)
    30.82
    """

    prefill: tuple[float, float, float]
    decode_small: tuple[float, float, float]
    decode_large: tuple[float, float, float]
    threshold: int = 95
    name: str = "distserve"

    def __post_init__(self) -> None:
        for field_name in ("prefill", "decode_small", "decode_large"):
            a, b, _ = _coef("DistServeCostModel", field_name, list(getattr(self, field_name)))
            if a < 0 or b < 0:
                raise InputError(
                    f"DistServeCostModel: field '{field_name}' needs a >= 0 and b >= 0"
                )

    @classmethod
    def default(cls, model: str = "facebook/opt-13b", tp: int = 1) -> DistServeCostModel:
        """The embedded DistServe A100-80G fit for ``model`` at tensor parallelism ``tp``."""
        try:
            p = DISTSERVE_A100_80G[model][tp]
        except KeyError:
            choices = [f"{m}@tp{t}" for m, d in DISTSERVE_A100_80G.items() for t in d]
            raise InputError(
                f"cost model: no DistServe profile for {model}@tp{tp}; have {', '.join(choices)}"
            ) from None
        return cls._from_profile(p, f"distserve:{model}@tp{tp}", "profile")

    @classmethod
    def _from_profile(cls, p: Mapping[str, Any], name: str, where: str) -> DistServeCostModel:
        for key in ("prefill", "decoding_smallbs", "decoding_largebs"):
            if key not in p:
                raise InputError(f"{where}: missing field '{key}'")
        thr = p.get("decoding_large_small_bs_threshold", p.get("threshold", 95))
        if isinstance(thr, bool) or not isinstance(thr, int) or thr < 1:
            raise InputError(f"{where}: field 'decoding_large_small_bs_threshold' must be >= 1")
        return cls(
            prefill=_coef(where, "prefill", list(p["prefill"])),
            decode_small=_coef(where, "decoding_smallbs", list(p["decoding_smallbs"])),
            decode_large=_coef(where, "decoding_largebs", list(p["decoding_largebs"])),
            threshold=thr,
            name=name,
        )

    @classmethod
    def from_json(
        cls, path: str | Path, model: str | None = None, tp: int | None = None
    ) -> DistServeCostModel:
        """Load DistServe's profile JSON (``{model: {tp: {...}}}``) or one flat profile
        ``{"prefill": [a,b,c], "decoding_smallbs": [...], "decoding_largebs": [...]}``."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{p}: cost model file not found") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(data, dict):
            raise InputError(f"{p}: expected a JSON object")
        if "prefill" in data:
            return cls._from_profile(data, f"distserve:{p.name}", str(p))
        m = model or next(iter(data), None)
        if m not in data:
            raise InputError(f"{p}: no model {m!r}; have {', '.join(data)}")
        per_tp = data[m]
        if not isinstance(per_tp, dict) or not per_tp:
            raise InputError(f"{p}: field '{m}' must map tensor-parallel degrees to profiles")
        key = str(tp) if tp is not None else min(per_tp, key=lambda s: int(s))
        if key not in per_tp:
            raise InputError(f"{p}: model {m!r} has no tp={key}; have {', '.join(per_tp)}")
        return cls._from_profile(per_tp[key], f"distserve:{m}@tp{key}", f"{p} [{m}][{key}]")

    def _decode(self, batch: int) -> tuple[float, float, float]:
        return self.decode_small if batch < self.threshold else self.decode_large

    def iteration_time(
        self, prefill_tokens: float, prefill_attn: float, decode_ctx: float, decode_batch: int
    ) -> float:
        """``P + D − min(a_p, a_d)`` seconds (see the module docstring)."""
        t = 0.0
        ap, bp, cp = self.prefill
        if prefill_tokens > 0:
            t += ap + bp * prefill_tokens + cp * prefill_attn
        if decode_batch > 0:
            ad, bd, cd = self._decode(decode_batch)
            t += ad + bd * decode_ctx + cd * decode_batch
            if prefill_tokens > 0:
                t -= min(ap, ad)
        return t * 1e-3

    def decode_coefficients(self, batch: int) -> tuple[float, float]:
        ad, bd, cd = self._decode(batch)
        return (ad + cd * batch) * 1e-3, bd * 1e-3


class SplitwiseCostModel:
    """Interpolation of splitwise-sim's measured performance table (Patel et al., ISCA 2024).

    From the rows of one ``(model, hardware, tensor_parallel)``:

    * prefill time is interpolated (piecewise linear, linear extrapolation beyond the last
      point) in the total batch prompt tokens ``prompt_size·batch_size``, averaging repeats;
    * decode time per iteration is ``T(B)·(1 + s·(Σctx/B − ctx_ref))`` where ``T(B)`` is the
      measured ``token_time`` by batch size at the reference context ``ctx_ref``
      (prompt 512 + half of 128 generated tokens) and ``s`` is the relative slope of
      ``token_time`` in the mean context among batch-1 rows.

    Measurements that fall below an earlier grid point (the table has a few, e.g. the
    prefill of 64 x 512 tokens) are dropped so that the model is monotone; at every other
    measured grid point the model returns the measured mean exactly.
    """

    __slots__ = ("_bp", "_bt", "_ctx_ref", "_pt", "_pv", "_slope", "name")

    def __init__(
        self,
        path: str | Path,
        model: str = "llama2-70b",
        hardware: str = "a100-80gb",
        tensor_parallel: int = 8,
    ) -> None:
        p = Path(path)
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise InputError(f"{p}: cost model table not found") from None
        cols = (
            "model",
            "hardware",
            "prompt_size",
            "batch_size",
            "token_size",
            "prompt_time",
            "token_time",
            "tensor_parallel",
        )
        reader = csv.DictReader(lines)
        missing = [c for c in cols if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{p}:1: missing column '{missing[0]}'")
        prompt: dict[int, list[float]] = defaultdict(list)
        token_b: dict[int, list[float]] = defaultdict(list)
        token_c: dict[float, list[float]] = defaultdict(list)
        for lineno, row in enumerate(reader, start=2):
            if row["model"] != model or row["hardware"] != hardware:
                continue
            try:
                tp = int(row["tensor_parallel"])
                ps, bs, ts = int(row["prompt_size"]), int(row["batch_size"]), int(row["token_size"])
                pt, tt = float(row["prompt_time"]), float(row["token_time"])
            except (TypeError, ValueError):
                raise InputError(f"{p}:{lineno}: malformed numeric field") from None
            if tp != tensor_parallel:
                continue
            if ts == 128:
                prompt[ps * bs].append(pt)
            if ps == 512 and ts == 128:
                token_b[bs].append(tt)
            if bs == 1 and ps == 512:
                token_c[ps + ts / 2].append(tt)
        if not prompt or 1 not in token_b:
            raise InputError(
                f"{p}: no rows for model={model!r} hardware={hardware!r} "
                f"tensor_parallel={tensor_parallel}"
            )
        self.name = f"splitwise:{model}@{hardware}/tp{tensor_parallel}"
        self._pt = np.array(sorted(prompt), dtype=np.float64)
        self._pv = np.array([np.mean(prompt[int(k)]) for k in self._pt]) * 1e-3
        self._bt = np.array(sorted(token_b), dtype=np.float64)
        self._bp = np.array([np.mean(token_b[int(k)]) for k in self._bt]) * 1e-3
        self._pt, self._pv = self._monotone(self._pt, self._pv)
        self._bt, self._bp = self._monotone(self._bt, self._bp)
        self._ctx_ref = 512 + 64.0
        xs = np.array(sorted(token_c))
        ys = np.array([np.mean(token_c[x]) for x in xs])
        if xs.size >= 2:
            slope = float(np.polyfit(xs, ys, 1)[0])
            t_ref = float(np.interp(self._ctx_ref, xs, ys))
            self._slope = max(slope / t_ref, 0.0)
        else:
            self._slope = 0.0

    @staticmethod
    def _monotone(xs: FloatArray, ys: FloatArray) -> tuple[FloatArray, FloatArray]:
        keep = ys >= np.maximum.accumulate(ys)
        return xs[keep], ys[keep]

    @staticmethod
    def _interp(x: float, xs: FloatArray, ys: FloatArray) -> float:
        if x <= xs[-1] or xs.size < 2:
            if x < xs[0] and xs.size >= 2:
                # linear towards the origin's side, never below a tenth of the first point
                slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
                return float(max(ys[0] + slope * (x - xs[0]), ys[0] * 0.1))
            return float(np.interp(x, xs, ys))
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return float(ys[-1] + slope * (x - xs[-1]))

    def prefill_time(self, tokens: float) -> float:
        """Seconds to prefill ``tokens`` prompt tokens in one batch."""
        return self._interp(tokens, self._pt, self._pv) if tokens > 0 else 0.0

    def decode_coefficients(self, batch: int) -> tuple[float, float]:
        tb = self._interp(float(batch), self._bt, self._bp)
        alpha = max(tb * (1.0 - self._slope * self._ctx_ref), 0.0)
        return alpha, tb * self._slope / batch

    def iteration_time(
        self, prefill_tokens: float, prefill_attn: float, decode_ctx: float, decode_batch: int
    ) -> float:
        """Prefill time of the chunk tokens plus the decode time; when both are present the
        smaller of the two batch-1 fixed costs is paid once."""
        t = self.prefill_time(prefill_tokens)
        if decode_batch > 0:
            a, b = self.decode_coefficients(decode_batch)
            t += a + b * decode_ctx
            if prefill_tokens > 0:
                t -= 0.5 * min(float(self._pv[0]), float(self._bp[0]))
        return t


#: Cost model families by name (``--config`` key ``cost_model.kind``).
COST_MODELS: dict[str, type] = {"distserve": DistServeCostModel, "splitwise": SplitwiseCostModel}


def load_cost_model(spec: Mapping[str, Any] | None, where: str = "cost_model") -> CostModel:
    """Build a cost model from a config mapping.

    ``{"kind": "distserve", "model": "facebook/opt-13b", "tp": 1}`` (embedded fit),
    ``{"kind": "distserve", "path": "profile.json", "model": ..., "tp": ...}`` or
    ``{"kind": "splitwise", "path": "perf_model.csv", "model": "llama2-70b",
    "hardware": "a100-80gb", "tensor_parallel": 8}``.

    Examples
    --------
    >>> load_cost_model({"kind": "distserve", "model": "facebook/opt-66b", "tp": 4}).name
    'distserve:facebook/opt-66b@tp4'
    """
    spec = dict(spec or {})
    kind = spec.pop("kind", "distserve")
    if kind == "distserve":
        path = spec.pop("path", None)
        model = spec.pop("model", None)
        tp = spec.pop("tp", None)
        if spec:
            raise InputError(f"{where}: unknown field '{next(iter(spec))}'")
        if path is not None:
            return DistServeCostModel.from_json(path, model, tp)
        return DistServeCostModel.default(model or "facebook/opt-13b", int(tp or 1))
    if kind == "splitwise":
        if "path" not in spec:
            raise InputError(f"{where}: missing field 'path' for a splitwise cost model")
        allowed = {"path", "model", "hardware", "tensor_parallel"}
        check_fields(where, spec, allowed)
        return SplitwiseCostModel(**spec)
    raise InputError(f"{where}: field 'kind' must be one of {', '.join(COST_MODELS)}, got {kind!r}")
