"""Estimators of q̂_m(x), ĉ_m(x) and l̂_m(x), the inputs of the router's Eq. 4.

Every estimator follows scikit-learn conventions: ``fit`` returns ``self`` and learned
attributes end in ``_``. Quality estimators map prompt :class:`Features` to an (n, m)
matrix of success probabilities and are registered in :data:`QUALITY_ESTIMATORS`.

* :class:`TaskPrior` — per-task success rate shrunk toward the population rate (a Beta
  prior with ``alpha`` pseudo-observations).
* :class:`KNNQuality` — mean success of the k nearest training prompts (cosine on TF-IDF).
* :class:`CalibratedLogistic` — one L2 logistic regression per model on TF-IDF + task
  features, Platt-calibrated on out-of-fold decision values (Platt, 1999).
* :class:`ShrunkQuality` — ``q̂ = w·q̂_base + (1 − w)·q̂_prior`` with ``w`` chosen by
  out-of-fold Brier score, so an uninformative text model collapses to the prior.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from margin.core.prices import InputError

__all__ = [
    "QUALITY_ESTIMATORS",
    "CalibratedLogistic",
    "CalibrationReport",
    "Features",
    "KNNQuality",
    "LinearCostEstimator",
    "QualityEstimator",
    "ShrunkQuality",
    "TaskPrior",
    "TextFeaturizer",
    "TokenLatencyEstimator",
    "calibration_report",
    "make_quality_estimator",
]

FloatArray = npt.NDArray[np.float64]

#: Word tokens of one or more characters (answer letters such as "A" carry signal).
TOKEN_PATTERN = r"(?u)\b\w+\b"


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


@dataclass(frozen=True, eq=False)
class Features:
    """Prompt features: an L2-normalized TF-IDF matrix, a task one-hot and prompt length.

    ``text`` is (n, d) sparse CSR, ``task`` (n, T) dense 0/1 (all zero for a task unseen in
    training), ``length`` (n,) prompt length in thousands of characters.
    """

    text: sp.csr_matrix
    task: FloatArray
    length: FloatArray

    @property
    def n(self) -> int:
        return int(self.text.shape[0])

    def rows(self, idx: npt.ArrayLike) -> Features:
        i = np.asarray(idx)
        return Features(self.text[i], self.task[i], self.length[i])

    def design(self, task_weight: float = 1.0) -> sp.csr_matrix:
        """``[text | task_weight·task]`` as one sparse matrix (for linear models)."""
        out: sp.csr_matrix = sp.hstack(
            [self.text, sp.csr_matrix(task_weight * self.task)], format="csr"
        )
        return out


class TextFeaturizer:
    """TF-IDF features of the last ``tail_chars`` characters of each prompt plus the task.

    The end of a prompt holds the question (few-shot examples come first), so the tail is
    both the most informative part and the cheapest to featurize.

    Examples
    --------
    >>> f = TextFeaturizer(min_df=1).fit(["add two numbers", "sort a list"], ["code", "code"])
    >>> X = f.transform(["sort numbers"], ["code"])
    >>> X.text.shape[0], X.task.tolist()
    (1, [[1.0]])
    """

    def __init__(
        self,
        *,
        tail_chars: int = 1000,
        max_features: int = 50_000,
        ngram_range: tuple[int, int] = (1, 1),
        min_df: int = 2,
    ) -> None:
        self.tail_chars = tail_chars
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df

    def _tail(self, prompts: Sequence[str]) -> list[str]:
        k = self.tail_chars
        return [p[-k:] if k > 0 else p for p in prompts]

    def fit(self, prompts: Sequence[str], tasks: Sequence[str]) -> TextFeaturizer:
        if len(prompts) == 0:
            raise InputError("TextFeaturizer: no prompts to fit on")
        min_df = self.min_df if len(prompts) >= 10 * self.min_df else 1
        self.vectorizer_ = TfidfVectorizer(
            sublinear_tf=True,
            min_df=min_df,
            ngram_range=self.ngram_range,
            max_features=self.max_features,
            token_pattern=TOKEN_PATTERN,
            dtype=np.float64,
        )
        docs = self._tail(prompts)
        try:
            self.vectorizer_.fit(docs)
        except ValueError:  # too few repeated words for min_df: keep every word
            self.vectorizer_.set_params(min_df=1)
            try:
                self.vectorizer_.fit(docs)
            except ValueError:
                raise InputError("prompts: no words to build text features from") from None
        self.tasks_ = tuple(sorted(set(tasks)))
        return self

    def transform_cached(self, prompts: Sequence[str], tasks: Sequence[str]) -> Features:
        """:meth:`transform`, reusing the last result when called again with the very same
        (immutable) ``prompts`` and ``tasks`` objects — routing one dataset at many values
        of V featurizes it once. The cache is not pickled."""
        hit = getattr(self, "_cache", None)
        if hit is not None and hit[0] is prompts and hit[1] is tasks:
            out: Features = hit[2]
            return out
        X = self.transform(prompts, tasks)
        if isinstance(prompts, tuple) and isinstance(tasks, tuple):
            self._cache = (prompts, tasks, X)
        return X

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_cache", None)
        return state

    def transform(self, prompts: Sequence[str], tasks: Sequence[str]) -> Features:
        if not hasattr(self, "vectorizer_"):
            raise InputError("TextFeaturizer: call fit before transform")
        text = self.vectorizer_.transform(self._tail(prompts)).tocsr()
        pos = {t: i for i, t in enumerate(self.tasks_)}
        task = np.zeros((len(prompts), len(self.tasks_)))
        for k, t in enumerate(tasks):
            j = pos.get(t)
            if j is not None:
                task[k, j] = 1.0
        length = np.fromiter((len(p) / 1000.0 for p in prompts), np.float64, len(prompts))
        return Features(text, task, length)


def _check_fit(X: Features, Y: npt.ArrayLike, name: str) -> FloatArray:
    y = np.asarray(Y, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] != X.n:
        raise InputError(f"{name}: targets must have shape ({X.n}, m), got {y.shape}")
    if X.n == 0:
        raise InputError(f"{name}: no training rows")
    if not np.all(np.isfinite(y)):
        raise InputError(f"{name}: targets contain NaN or infinite values")
    return y


@runtime_checkable
class QualityEstimator(Protocol):
    """q̂_m(x): the probability that model m answers prompt x correctly."""

    def fit(self, X: Features, Q: npt.ArrayLike) -> QualityEstimator: ...

    def predict_proba(self, X: Features) -> FloatArray:
        """Shape (n, m), every entry in [0, 1]."""
        ...


class TaskPrior:
    """Per-task success rate with a Beta prior centred on the population rate.

    ``q̂_m(t) = (Σ_{k∈t} Q_km + α·q̄_m) / (n_t + α)``; an unseen task gets q̄_m.

    Examples
    --------
    >>> import numpy as np
    >>> X = Features(sp.csr_matrix((3, 1)), np.array([[1.0, 0], [1, 0], [0, 1]]), np.ones(3))
    >>> TaskPrior(alpha=0.0).fit(X, [[1.0], [0.0], [1.0]]).predict_proba(X).ravel().tolist()
    [0.5, 0.5, 1.0]
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X: Features, Q: npt.ArrayLike) -> TaskPrior:
        y = _check_fit(X, Q, "TaskPrior")
        self.population_ = y.mean(axis=0)
        counts = X.task.sum(axis=0)
        sums = X.task.T @ y
        self.table_ = (sums + self.alpha * self.population_) / np.maximum(
            counts[:, None] + self.alpha, 1e-12
        )
        return self

    def predict_proba(self, X: Features) -> FloatArray:
        seen = X.task.sum(axis=1, keepdims=True)
        out: FloatArray = X.task @ self.table_ + (1.0 - seen) * self.population_
        return out


