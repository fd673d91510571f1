"""Peer routers, reimplemented from their papers' descriptions, and the router registry.

Every peer follows :class:`margin.routing.router.Router`: ``fit(train)`` then
``route(data, value) -> Routing``. Peers that have a tunable operating point (threshold,
strong-call share, cascade thresholds) tune it per value tier on out-of-fold training
predictions to maximize mean utility ``V·q − c``, so they are compared at their best.

* :class:`BestFixed` — the single model with the best mean training utility at V.
* :class:`Cheapest` — the model with the lowest mean training cost.
* :class:`RandomRouter` — a uniformly random model (seeded).
* :class:`Oracle` — the ex-post optimal model per prompt (needs the realized outcomes).
* :class:`RouterBenchKNN`, :class:`RouterBenchMLP` — RouterBench's predictive routers
  (Hu et al., arXiv 2403.12031): a kNN or MLP predicts each model's success P̂_m(x) and
  the router picks ``argmax_m P̂_m(x)·WTP − c_m`` with c_m the model's mean cost.
* :class:`RouteLLMThreshold` — RouteLLM (Ong et al., arXiv 2406.18665): a classifier of
  "the strong model wins" and a threshold α set by the share of strong calls.
* :class:`FrugalGPTCascade` — FrugalGPT (Chen et al., arXiv 2305.05176): call models
  cheapest first; a learned scorer of (query, answer) accepts the answer or escalates;
  the model list and thresholds are tuned under a budget.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from margin.core.allocation import allocate_batch
from margin.core.prices import InputError
from margin.routing.data import RoutingDataset
from margin.routing.estimators import TOKEN_PATTERN, KNNQuality, TextFeaturizer, folds
from margin.routing.router import VALUE_TIERS, MarginalRouter, Router, Routing, value_tier

__all__ = [
    "PEERS",
    "ROUTERS",
    "BestFixed",
    "Cheapest",
    "FrugalGPTCascade",
    "Oracle",
    "RandomRouter",
    "RouteLLMThreshold",
    "RouterBenchKNN",
    "RouterBenchMLP",
    "make_router",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


def _values(value: npt.ArrayLike, data: RoutingDataset) -> FloatArray:
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(data.n, float(v))
    if v.shape != (data.n,):
        raise InputError(f"value: must be a scalar or have shape ({data.n},), got {v.shape}")
    return v


def _check_models(router: Any, data: RoutingDataset) -> None:
    if tuple(data.models) != tuple(router.models_):
        raise InputError(
            f"route: data lists models {list(data.models)}, router was fit on "
            f"{list(router.models_)} (use data.select_models)"
        )


def _train_checks(train: RoutingDataset) -> None:
    if train.n == 0 or not train.labeled:
        raise InputError("fit: training data must be non-empty with known quality and cost")


class BestFixed:
    """The single model maximizing mean training utility ``V·q̄_m − c̄_m`` at each V.

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["a", "b"], ["small", "large"],
    ...                                [[1, 1], [0, 1]], [[1.0, 3.0], [1.0, 3.0]])
    >>> r = BestFixed().fit(d)
    >>> r.route(d, 1.0).names(), r.route(d, 10.0).names()
    (['small', 'small'], ['large', 'large'])
    """

    def fit(self, train: RoutingDataset) -> BestFixed:
        _train_checks(train)
        self.models_ = train.models
        self.mean_quality_ = train.quality.mean(axis=0)
        self.mean_cost_ = train.cost.mean(axis=0)
        return self

    def route(self, data: RoutingDataset, value: npt.ArrayLike) -> Routing:
        _check_models(self, data)
        v = _values(value, data)
        choice = allocate_batch(v, self.mean_quality_, self.mean_cost_).choice
        return Routing(self.models_, choice)


class Cheapest:
    """Always the model with the lowest mean training cost.

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["a"], ["x", "y"], [[0, 1]], [[2.0, 1.0]])
    >>> Cheapest().fit(d).route(d, 5.0).names()
    ['y']
    """

    def fit(self, train: RoutingDataset) -> Cheapest:
        _train_checks(train)
        self.models_ = train.models
        self.index_ = int(np.argmin(train.cost.mean(axis=0)))
        return self

    def route(self, data: RoutingDataset, value: npt.ArrayLike) -> Routing:
        _check_models(self, data)
        return Routing(self.models_, np.full(data.n, self.index_, dtype=np.intp))


class RandomRouter:
    """A uniformly random model per prompt (``numpy.random.default_rng(seed)``).

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["a"] * 400, ["x", "y"], [[0, 1]] * 400, [[1, 1]] * 400)
    >>> c = RandomRouter(seed=1).fit(d).route(d, 1.0).choice
    >>> bool(150 < (c == 0).sum() < 250)
    True
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, train: RoutingDataset) -> RandomRouter:
        _train_checks(train)
        self.models_ = train.models
        return self

    def route(self, data: RoutingDataset, value: npt.ArrayLike) -> Routing:
        _check_models(self, data)
        rng = np.random.default_rng(self.seed)
        return Routing(self.models_, rng.integers(0, len(self.models_), data.n).astype(np.intp))


