"""A learned output-length predictor for shortest-predicted-job-first scheduling.

Following the learning-to-rank idea of Fu et al. (arXiv 2408.15792, "Efficient LLM
Scheduling by Learning to Rank"): a scheduler does not need exact output lengths, only
their *order*. We fit a gradient-boosted regressor on ``log(output)`` from request
features known at arrival (log prompt length and tenant one-hot); the predicted order is
scored by Kendall's τ against the realized order, the paper's ranking metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from margin.core.prices import InputError
from margin.serving.traces import Trace

__all__ = ["OutputLengthPredictor"]

FloatArray = npt.NDArray[np.float64]


def _features(trace: Trace, n_tenants: int) -> FloatArray:
    onehot = np.zeros((len(trace), n_tenants))
    t = np.minimum(trace.tenant, n_tenants - 1)
    onehot[np.arange(len(trace)), t] = 1.0
    return np.column_stack([np.log1p(trace.prompt.astype(np.float64)), onehot])


@dataclass
class OutputLengthPredictor:
    """Predict output tokens from prompt length and tenant (scikit-learn conventions).

    Parameters
    ----------
    max_iter : int
        Boosting rounds of the underlying ``GradientBoostingRegressor`` (single-threaded).
    random_state : int
        Seed.

    Examples
    --------
    >>> from margin.serving.traces import synthetic_trace
    >>> t = synthetic_trace(400, rate=1.0, seed=0)
    >>> p = OutputLengthPredictor(max_iter=20).fit(t)
    >>> p.predict(t).shape
    (400,)
    """

    max_iter: int = 60
    random_state: int = 0
    model_: Any = field(default=None, init=False, repr=False)
    n_tenants_: int = field(default=0, init=False)

    def fit(self, trace: Trace) -> OutputLengthPredictor:
        """Fit on a trace's realized outputs; returns ``self``."""
        from sklearn.ensemble import GradientBoostingRegressor

        if len(trace) < 2:
            raise InputError("predictor: need at least 2 requests to fit")
        self.n_tenants_ = len(trace.tenants)
        self.model_ = GradientBoostingRegressor(
            n_estimators=self.max_iter, max_depth=3, random_state=self.random_state
        ).fit(_features(trace, self.n_tenants_), np.log(trace.output.astype(np.float64)))
        return self

    def predict(self, trace: Trace) -> FloatArray:
        """Predicted output tokens (>= 1) for each request."""
        if self.model_ is None:
            raise InputError("predictor: call fit() before predict()")
        y = self.model_.predict(_features(trace, self.n_tenants_))
        return np.maximum(np.exp(np.asarray(y, dtype=np.float64)), 1.0)

    def score(self, trace: Trace) -> float:
        """Kendall's τ between predicted and realized output lengths (ranking quality)."""
        from scipy.stats import kendalltau

        tau = kendalltau(self.predict(trace), trace.output).statistic
        return float(tau) if np.isfinite(tau) else 0.0