class KNNQuality:
    """Mean realized quality of the ``k`` most similar training prompts (cosine similarity of
    L2-normalized TF-IDF rows, restricted to the same task when ``same_task``), blended with
    the task prior by ``k/(k + alpha)``.

    Examples
    --------
    >>> f = TextFeaturizer(min_df=1).fit(["cat", "dog", "cat cat"], ["t"] * 3)
    >>> X = f.transform(["cat", "dog", "cat cat"], ["t"] * 3)
    >>> knn = KNNQuality(k=1, alpha=0.0).fit(X, [[1.0], [0.0], [1.0]])
    >>> knn.predict_proba(f.transform(["dog"], ["t"])).ravel().tolist()
    [0.0]
    """

    def __init__(self, k: int = 40, alpha: float = 0.0, same_task: bool = True) -> None:
        self.k = k
        self.alpha = alpha
        self.same_task = same_task

    def fit(self, X: Features, Q: npt.ArrayLike) -> KNNQuality:
        y = _check_fit(X, Q, "KNNQuality")
        if self.k < 1:
            raise InputError(f"KNNQuality: field 'k' must be >= 1, got {self.k}")
        self.X_ = X.text.T.tocsr()
        self.task_ = X.task
        self.Q_ = y
        self.prior_ = TaskPrior().fit(X, y)
        return self

    def predict_proba(self, X: Features) -> FloatArray:
        sims = np.asarray((X.text @ self.X_).todense())
        if self.same_task and self.task_.shape[1]:
            same = X.task @ self.task_.T
            unseen = X.task.sum(axis=1) == 0
            sims = np.where((same > 0) | unseen[:, None], sims, sims - 10.0)
        k = min(self.k, sims.shape[1])
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        local = self.Q_[idx].mean(axis=1)
        w = k / (k + self.alpha)
        out: FloatArray = w * local + (1.0 - w) * self.prior_.predict_proba(X)
        return out