class Oracle:
    """The ex-post optimal model: ``argmax_m V·Q_km − C_km`` on the realized outcomes.

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["a", "b"], ["x", "y"], [[1, 1], [0, 1]],
    ...                                [[1.0, 2.0], [1.0, 2.0]])
    >>> Oracle().fit(d).route(d, 10.0).names()
    ['x', 'y']
    """

    def fit(self, train: RoutingDataset) -> Oracle:
        self.models_ = train.models
        return self

    def route(self, data: RoutingDataset, value: npt.ArrayLike) -> Routing:
        _check_models(self, data)
        if not data.labeled:
            raise InputError("Oracle.route: needs realized quality and cost")
        v = _values(value, data)
        return Routing(self.models_, allocate_batch(v, data.quality, data.cost).choice)


class RouterBenchKNN:
    """RouterBench's kNN router (arXiv 2403.12031, Sec. 4): P̂_m(x) is the mean success of
    the ``k`` nearest training prompts (TF-IDF cosine here, sentence embeddings in the
    paper); route to ``argmax_m P̂_m(x)·WTP − c_m`` with WTP = V and c_m the model's mean
    training cost.

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["cat"] * 3 + ["dog"] * 3, ["x", "y"],
    ...     [[1, 1]] * 3 + [[0, 1]] * 3, [[1.0, 2.0]] * 6)
    >>> RouterBenchKNN(k=3).fit(d).route(d.subset([0, 3]), 10.0).names()
    ['x', 'y']
    """

    def __init__(self, k: int = 40) -> None:
        self.k = k

    def fit(self, train: RoutingDataset) -> RouterBenchKNN:
        _train_checks(train)
        self.models_ = train.models
        self.featurizer_ = TextFeaturizer().fit(train.prompts, train.tasks)
        X = self.featurizer_.transform(train.prompts, train.tasks)
        self.knn_ = KNNQuality(k=min(self.k, train.n), same_task=False).fit(X, train.quality)
        self.mean_cost_ = train.cost.mean(axis=0)
        return self

    def route(self, data: RoutingDataset, value: npt.ArrayLike) -> Routing:
        _check_models(self, data)
        X = self.featurizer_.transform_cached(data.prompts, data.tasks)
        p = self.knn_.predict_proba(X)
        return Routing(
            self.models_, allocate_batch(_values(value, data), p, self.mean_cost_).choice
        )


