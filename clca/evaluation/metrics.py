"""Metrics on probability vectors (plain functions, numpy in, float out).

Conventions (all vectors are over the same K options, in the survey's order, each summing to 1):

* ``kl_divergence(human, model)``: KL(human ‖ model) in nats. Smoothing: ``eps`` (default 1e-6) is added to
  every *model* probability and the model vector is renormalised, so a zero model probability costs
  ``log(1/eps)``-sized penalties instead of infinity; human zeros contribute 0 (0·log 0 = 0).
* ``js_distance``: Jensen–Shannon distance with base-2 logs (scipy), in [0, 1]; needs no smoothing.
* ``emd_ordinal``: Wasserstein-1 between the two distributions on positions 0..K−1, divided by (K−1), so in
  [0, 1]; only meaningful for ordinal scales.
* ``argmax_match``: 1.0 when the model's most likely option equals the human majority option (first index on
  ties), else 0.0 (``majority_match`` in the records; the paper's ``accuracy`` is individual-level, see
  :mod:`clca.evaluation.runner`).
* ``expected_answer``: Σ position·p with positions 1..K; ``spearman`` correlates those across questions.
* ``clca_kl``: the CLCA paper's code, exactly: ``torch.nn.functional.kl_div(log_softmax(model_ext),
  human_ext, reduction="batchmean")`` on 1×(K+1) vectors whose last entry is the share of unparseable answers
  (0 in log-prob mode). That is Σ human·(log human − log_softmax(model)) — KL(human ‖ softmax(model)), where
  softmax is applied to a probability vector: NOT a true divergence (identical inputs score > 0).
* ``bootstrap_ci``: percentile bootstrap of the mean over questions, ``n_resamples`` (default 1000) resamples
  with a seeded numpy Generator, 95% by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import spearmanr

KL_EPS = 1e-6
N_BOOTSTRAP = 1000

Vector = Sequence[float] | np.ndarray


def _vec(p: Vector, name: str) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector")
    if np.any(a < 0) or not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite and non-negative")
    return a


def _pair(p: Vector, q: Vector) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vec(p, "human"), _vec(q, "model")
    if a.shape != b.shape:
        raise ValueError(f"length mismatch: {a.size} vs {b.size}")
    return a / a.sum(), b / b.sum()


def kl_divergence(human: Vector, model: Vector, eps: float = KL_EPS) -> float:
    """KL(human ‖ model) in nats, with ``eps`` added to the model vector then renormalised."""
    p, q = _pair(human, model)
    q = (q + eps) / (1.0 + eps * q.size)
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def js_distance(human: Vector, model: Vector) -> float:
    """Jensen–Shannon distance (square root of the JS divergence), base 2, in [0, 1]."""
    p, q = _pair(human, model)
    return float(jensenshannon(p, q, base=2.0))


def emd_ordinal(human: Vector, model: Vector) -> float:
    """Wasserstein-1 distance on an ordinal scale of K equally spaced points, normalised by (K−1)."""
    p, q = _pair(human, model)
    if p.size < 2:
        return 0.0
    return float(np.sum(np.abs(np.cumsum(p) - np.cumsum(q))[:-1]) / (p.size - 1))


def argmax_match(human: Vector, model: Vector) -> float:
    """1.0 if the model's most likely option is the human majority option, else 0.0."""
    p, q = _pair(human, model)
    return float(int(np.argmax(p)) == int(np.argmax(q)))