class CalibratedLogistic:
    """One L2-regularized logistic regression per model on ``[TF-IDF | task]``, calibrated by
    Platt scaling ``P = σ(a·z + b)`` fitted on ``cv``-fold out-of-fold decision values z.

    Prediction is one sparse product for all models: ``Z = X·W + w₀`` (vectorized).
    ``oof_`` holds the calibrated out-of-fold probabilities of the training rows.
    A model that is always right (or always wrong) in training predicts its training rate.

    Examples
    --------
    >>> f = TextFeaturizer(min_df=1).fit(["good"] * 6 + ["bad"] * 6, ["t"] * 12)
    >>> X = f.transform(["good"] * 6 + ["bad"] * 6, ["t"] * 12)
    >>> y = [[1.0]] * 6 + [[0.0]] * 6
    >>> est = CalibratedLogistic(cv=3).fit(X, y)
    >>> P = est.predict_proba(f.transform(["good", "bad"], ["t", "t"]))
    >>> bool(P[0, 0] > 0.5 > P[1, 0])
    True
    """

    def __init__(self, C: float = 1.0, cv: int = 3, task_weight: float = 1.0, seed: int = 0):
        self.C = C
        self.cv = cv
        self.task_weight = task_weight
        self.seed = seed

    def fit(self, X: Features, Q: npt.ArrayLike) -> CalibratedLogistic:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        y = _check_fit(X, Q, "CalibratedLogistic")
        if not np.all((y == 0) | (y == 1)):
            y = (y >= 0.5).astype(np.float64)
        D = X.design(self.task_weight)
        m = y.shape[1]
        self.coef_ = np.zeros((D.shape[1], m))
        self.intercept_ = np.zeros(m)
        self.platt_ = np.tile([1.0, 0.0], (m, 1))
        self.constant_ = np.full(m, np.nan)
        oof_z = np.zeros_like(y)
        for j in range(m):
            yj = y[:, j].astype(int)
            n_pos = int(yj.sum())
            if n_pos == 0 or n_pos == yj.size:
                self.constant_[j] = float(n_pos > 0)
                continue
            lr = LogisticRegression(C=self.C, max_iter=2000)
            lr.fit(D, yj)
            self.coef_[:, j] = lr.coef_[0]
            self.intercept_[j] = lr.intercept_[0]
            n_folds = min(self.cv, n_pos, yj.size - n_pos)
            if n_folds >= 2:
                skf = StratifiedKFold(n_folds, shuffle=True, random_state=self.seed)
                z = cross_val_predict(
                    LogisticRegression(C=self.C, max_iter=2000),
                    D,
                    yj,
                    cv=skf,
                    method="decision_function",
                )
                platt = LogisticRegression(C=1e4, max_iter=1000).fit(z[:, None], yj)
                self.platt_[j] = (platt.coef_[0, 0], platt.intercept_[0])
                oof_z[:, j] = z
            else:
                oof_z[:, j] = D @ self.coef_[:, j] + self.intercept_[j]
        self.coef_csc_ = sp.csc_matrix(self.coef_)
        p = _sigmoid(self.platt_[:, 0] * oof_z + self.platt_[:, 1])
        self.oof_ = np.where(np.isnan(self.constant_), p, self.constant_)
        return self

    def decision_function(self, X: Features) -> FloatArray:
        z = X.design(self.task_weight) @ self.coef_csc_
        out: FloatArray = np.asarray(z.todense() if sp.issparse(z) else z) + self.intercept_
        return out

    def predict_proba(self, X: Features) -> FloatArray:
        z = self.decision_function(X)
        p = _sigmoid(self.platt_[:, 0] * z + self.platt_[:, 1])
        out: FloatArray = np.where(np.isnan(self.constant_), p, self.constant_)
        return out