class RouterBenchMLP:
    """RouterBench's MLP router (arXiv 2403.12031): a multi-label MLP (one hidden layer)
    on prompt features predicts P̂_m(x); route to ``argmax_m P̂_m(x)·WTP − c_m``. Features:
    TF-IDF reduced to ``n_components`` by truncated SVD (the paper uses sentence
    embeddings).

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["cat sat"] * 20 + ["dog ran"] * 20, ["x", "y"],
    ...     [[1, 1]] * 20 + [[0, 1]] * 20, [[1.0, 2.0]] * 40)
    >>> RouterBenchMLP(n_components=2).fit(d).route(d.subset([0, 20]), 10.0).names()
    ['x', 'y']
    """

    def __init__(self, hidden: int = 64, n_components: int = 128, seed: int = 0) -> None:
        self.hidden = hidden
        self.n_components = n_components
        self.seed = seed

    def fit(self, train: RoutingDataset) -> RouterBenchMLP:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.neural_network import MLPClassifier

        _train_checks(train)
        self.models_ = train.models
        self.featurizer_ = TextFeaturizer().fit(train.prompts, train.tasks)
        X = self.featurizer_.transform(train.prompts, train.tasks).design()
        k = max(1, min(self.n_components, X.shape[1] - 1, train.n - 1))
        self.svd_ = TruncatedSVD(k, random_state=self.seed).fit(X)
        Y = (train.quality >= 0.5).astype(int)
        self.constant_ = np.where(Y.min(axis=0) == Y.max(axis=0), Y[0].astype(float), np.nan)
        # a column with a single class would break the multi-label MLP: flip one label
        Y = Y.copy()
        Y[0, ~np.isnan(self.constant_)] = 1 - Y[0, ~np.isnan(self.constant_)]
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.mlp_ = MLPClassifier(
                (self.hidden,), alpha=1e-3, max_iter=300, random_state=self.seed
            ).fit(self.svd_.transform(X), Y)
        self.mean_cost_ = train.cost.mean(axis=0)
        return self

    def predict_proba(self, data: RoutingDataset) -> FloatArray:
        X = self.featurizer_.transform_cached(data.prompts, data.tasks).design()
        p = np.asarray(self.mlp_.predict_proba(self.svd_.transform(X)), dtype=np.float64)
        p = p.reshape(data.n, len(self.models_))
        out: FloatArray = np.where(np.isnan(self.constant_), p, self.constant_)
        return out

    def route(self, data: RoutingDataset, value: npt.ArrayLike) -> Routing:
        _check_models(self, data)
        p = self.predict_proba(data)
        return Routing(
            self.models_, allocate_batch(_values(value, data), p, self.mean_cost_).choice
        )


def _pick_pair(train: RoutingDataset) -> tuple[int, int]:
    q = train.quality.mean(axis=0)
    c = train.cost.mean(axis=0)
    strong = int(np.argmax(q))
    cheap = np.flatnonzero((c <= 0.2 * c[strong]) & (np.arange(train.m) != strong))
    if cheap.size == 0:
        cheap = np.flatnonzero(np.arange(train.m) != strong)
    weak = int(cheap[np.argmax(q[cheap])])
    return strong, weak


#: Shares of strong-model calls searched when calibrating RouteLLM's threshold.
SHARE_GRID: tuple[float, ...] = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))