def expected_answer(p: Vector) -> float:
    """Mean position (1..K) under ``p``."""
    a = _vec(p, "distribution")
    a = a / a.sum()
    return float(np.dot(np.arange(1, a.size + 1), a))


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation; None with fewer than 3 pairs or a constant side."""
    if len(x) != len(y):
        raise ValueError("length mismatch")
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    rho = spearmanr(x, y).statistic
    return None if rho is None or math.isnan(float(rho)) else float(rho)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max()
    return x - m - math.log(float(np.sum(np.exp(x - m))))


def clca_kl(human: Vector, model: Vector, invalid_share: float = 0.0) -> float:
    """CLCA paper code variant ("clca_kl", not a true divergence): see module docstring.

    ``human`` and ``model`` are over the K options; the (K+1)-th entry is 0 for the human side and
    ``invalid_share`` (share of unparseable answers) for the model side. The model vector is used as given
    (a histogram including the invalid bucket sums to 1 together with it).
    """
    p = _vec(human, "human")
    q = _vec(model, "model")
    if p.shape != q.shape:
        raise ValueError(f"length mismatch: {p.size} vs {q.size}")
    p_ext = np.append(p / p.sum(), 0.0)
    q_ext = np.append(q, float(invalid_share))
    logq = _log_softmax(q_ext)
    mask = p_ext > 0  # torch.kl_div: target * (log target - input), 0 where target == 0
    return float(np.sum(p_ext[mask] * (np.log(p_ext[mask]) - logq[mask])))  # batchmean over a batch of 1


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = N_BOOTSTRAP, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean; None for fewer than 2 values."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_resamples, v.size))
    means = v[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def softmax_logprobs(logprobs: Sequence[float]) -> list[float]:
    """Renormalise option log-probabilities into a distribution over the options."""
    a = np.asarray(logprobs, dtype=np.float64)
    if not np.isfinite(a).any():
        return [1.0 / a.size] * a.size
    a = np.where(np.isfinite(a), a, -np.inf)
    e = np.exp(a - a.max())
    return [float(x) for x in e / e.sum()]


def paper_jsd(human: Vector, model: Vector, invalid_share: float = 0.0) -> float:
    """The CLCA paper code's JS distance: ``scipy.spatial.distance.jensenshannon(p_survey, q_model)`` with the
    natural log, on K+1 buckets (the last one the unparseable answers; 0 on the survey side)."""
    p = _vec(human, "human")
    q = _vec(model, "model")
    p_ext = np.append(p / p.sum(), 0.0)
    q_ext = np.append(q, float(invalid_share))
    return float(jensenshannon(p_ext, q_ext / q_ext.sum()))


def question_metrics(
    human: Vector, model: Vector, *, ordinal: bool, invalid_share: float = 0.0
) -> dict[str, float | None]:
    """Every per-question metric. ``model`` is over the K options and sums to 1 − ``invalid_share``: the
    unparseable answers are a (K+1)-th bucket of the model's distribution (the survey's is 0 there) in every
    distribution metric; nothing is dropped, so a model that stops answering scores far worse than a uniform
    one. ``kl``: KL(human ‖ model) over K+1 buckets (the model side smoothed); ``jsd``: JS distance, base 2,
    K+1 buckets; ``emd``: the invalid share costs the whole scale (1), the rest is the ordinal EMD of the valid
    answers; ``majority_match``: the model's most likely of K+1 buckets is the survey's majority option;
    ``clca_kl`` and ``paper_jsd``: the paper code's variants (K+1 buckets, natural log)."""
    m = _vec(model, "model")
    s = float(invalid_share)
    h = _vec(human, "human")
    h_ext = np.append(h / h.sum(), 0.0)
    m_ext = np.append(m, s)
    m_ext = m_ext / m_ext.sum() if m_ext.sum() > 0 else np.append(np.zeros(m.size), 1.0)
    valid = m_ext[:-1]
    m_valid = valid / valid.sum() if valid.sum() > 0 else np.full(m.size, 1.0 / m.size)
    emd = None
    if ordinal:
        emd = (
            (1.0 - float(m_ext[-1])) * emd_ordinal(human, m_valid) + float(m_ext[-1])
            if valid.sum() > 0
            else 1.0
        )
    return {
        "kl": kl_divergence(h_ext, m_ext),
        "jsd": js_distance(h_ext, m_ext),
        "emd": emd,
        # the invalid bucket, when it is the model's most frequent answer, makes the question wrong
        "majority_match": 0.0 if m_ext[-1] > float(valid.max()) else argmax_match(human, m_valid),
        "clca_kl": clca_kl(human, m, s),
        "paper_jsd": paper_jsd(human, m, s),
        "invalid_share": s,
        "expected_model": expected_answer(m_valid),
        "expected_human": expected_answer(human),
    }