def folds(n: int, k: int, seed: int) -> list[npt.NDArray[np.intp]]:
    """``k`` disjoint test folds covering ``range(n)`` (a seeded permutation, dealt round-robin).

    Examples
    --------
    >>> sorted(np.concatenate(folds(5, 2, seed=0)).tolist())
    [0, 1, 2, 3, 4]
    """
    perm = np.random.default_rng(seed).permutation(n)
    return [perm[i::k] for i in range(k)]


def out_of_fold(
    make: Callable[[], QualityEstimator], X: Features, Q: FloatArray, k: int = 5, seed: int = 0
) -> FloatArray:
    """Out-of-fold predictions of a fresh estimator from ``make`` (k folds, seeded)."""
    out = np.zeros_like(Q, dtype=np.float64)
    for test in folds(X.n, k, seed):
        train = np.setdiff1d(np.arange(X.n), test)
        out[test] = make().fit(X.rows(train), Q[train]).predict_proba(X.rows(test))
    return out


class ShrunkQuality:
    """Shrinkage of a text model toward the task prior: ``q̂ = w·q̂_base + (1 − w)·q̂_prior``.

    With ``weight=None`` the weight is the grid value minimizing the out-of-fold Brier score
    (the base's own ``oof_`` when it has one, else ``cv`` folds), so a text model that does
    not beat the prior gets ``w = 0`` and the router falls back to the population choice.

    Examples
    --------
    >>> f = TextFeaturizer(min_df=1).fit(["a", "b"] * 10, ["t"] * 20)
    >>> X = f.transform(["a", "b"] * 10, ["t"] * 20)
    >>> est = ShrunkQuality(KNNQuality(k=1), weight=0.5).fit(X, [[1.0], [0.0]] * 10)
    >>> est.predict_proba(f.transform(["a"], ["t"])).round(3).tolist()
    [[0.75]]
    """

    def __init__(
        self,
        base: QualityEstimator | None = None,
        *,
        weight: float | None = None,
        cv: int = 5,
        grid: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        seed: int = 0,
    ) -> None:
        self.base = base
        self.weight = weight
        self.cv = cv
        self.grid = tuple(grid)
        self.seed = seed

    def _base(self) -> QualityEstimator:
        if self.base is None:
            return CalibratedLogistic(seed=self.seed)
        fresh: QualityEstimator = type(self.base)(**init_params(self.base))
        return fresh

    def fit(self, X: Features, Q: npt.ArrayLike) -> ShrunkQuality:
        y = _check_fit(X, Q, "ShrunkQuality")
        self.prior_ = TaskPrior().fit(X, y)
        self.base_: QualityEstimator | None = None
        if self.weight is None and X.n >= 2 * self.cv:
            self.base_ = self._base().fit(X, y)
            base_oof = getattr(self.base_, "oof_", None)
            if base_oof is None or np.shape(base_oof) != y.shape:
                base_oof = out_of_fold(self._base, X, y, self.cv, self.seed)
            prior_oof = out_of_fold(TaskPrior, X, y, self.cv, self.seed)
            scores = [
                float(np.mean((w * base_oof + (1 - w) * prior_oof - y) ** 2)) for w in self.grid
            ]
            # the smallest weight within 0.01% of the best Brier score: ties favour the prior
            tol = 1e-4 * min(scores)
            self.weight_ = float(
                min(w for w, sc in zip(self.grid, scores, strict=True) if sc <= min(scores) + tol)
            )
            self.oof_ = self.weight_ * base_oof + (1 - self.weight_) * prior_oof
        else:
            self.weight_ = 1.0 if self.weight is None else float(self.weight)
            self.base_ = self._base().fit(X, y) if self.weight_ > 0 else None
        if self.weight_ == 0:
            self.base_ = None
        return self

    def predict_proba(self, X: Features) -> FloatArray:
        prior = self.prior_.predict_proba(X)
        if self.base_ is None:
            return prior
        out: FloatArray = self.weight_ * self.base_.predict_proba(X) + (1 - self.weight_) * prior
        return out