class RouteLLMThreshold:
    """RouteLLM's two-model threshold router (arXiv 2406.18665).

    A logistic classifier on TF-IDF estimates P(strong wins | x), the label being that the
    strong model answers correctly and the weak one does not; a prompt goes to the strong
    model when the score is at least α. As in the paper, α is calibrated by the share of
    strong calls it produces: for each value tier the share (0, 5%, …, 100%) with the best
    out-of-fold training utility is kept and α is the matching quantile of the training
    scores. ``strong`` / ``weak`` default to the highest-quality model and the best model
    costing at most a fifth of it.

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["easy"] * 20 + ["hard"] * 20, ["weak", "strong"],
    ...     [[1, 1]] * 20 + [[0, 1]] * 20, [[0.1, 1.0]] * 40)
    >>> RouteLLMThreshold().fit(d).route(d.subset([0, 20]), 10.0).names()
    ['weak', 'strong']
    """

    def __init__(
        self, strong: str | None = None, weak: str | None = None, cv: int = 5, seed: int = 0
    ) -> None:
        self.strong = strong
        self.weak = weak
        self.cv = cv
        self.seed = seed

    def _scorer(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=2000)

    def fit(self, train: RoutingDataset) -> RouteLLMThreshold:
        _train_checks(train)
        self.models_ = train.models
        s, w = _pick_pair(train)
        if self.strong is not None:
            s = train.models.index(self.strong) if self.strong in train.models else -1
        if self.weak is not None:
            w = train.models.index(self.weak) if self.weak in train.models else -1
        if s < 0 or w < 0 or s == w:
            raise InputError("RouteLLMThreshold: 'strong' and 'weak' must be two trained models")
        self.strong_, self.weak_ = s, w
        self.featurizer_ = TextFeaturizer().fit(train.prompts, train.tasks)
        D = self.featurizer_.transform(train.prompts, train.tasks).design()
        y = ((train.quality[:, s] >= 0.5) & (train.quality[:, w] < 0.5)).astype(int)
        self.constant_: float | None = None
        if y.min() == y.max():
            self.constant_ = float(y[0])
            oof = np.full(train.n, self.constant_)
        else:
            self.clf_ = self._scorer().fit(D, y)
            oof = np.zeros(train.n)
            for test in folds(train.n, self.cv, self.seed):
                tr = np.setdiff1d(np.arange(train.n), test)
                if y[tr].min() == y[tr].max():
                    oof[test] = y[tr][0]
                    continue
                oof[test] = self._scorer().fit(D[tr], y[tr]).predict_proba(D[test])[:, 1]
        self.alpha_ = np.zeros(len(VALUE_TIERS))
        self.share_ = np.zeros(len(VALUE_TIERS))
        for t, v in enumerate(VALUE_TIERS):
            u_s = v * train.quality[:, s] - train.cost[:, s]
            u_w = v * train.quality[:, w] - train.cost[:, w]
            best, best_u = 0.0, -np.inf
            for share in SHARE_GRID:
                alpha = self._alpha(oof, share)
                u = np.where(oof >= alpha, u_s, u_w).mean()
                if u > best_u + 1e-15:
                    best, best_u = share, u
            self.share_[t] = best
            self.alpha_[t] = self._alpha(oof, best)
        return self

    @staticmethod
    def _alpha(scores: FloatArray, share: float) -> float:
        if share <= 0.0:
            return float(np.inf)
        if share >= 1.0:
            return float(-np.inf)
        return float(np.quantile(scores, 1.0 - share))

    def score(self, data: RoutingDataset) -> FloatArray:
        """P̂(strong wins | x) for each prompt."""
        if self.constant_ is not None:
            return np.full(data.n, self.constant_)
        D = self.featurizer_.transform_cached(data.prompts, data.tasks).design()
        out: FloatArray = self.clf_.predict_proba(D)[:, 1]
        return out

    def route(self, data: RoutingDataset, value: npt.ArrayLike) -> Routing:
        _check_models(self, data)
        alpha = self.alpha_[value_tier(_values(value, data))]
        choice = np.where(self.score(data) >= alpha, self.strong_, self.weak_).astype(np.intp)
        return Routing(self.models_, choice)


