"""q̂, ĉ estimators: hand-computed priors, learned signal, shrinkage, calibration."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from margin.core.prices import InputError
from margin.routing.estimators import (
    CalibratedLogistic,
    Features,
    KNNQuality,
    LinearCostEstimator,
    ShrunkQuality,
    TaskPrior,
    TextFeaturizer,
    calibration_report,
    make_quality_estimator,
)


def feats(data):
    f = TextFeaturizer().fit(data.prompts, data.tasks)
    return f, f.transform(data.prompts, data.tasks)


def test_task_prior_is_beta_shrunk_mean():
    X = Features(sp.csr_matrix((4, 1)), np.array([[1.0, 0], [1, 0], [1, 0], [0, 1]]), np.ones(4))
    Q = np.array([[1.0], [1.0], [0.0], [0.0]])
    p = TaskPrior(alpha=1.0).fit(X, Q)
    # population 0.5; task 0: (2 + 0.5)/(3 + 1) = 0.625; task 1: (0 + 0.5)/(1 + 1) = 0.25
    assert p.predict_proba(X)[:, 0].tolist() == [0.625, 0.625, 0.625, 0.25]
    unseen = Features(sp.csr_matrix((1, 1)), np.zeros((1, 2)), np.ones(1))
    assert p.predict_proba(unseen).tolist() == [[0.5]]


def test_knn_and_logistic_learn_the_difficulty_word(synth):
    d = synth(120)
    f, X = feats(d)
    test = f.transform(
        ["easy simple sum about poetry", "hard tricky proof about poetry"], ["words", "words"]
    )
    for est in (KNNQuality(k=10), CalibratedLogistic(), ShrunkQuality()):
        p = est.fit(X, d.quality).predict_proba(test)
        assert p.shape == (2, 3)
        assert p[0, 0] > 0.8 > 0.2 > p[1, 0], type(est).__name__  # small: easy yes, hard no
        assert p[1, 2] > 0.8  # large solves both


def test_shrinkage_collapses_to_prior_on_noise():
    rng = np.random.default_rng(0)
    prompts = [f"token{rng.integers(1000)} other{rng.integers(1000)}" for _ in range(200)]
    d_q = (rng.random((200, 2)) < [0.3, 0.8]).astype(float)
    f = TextFeaturizer().fit(prompts, ["t"] * 200)
    X = f.transform(prompts, ["t"] * 200)
    est = ShrunkQuality().fit(X, d_q)
    fresh = [f"token{rng.integers(1000)} other{rng.integers(1000)}" for _ in range(50)]
    p = est.predict_proba(f.transform(fresh, ["t"] * 50))
    # no signal in the text: every prediction stays near the population rate
    assert np.abs(p - d_q.mean(axis=0)).mean() < 0.03
    assert 0.0 <= est.weight_ <= 1.0


@settings(max_examples=10, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from([0.0, 1.0]), min_size=2, max_size=2), min_size=8, max_size=30)
)
def test_probabilities_stay_in_unit_interval(rows):
    Q = np.array(rows)
    n = len(rows)
    prompts = [f"w{k % 3} v{k % 5}" for k in range(n)]
    f = TextFeaturizer(min_df=1).fit(prompts, ["t"] * n)
    X = f.transform(prompts, ["t"] * n)
    for name in ("prior", "knn", "logistic"):
        p = make_quality_estimator(name).fit(X, Q).predict_proba(X)
        assert np.all((p >= 0) & (p <= 1)), name


def test_linear_cost_estimator_recovers_a_line_per_task():
    task = np.array([[1.0, 0], [1, 0], [1, 0], [0, 1], [0, 1]])
    length = np.array([1.0, 2.0, 4.0, 1.0, 3.0])
    C = np.column_stack([0.5 + 0.25 * length * task[:, 0] + 2 * task[:, 1]])
    X = Features(sp.csr_matrix((5, 1)), task, length)
    est = LinearCostEstimator().fit(X, C)
    new = Features(sp.csr_matrix((2, 1)), np.array([[1.0, 0], [0, 1]]), np.array([8.0, 8.0]))
    np.testing.assert_allclose(est.predict(new)[:, 0], [0.5 + 2.0, 2.5], atol=1e-6)
    with pytest.raises(InputError, match="targets"):
        est.fit(X, C[:3])


def test_calibration_report_hand_computed():
    P = np.array([[0.9, 0.2], [0.1, 0.6]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    r = calibration_report(P, Y, ["a", "b"], reference=np.full((2, 2), 0.5), n_bins=2)
    assert r.brier == pytest.approx((0.01, (0.04 + 0.16) / 2))
    assert r.brier_prior == pytest.approx((0.25, 0.25))
    # bins [0, .5): 0.2, 0.1 -> observed 0/2; [.5, 1]: 0.9, 0.6 -> observed 2/2
    assert [(b[2], b[4]) for b in r.bins] == [(2, 0.0), (2, 1.0)]
    assert r.as_dict()["mean_brier"] == pytest.approx(r.mean_brier)
