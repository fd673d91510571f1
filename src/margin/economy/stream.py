"""The task stream of an economy: coding-agent tasks plus chat and long-context traffic.

One seeded draw per :class:`~margin.economy.config.EconomyConfig`; every regime runs on
the same draw (common random numbers: the hidden depth of a task, the uniforms deciding
its success, test detection and human catch, and its asynchronous trainer lag), so that
regime differences are not sampling noise.

* coding tasks arrive as a Poisson process (``n_coding`` uniform arrival times over the
  horizon); V is lognormal; the risk class is uniform over
  :data:`margin.agent.simulator.RISK_CLASSES` (loss L of a wrong merged patch and its
  irreversible share φ); the hidden depth d is drawn from the agent layer's
  :class:`~margin.agent.controller.EpisodeModel` prior and the deadline is lognormal
  around 150 steps, as in :func:`margin.agent.simulator.sample_tasks`;
* chat and long-context requests come from :func:`margin.serving.traces.synthetic_trace`
  (Poisson arrivals, lognormal lengths calibrated in the config).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from margin.agent.controller import EpisodeModel
from margin.agent.simulator import RISK_CLASSES
from margin.economy.config import EconomyConfig
from margin.serving.traces import Trace, synthetic_trace

__all__ = ["BACKGROUND_TENANTS", "TaskStream", "draw_stream"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Tenant names of the background traffic, in :class:`Trace` tenant-index order.
BACKGROUND_TENANTS: tuple[str, str] = ("chat", "long-context")


@dataclass(frozen=True, eq=False)
class TaskStream:
    """One draw of the workload (arrays over the ``n`` coding tasks, sorted by arrival).

    Attributes
    ----------
    arrival, value, loss, irreversible_share, depth : ndarray, shape (n,)
    risk_class : tuple of str
    deadline_steps : ndarray of int
    u_success, u_detect, u_review : ndarray
        Common random numbers of the agent simulator.
    async_lag : ndarray of int
        Extra policy versions between a trace's end and its use by the trainer.
    background : Trace
        Chat (tenant 0) and long-context (tenant 1) requests, with V and λ attached.
    """

    arrival: FloatArray
    value: FloatArray
    loss: FloatArray
    irreversible_share: FloatArray
    risk_class: tuple[str, ...]
    depth: FloatArray
    deadline_steps: IntArray
    u_success: FloatArray
    u_detect: FloatArray
    u_review: FloatArray
    async_lag: IntArray
    background: Trace

    @property
    def n(self) -> int:
        return int(self.arrival.size)


def _background(config: EconomyConfig, rng: np.random.Generator) -> Trace:
    parts: list[tuple[int, Trace]] = []
    specs = (
        (
            0,
            config.chat_rate,
            config.chat_prompt_mean,
            config.chat_prompt_sigma,
            config.chat_output_mean,
            config.chat_output_sigma,
        ),
        (1, config.long_rate, config.long_prompt_mean, 0.5, config.long_output_mean, 0.5),
    )
    for k_tenant, rate, pm, ps, om, os_ in specs:
        n = int(rng.poisson(rate * config.horizon_s)) if rate > 0 else 0
        if n < 1:
            continue
        t = synthetic_trace(
            n,
            rate,
            prompt_mean=pm,
            prompt_sigma=ps,
            output_mean=om,
            output_sigma=os_,
            max_tokens=16384,
            seed=int(rng.integers(2**31)),
        )
        keep = t.arrival < config.horizon_s
        parts.append((k_tenant, t.take(np.flatnonzero(keep))))
    if not parts:
        return Trace(
            arrival=np.zeros(0),
            prompt=np.zeros(0, dtype=np.int64),
            output=np.zeros(0, dtype=np.int64),
            tenants=BACKGROUND_TENANTS,
        )
    arrival = np.concatenate([t.arrival for _, t in parts])
    prompt = np.concatenate([t.prompt for _, t in parts])
    output = np.concatenate([t.output for _, t in parts])
    tenant = np.concatenate([np.full(len(t), k, dtype=np.int64) for k, t in parts])
    order = np.argsort(arrival, kind="stable")
    values = np.array([config.chat_value, config.long_value])[tenant[order]]
    lam = np.array([config.latency_price_chat, config.latency_price_long])[tenant[order]]
    return Trace(
        arrival=arrival[order],
        prompt=prompt[order],
        output=output[order],
        tenant=tenant[order],
        tenants=BACKGROUND_TENANTS,
        value=values,
        latency_price=lam,
        source="economy",
    )


def draw_stream(config: EconomyConfig) -> TaskStream:
    """Draw the workload of ``config`` (deterministic in ``config.seed``).

    Examples
    --------
    >>> s = draw_stream(EconomyConfig(n_coding=5, horizon_s=60.0, interval_s=30.0, seed=1))
    >>> s.n, bool(np.all(np.diff(s.arrival) >= 0)), s.background.tenants
    (5, True, ('chat', 'long-context'))
    >>> bool(np.array_equal(s.value, draw_stream(EconomyConfig(
    ...     n_coding=5, horizon_s=60.0, interval_s=30.0, seed=1)).value))
    True
    """
    rng = np.random.default_rng(config.seed)
    n = config.n_coding
    em = EpisodeModel()
    arrival = np.sort(rng.uniform(0.0, config.horizon_s, n))
    mu = np.log(config.value_median)
    value = np.exp(mu + config.value_sigma * rng.standard_normal(n))
    names = list(RISK_CLASSES)
    k = rng.integers(0, len(names), n)
    loss = np.array([RISK_CLASSES[names[i]][0] for i in k], dtype=np.float64)
    phi = np.array([RISK_CLASSES[names[i]][1] for i in k], dtype=np.float64)
    depth = em.depth_median * np.exp(em.depth_sigma * rng.standard_normal(n))
    deadline = np.maximum(10, np.round(150 * np.exp(0.5 * rng.standard_normal(n)))).astype(np.intp)
    u = rng.random((3, n))
    lag = (rng.geometric(1.0 / (1.0 + config.mean_async_lag), n) - 1).astype(np.intp)
    return TaskStream(
        arrival=arrival,
        value=value,
        loss=loss,
        irreversible_share=phi,
        risk_class=tuple(names[i] for i in k),
        depth=depth,
        deadline_steps=deadline,
        u_success=u[0],
        u_detect=u[1],
        u_review=u[2],
        async_lag=lag,
        background=_background(config, rng),
    )