def init_params(est: Any) -> dict[str, Any]:
    """The constructor arguments of ``est`` (read back from its attributes), to build an
    unfitted copy with ``type(est)(**init_params(est))``."""
    import inspect

    names = [p for p in inspect.signature(type(est).__init__).parameters if p != "self"]
    return {p: getattr(est, p) for p in names if hasattr(est, p)}


#: Quality estimators by name.
QUALITY_ESTIMATORS: dict[str, Callable[..., QualityEstimator]] = {
    "prior": TaskPrior,
    "knn": KNNQuality,
    "logistic": CalibratedLogistic,
    "shrunk": ShrunkQuality,
}


def make_quality_estimator(name: str, **params: Any) -> QualityEstimator:
    """A quality estimator from :data:`QUALITY_ESTIMATORS` by name.

    Examples
    --------
    >>> type(make_quality_estimator("knn", k=5)).__name__
    'KNNQuality'
    """
    try:
        factory = QUALITY_ESTIMATORS[name]
    except KeyError:
        known = ", ".join(sorted(QUALITY_ESTIMATORS))
        raise InputError(f"quality estimator: unknown '{name}' (known: {known})") from None
    return factory(**params)


class LinearCostEstimator:
    """ĉ_m(x) (or l̂_m(x)) linear in prompt length within each task:
    ``ĉ_m(x) = a_{m,t} + b_{m,t}·len(x)``, least squares per model, floored at the smallest
    value seen in training for that model (a price is never negative). Prompts of an unseen
    task use the pooled fit over all tasks.

    Cost varies with the prompt through its input and output token counts; the length of
    the prompt is the observable proxy.

    Examples
    --------
    >>> X = Features(sp.csr_matrix((3, 1)), np.ones((3, 1)), np.array([1.0, 2.0, 3.0]))
    >>> est = LinearCostEstimator().fit(X, [[2.0], [3.0], [4.0]])
    >>> new = Features(sp.csr_matrix((1, 1)), np.ones((1, 1)), np.array([4.0]))
    >>> est.predict(new).round(6).tolist()
    [[5.0]]
    """

    def __init__(self, ridge: float = 1e-9) -> None:
        self.ridge = ridge

    def fit(self, X: Features, C: npt.ArrayLike) -> LinearCostEstimator:
        y = _check_fit(X, C, "LinearCostEstimator")
        T = X.task.shape[1]
        Z = np.hstack([X.task, X.task * X.length[:, None]])
        A = Z.T @ Z + self.ridge * np.eye(2 * T)
        self.coef_ = np.linalg.solve(A, Z.T @ y) if T else np.zeros((0, y.shape[1]))
        Zp = np.column_stack([np.ones(X.n), X.length])
        self.pooled_ = np.linalg.solve(Zp.T @ Zp + self.ridge * np.eye(2), Zp.T @ y)
        self.floor_ = y.min(axis=0)
        return self

    def predict(self, X: Features) -> FloatArray:
        Z = np.hstack([X.task, X.task * X.length[:, None]])
        seen = X.task.sum(axis=1, keepdims=True) > 0
        pooled = np.column_stack([np.ones(X.n), X.length]) @ self.pooled_
        raw = np.where(seen, Z @ self.coef_, pooled)
        out: FloatArray = np.maximum(raw, self.floor_)
        return out