class FrugalGPTCascade:
    """FrugalGPT's LLM cascade (arXiv 2305.05176, Sec. 3).

    Models are called in increasing order of cost; after each call a scorer g(x, answer)
    estimates the answer's reliability and the cascade stops when it is at least the
    stage's threshold, else escalates (the last model is always accepted). Every model
    called is paid for. The scorer is one logistic regression per model on the TF-IDF of
    the prompt tail and of the model's answer (the prompt alone when the data has no
    answers). The model list (up to ``max_length`` models from the training cost-quality
    frontier) and the thresholds are chosen per value tier to maximize out-of-fold training
    utility ``V·q − Σ c`` — the Lagrangian form of the paper's budget constraint.

    Examples
    --------
    >>> d = RoutingDataset.from_arrays(["q"] * 40, ["cheap", "big"],
    ...     [[1, 1]] * 20 + [[0, 1]] * 20, [[0.1, 1.0]] * 40,
    ...     tasks=["t"] * 40)
    >>> d = RoutingDataset(d.sample_ids, d.prompts, d.tasks, d.models, d.quality, d.cost,
    ...     responses=(("sure", "ok"),) * 20 + (("unsure", "ok"),) * 20)
    >>> r = FrugalGPTCascade().fit(d).route(d.subset([0, 20]), 10.0)
    >>> r.names(), r.called.tolist()
    (['cheap', 'big'], [[True, False], [True, True]])
    """

    THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

    def __init__(self, max_length: int = 3, max_models: int = 6, cv: int = 3, seed: int = 0):
        self.max_length = max_length
        self.max_models = max_models
        self.cv = cv
        self.seed = seed

    def _design(
        self, data: RoutingDataset, j: int, P: sp.csr_matrix | None = None
    ) -> sp.csr_matrix:
        if P is None:
            P = self.prompt_vec_.transform([p[-1500:] for p in data.prompts])
        if data.responses is None or self.answer_vec_ is None:
            return P.tocsr()
        A = self.answer_vec_.transform([r[j] for r in data.responses])
        out: sp.csr_matrix = sp.hstack([P, A], format="csr")
        return out

    def fit(self, train: RoutingDataset) -> FrugalGPTCascade:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        _train_checks(train)
        self.models_ = train.models
        min_df = 2 if train.n >= 20 else 1
        self.prompt_vec_ = TfidfVectorizer(
            sublinear_tf=True, min_df=min_df, max_features=20_000, token_pattern=TOKEN_PATTERN
        )
        try:
            self.prompt_vec_.fit([p[-1500:] for p in train.prompts])
        except ValueError:  # too few repeated words for min_df
            self.prompt_vec_.set_params(min_df=1)
            try:
                self.prompt_vec_.fit([p[-1500:] for p in train.prompts])
            except ValueError:
                raise InputError("prompts: no words to build text features from") from None
        self.answer_vec_: Any = None
        if train.responses is not None:
            self.answer_vec_ = TfidfVectorizer(
                sublinear_tf=True, min_df=1, max_features=20_000, token_pattern=TOKEN_PATTERN
            )
            try:
                self.answer_vec_.fit([a for r in train.responses for a in r])
            except ValueError:  # answers without words: score on the prompt alone
                self.answer_vec_ = None
        q, c = train.quality.mean(axis=0), train.cost.mean(axis=0)
        order = np.argsort(c, kind="stable")
        frontier = [
            int(j) for j in order if q[j] > max((q[i] for i in order if c[i] < c[j]), default=-1.0)
        ]
        self.frontier_ = tuple(frontier[-self.max_models :])
        Y = (train.quality >= 0.5).astype(int)
        oof = np.zeros((train.n, train.m))
        self.scorers_: dict[int, Any] = {}
        self.constant_: dict[int, float] = {}
        for j in self.frontier_:
            D = self._design(train, j)
            y = Y[:, j]
            if y.min() == y.max():
                self.constant_[j] = float(y[0])
                oof[:, j] = y[0]
                continue
            self.scorers_[j] = LogisticRegression(C=1.0, max_iter=2000).fit(D, y)
            for test in folds(train.n, self.cv, self.seed):
                tr = np.setdiff1d(np.arange(train.n), test)
                if y[tr].min() == y[tr].max():
                    oof[test, j] = y[tr][0]
                    continue
                lr = LogisticRegression(C=1.0, max_iter=2000).fit(D[tr], y[tr])
                oof[test, j] = lr.predict_proba(D[test])[:, 1]
        self.plans_: list[tuple[tuple[int, ...], tuple[float, ...]]] = []
        cands = self._candidates()
        for v in VALUE_TIERS:
            u = v * train.quality - train.cost
            best_plan, best_u = cands[0], -np.inf
            for plan in cands:
                mean_u = self._utility(plan, oof, u, train.cost).mean()
                if mean_u > best_u + 1e-15:
                    best_plan, best_u = plan, mean_u
            self.plans_.append(best_plan)
        return self

    def _candidates(self) -> list[tuple[tuple[int, ...], tuple[float, ...]]]:
        out: list[tuple[tuple[int, ...], tuple[float, ...]]] = [((j,), ()) for j in self.frontier_]
        for length in range(2, self.max_length + 1):
            for chain in itertools.combinations(self.frontier_, length):
                for th in itertools.product(self.THRESHOLDS, repeat=length - 1):
                    out.append((chain, th))
        return out

    @staticmethod
    def _run(
        plan: tuple[tuple[int, ...], tuple[float, ...]], scores: FloatArray
    ) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        chain, th = plan
        n = scores.shape[0]
        choice = np.full(n, chain[-1], dtype=np.intp)
        called = np.zeros((n, scores.shape[1]), dtype=bool)
        open_ = np.ones(n, dtype=bool)
        for stage, j in enumerate(chain):
            called[open_, j] = True
            if stage == len(chain) - 1:
                break
            accept = open_ & (scores[:, j] >= th[stage])
            choice[accept] = j
            open_ &= ~accept
        return choice, called

    def _utility(
        self,
        plan: tuple[tuple[int, ...], tuple[float, ...]],
        scores: FloatArray,
        u: FloatArray,
        cost: FloatArray,
    ) -> FloatArray:
        choice, called = self._run(plan, scores)
        rows = np.arange(u.shape[0])
        # u already subtracts the chosen model's cost; add the other called models' costs
        extra = np.where(called, cost, 0.0).sum(axis=1) - cost[rows, choice]
        out: FloatArray = u[rows, choice] - extra
        return out

    def scores(self, data: RoutingDataset) -> FloatArray:
        """g(x, answer_m) for the frontier models (0 elsewhere)."""
        out = np.zeros((data.n, len(self.models_)))
        P = self.prompt_vec_.transform([p[-1500:] for p in data.prompts])
        for j in self.frontier_:
            if j in self.constant_:
                out[:, j] = self.constant_[j]
            else:
                out[:, j] = self.scorers_[j].predict_proba(self._design(data, j, P))[:, 1]
        return out

    def route(self, data: RoutingDataset, value: npt.ArrayLike) -> Routing:
        _check_models(self, data)
        tiers = value_tier(_values(value, data))
        s = self.scores(data)
        choice = np.zeros(data.n, dtype=np.intp)
        called = np.zeros((data.n, len(self.models_)), dtype=bool)
        for t in np.unique(tiers):
            rows = np.flatnonzero(tiers == t)
            ch, ca = self._run(self.plans_[int(t)], s[rows])
            choice[rows], called[rows] = ch, ca
        return Routing(self.models_, choice, called)


#: Peer routers by name.
PEERS: dict[str, Callable[..., Router]] = {
    "best_fixed": BestFixed,
    "cheapest": Cheapest,
    "random": RandomRouter,
    "oracle": Oracle,
    "routerbench_knn": RouterBenchKNN,
    "routerbench_mlp": RouterBenchMLP,
    "routellm_threshold": RouteLLMThreshold,
    "frugalgpt_cascade": FrugalGPTCascade,
}

#: Every router by name: ``marginal`` (ours, Eq. 4) and the peers.
ROUTERS: dict[str, Callable[..., Router]] = {"marginal": MarginalRouter, **PEERS}


def make_router(name: str, **params: Any) -> Router:
    """A router from :data:`ROUTERS` by name.

    Examples
    --------
    >>> type(make_router("cheapest")).__name__
    'Cheapest'
    """
    try:
        factory = ROUTERS[name]
    except KeyError:
        known = ", ".join(sorted(ROUTERS))
        raise InputError(f"router: unknown '{name}' (known: {known})") from None
    return factory(**params)


def fit_routers(names: Sequence[str], train: RoutingDataset) -> dict[str, Router]:
    """Fit the named routers on ``train``."""
    return {name: make_router(name).fit(train) for name in names}
