"""Metrics against hand-computed values (including zeros on either side)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clca.evaluation import metrics as M


def test_kl_hand_computed() -> None:
    # 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75)
    assert M.kl_divergence([0.5, 0.5], [0.25, 0.75], eps=0.0) == pytest.approx(0.1438410362, abs=1e-9)
    assert M.kl_divergence([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0, abs=1e-9)


def test_kl_zero_in_model_is_smoothed() -> None:
    # model gives 0 to the human's only answer: q' = eps / (1 + 2 eps)
    expected = math.log((1 + 2e-6) / 1e-6)
    assert M.kl_divergence([1.0, 0.0], [0.0, 1.0]) == pytest.approx(expected, rel=1e-9)
    assert M.kl_divergence([1.0, 0.0], [0.0, 1.0]) == pytest.approx(13.81551, abs=1e-4)


def test_kl_zero_in_human_contributes_nothing() -> None:
    assert M.kl_divergence([0.0, 1.0], [0.5, 0.5]) == pytest.approx(math.log(2), abs=1e-5)


def test_js_distance_hand_computed() -> None:
    assert M.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert M.js_distance([0.2, 0.8], [0.2, 0.8]) == pytest.approx(0.0, abs=1e-7)
    # M=[.75,.25]; KL(p||M)=log2(4/3); KL(q||M)=0.5log2(2/3)+0.5; JS=mean; distance=sqrt
    js = 0.5 * (math.log2(4 / 3) + 0.5 * math.log2(2 / 3) + 0.5)
    assert M.js_distance([1, 0], [0.5, 0.5]) == pytest.approx(math.sqrt(js), abs=1e-9)
    assert M.js_distance([1, 0], [0.5, 0.5]) == pytest.approx(0.557923, abs=1e-6)


def test_emd_normalised_by_scale_length() -> None:
    assert M.emd_ordinal([1, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx(1.0)
    assert M.emd_ordinal([1, 0, 0], [0, 1, 0]) == pytest.approx(0.5)
    assert M.emd_ordinal([0.5, 0.5, 0], [0, 0.5, 0.5]) == pytest.approx(0.5)
    assert M.emd_ordinal([0.25, 0.75], [0.25, 0.75]) == pytest.approx(0.0)


def test_argmax_match_and_expected() -> None:
    assert M.argmax_match([0.6, 0.4], [0.9, 0.1]) == 1.0
    assert M.argmax_match([0.6, 0.4], [0.1, 0.9]) == 0.0
    assert M.expected_answer([0.5, 0, 0.5]) == pytest.approx(2.0)
    assert M.expected_answer([0, 0, 0, 1]) == pytest.approx(4.0)


def test_clca_kl_is_paper_code_and_not_a_divergence() -> None:
    # identical one-hot inputs: ln(e + 2) - 1 > 0
    assert M.clca_kl([1, 0], [1, 0]) == pytest.approx(math.log(math.e + 2) - 1, abs=1e-9)
    rng = np.random.default_rng(3)
    for k in (2, 4, 10):
        h = rng.dirichlet(np.ones(k))
        h[0] = 0.0
        h /= h.sum()
        m = rng.dirichlet(np.ones(k)) * 0.8
        inv = 0.2
        ref = torch.nn.functional.kl_div(
            torch.log_softmax(torch.tensor([[*m, inv]], dtype=torch.float64), -1),
            torch.tensor([[*h, 0.0]], dtype=torch.float64),
            reduction="batchmean",
        ).item()
        assert M.clca_kl(h, m, invalid_share=inv) == pytest.approx(ref, abs=1e-12)


def test_spearman() -> None:
    assert M.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert M.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert M.spearman([1, 1, 1], [1, 2, 3]) is None
    assert M.spearman([1, 2], [1, 2]) is None


def test_bootstrap_ci_seeded() -> None:
    vals = [0.1, 0.4, 0.35, 0.8, 0.2, 0.5]
    ci = M.bootstrap_ci(vals, seed=1)
    assert ci is not None and ci == M.bootstrap_ci(vals, seed=1)
    assert ci[0] < sum(vals) / len(vals) < ci[1]
    assert M.bootstrap_ci([0.3, 0.3, 0.3]) == pytest.approx((0.3, 0.3))
    assert M.bootstrap_ci([0.3]) is None


def test_softmax_logprobs_and_question_metrics_with_invalid_bucket() -> None:
    """Unparseable answers are a (K+1)-th bucket of the model's distribution; hand-computed values."""
    assert M.softmax_logprobs([math.log(0.1), math.log(0.4)]) == pytest.approx([0.2, 0.8])
    q = M.question_metrics([0.5, 0.5], [0.2, 0.2], ordinal=True, invalid_share=0.6)
    assert q["majority_match"] == 0.0  # invalid bucket is the mode
    # JS over [.5,.5,0] vs [.2,.2,.6]: mixture [.35,.35,.3]; divergence (log2(1/.7) + .4 log2(.2/.35) + .6) / 2
    jsd_div = (math.log2(1 / 0.7) + 0.4 * math.log2(0.2 / 0.35) + 0.6) / 2
    assert q["jsd"] == pytest.approx(math.sqrt(jsd_div), abs=1e-6)
    assert q["kl"] == pytest.approx(math.log(2.5), abs=1e-4)  # 2 x .5 ln(.5/.2)
    assert q["emd"] == pytest.approx(0.6)  # the valid answers match; the invalid 60% cost the whole scale
    assert q["clca_kl"] == pytest.approx(M.clca_kl([0.5, 0.5], [0.2, 0.2], 0.6))
    from scipy.spatial.distance import jensenshannon

    assert q["paper_jsd"] == pytest.approx(float(jensenshannon([0.5, 0.5, 0.0], [0.2, 0.2, 0.6])))
    assert M.question_metrics([0.5, 0.5], [0.5, 0.5], ordinal=False)["emd"] is None


def test_unparseable_answers_score_far_worse_than_uniform() -> None:
    """A model that stops answering must not look like a uniform one (nothing is dropped)."""
    human = [0.6, 0.25, 0.1, 0.05]
    uniform = M.question_metrics(human, [0.25] * 4, ordinal=True)
    silent = M.question_metrics(human, [0.0] * 4, ordinal=True, invalid_share=1.0)
    assert silent["kl"] > 10 * uniform["kl"]
    assert silent["jsd"] == pytest.approx(1.0) and uniform["jsd"] < 0.5
    assert silent["emd"] == 1.0 and uniform["emd"] < 0.5
    assert silent["majority_match"] == 0.0