class TokenLatencyEstimator:
    """l̂_m(x) from token counts and a per-model speed table, for data without latency:

    ``l̂_m(x) = ttft_m + n_in(x)/prefill_m + n_out/decode_m``

    with n_in(x) ≈ len(prompt)/4 tokens and ``output_tokens`` expected output tokens.
    ``speeds`` maps each model to ``{"ttft": s, "prefill": tokens/s, "decode": tokens/s}``
    (measured or published figures supplied by the user).

    Examples
    --------
    >>> est = TokenLatencyEstimator({"m": {"ttft": 0.2, "prefill": 1000, "decode": 50}},
    ...                             output_tokens=100)
    >>> X = Features(sp.csr_matrix((1, 1)), np.ones((1, 1)), np.array([4.0]))  # 4000 chars
    >>> est.fit(X, ["m"]).predict(X).round(6).tolist()
    [[3.2]]
    """

    def __init__(self, speeds: Mapping[str, Mapping[str, float]], output_tokens: int = 256):
        self.speeds = speeds
        self.output_tokens = output_tokens

    def fit(self, X: Features, models: Sequence[str]) -> TokenLatencyEstimator:
        rows = []
        for mo in models:
            spec = self.speeds.get(mo)
            if spec is None:
                raise InputError(f"speed table: no entry for model '{mo}'")
            try:
                ttft, pre, dec = (float(spec[k]) for k in ("ttft", "prefill", "decode"))
            except KeyError as e:
                raise InputError(f"speed table '{mo}': missing field {e}") from None
            if ttft < 0 or pre <= 0 or dec <= 0:
                raise InputError(f"speed table '{mo}': need ttft >= 0 and speeds > 0")
            rows.append((ttft, pre, dec))
        self.table_ = np.array(rows, dtype=np.float64).reshape(len(models), 3)
        return self

    def predict(self, X: Features) -> FloatArray:
        n_in = X.length * 1000.0 / 4.0
        t = self.table_
        out: FloatArray = (
            t[:, 0][None, :] + n_in[:, None] / t[:, 1][None, :] + self.output_tokens / t[:, 2]
        )
        return out


@dataclass(frozen=True)
class CalibrationReport:
    """Brier score per model and a reliability table (predicted vs observed by bin).

    ``bins`` rows are ``(low, high, count, mean_predicted, observed_rate)`` pooled over
    models; ``brier`` is the mean squared error of q̂ against the 0/1 outcome.
    """

    models: tuple[str, ...]
    brier: tuple[float, ...]
    brier_prior: tuple[float, ...]
    bins: tuple[tuple[float, float, int, float, float], ...]

    @property
    def mean_brier(self) -> float:
        return float(np.mean(self.brier))

    def as_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "brier": list(self.brier),
            "brier_prior": list(self.brier_prior),
            "mean_brier": self.mean_brier,
            "reliability": [
                {"low": a, "high": b, "count": c, "predicted": p, "observed": o}
                for a, b, c, p, o in self.bins
            ],
        }


def calibration_report(
    predicted: npt.ArrayLike,
    observed: npt.ArrayLike,
    models: Sequence[str],
    *,
    reference: npt.ArrayLike | None = None,
    n_bins: int = 10,
) -> CalibrationReport:
    """Brier score ``mean((q̂ − Q)²)`` per model and a reliability table with ``n_bins``
    equal-width bins; ``reference`` (e.g. the task prior) gives a baseline Brier score.

    Examples
    --------
    >>> r = calibration_report([[0.9], [0.1]], [[1.0], [0.0]], ["m"], n_bins=2)
    >>> round(r.brier[0], 3), [b[2] for b in r.bins]
    (0.01, [1, 1])
    """
    P = np.asarray(predicted, dtype=np.float64)
    Y = np.asarray(observed, dtype=np.float64)
    if P.shape != Y.shape or P.ndim != 2 or P.shape[1] != len(models):
        raise InputError("calibration_report: predicted and observed must be (n, m) alike")
    brier = tuple(float(x) for x in np.mean((P - Y) ** 2, axis=0))
    ref = np.asarray(reference, dtype=np.float64) if reference is not None else None
    brier_ref = tuple(float(x) for x in np.mean((ref - Y) ** 2, axis=0)) if ref is not None else ()
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(P.ravel(), edges[1:-1]), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        sel = which == b
        c = int(sel.sum())
        if c:
            bins.append(
                (
                    float(edges[b]),
                    float(edges[b + 1]),
                    c,
                    float(P.ravel()[sel].mean()),
                    float(Y.ravel()[sel].mean()),
                )
            )
    return CalibrationReport(tuple(models), brier, brier_ref, tuple(bins))
