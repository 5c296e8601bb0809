"""Closed-form checks of the influence math (paper section 4, supplement section 1)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdlib.influence import (
    DIVERGENCES,
    basic_influence_reward,
    causal_influence_reward,
    counterfactual_marginal,
    curriculum_weight,
    divergence,
    js_divergence,
    kl_divergence,
    mutual_information,
    mutual_information_from_joint,
    pointwise_mutual_information,
    reference_curriculum_weight,
)

LOG2 = math.log(2.0)
fast = settings(max_examples=60, deadline=None)


def log_dist(values: list[float]) -> torch.Tensor:
    return torch.log_softmax(torch.tensor(values, dtype=torch.float64), -1)


logits = st.lists(st.floats(-6.0, 6.0), min_size=5, max_size=5)


def random_log(shape: tuple[int, ...], seed: int, scale: float = 2.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.log_softmax(scale * torch.randn(shape, generator=gen, dtype=torch.float64), -1)


@fast
@given(logits, logits)
def test_kl_nonnegative_zero_only_for_equal(a: list[float], b: list[float]) -> None:
    p, q = log_dist(a), log_dist(b)
    kl = kl_divergence(p, q).item()
    assert kl >= -1e-12
    assert kl_divergence(p, p).item() == pytest.approx(0.0, abs=1e-12)
    total_variation = 0.5 * (p.exp() - q.exp()).abs().sum().item()
    # Pinsker: KL >= 2 TV^2, so KL = 0 forces p = q.
    assert kl >= 2.0 * total_variation**2 - 1e-12


def test_kl_closed_form_and_zero_probabilities() -> None:
    p = torch.log(torch.tensor([1.0, 0.0], dtype=torch.float64))
    q = torch.log(torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert kl_divergence(p, q).item() == pytest.approx(LOG2)
    assert math.isinf(kl_divergence(q, p).item())


@fast
@given(logits, logits)
def test_jsd_symmetric_and_bounded(a: list[float], b: list[float]) -> None:
    p, q = log_dist(a), log_dist(b)
    pq, qp = js_divergence(p, q).item(), js_divergence(q, p).item()
    assert pq == pytest.approx(qp, abs=1e-12)
    assert 0.0 <= pq <= LOG2
    assert js_divergence(p, p).item() == pytest.approx(0.0, abs=1e-12)


def test_jsd_disjoint_supports_is_log2() -> None:
    p = torch.log(torch.tensor([0.3, 0.7, 0.0, 0.0], dtype=torch.float64))
    q = torch.log(torch.tensor([0.0, 0.0, 0.6, 0.4], dtype=torch.float64))
    assert js_divergence(p, q).item() == pytest.approx(LOG2, abs=1e-12)


def test_pmi_closed_form() -> None:
    cond = torch.log(torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=torch.float64))
    marg = torch.log(torch.tensor([0.6, 0.4], dtype=torch.float64))
    pmi = pointwise_mutual_information(cond, marg, torch.tensor([1, 0]))
    expected = [math.log(0.1 / 0.4), math.log(0.2 / 0.6)]
    assert pmi.tolist() == pytest.approx(expected)


def test_counterfactual_marginal_hand_example() -> None:
    cond = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64))
    influencer = torch.log(torch.tensor([0.25, 0.75], dtype=torch.float64))
    # 0.25 * [0.5, 0.5] + 0.75 * [0.9, 0.1] = [0.8, 0.2]
    marg = counterfactual_marginal(cond, influencer).exp()
    assert marg.tolist() == pytest.approx([0.8, 0.2])
    reward = causal_influence_reward(cond, influencer, torch.tensor(1)).item()
    assert reward == pytest.approx(0.9 * math.log(0.9 / 0.8) + 0.1 * math.log(0.1 / 0.2))


@fast
@given(st.integers(0, 2**31 - 1), st.integers(2, 6), st.integers(2, 6))
def test_expected_influence_equals_mutual_information(seed: int, a_k: int, a_j: int) -> None:
    cond = random_log((a_k, a_j), seed)
    influencer = random_log((a_k,), seed + 1)
    joint = influencer[:, None] + cond  # log p(a^k) p(a^j | a^k)
    mi = mutual_information_from_joint(joint).item()
    assert mi >= -1e-12

    actions = torch.arange(a_k)
    cond_b = cond.expand(a_k, a_k, a_j)
    infl_b = influencer.expand(a_k, a_k)
    kl_reward = causal_influence_reward(cond_b, infl_b, actions, "kl")
    assert (influencer.exp() * kl_reward).sum().item() == pytest.approx(mi, abs=1e-10)
    assert mutual_information(cond, influencer).item() == pytest.approx(mi, abs=1e-10)

    a_k_grid, a_j_grid = torch.meshgrid(torch.arange(a_k), torch.arange(a_j), indexing="ij")
    pmi = causal_influence_reward(
        cond.expand(a_k, a_j, a_k, a_j),
        influencer.expand(a_k, a_j, a_k),
        a_k_grid,
        "pmi",
        influencee_action=a_j_grid,
    )
    assert (joint.exp() * pmi).sum().item() == pytest.approx(mi, abs=1e-10)


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_ignoring_influencee_gives_zero_influence(name: str) -> None:
    row = random_log((4, 1, 6), seed=3)
    cond = row.expand(4, 5, 6)  # the same policy whatever the influencer does
    influencer = random_log((4, 5), seed=4)
    reward = causal_influence_reward(
        cond,
        influencer,
        torch.tensor([0, 1, 2, 4]),
        name,
        influencee_action=torch.tensor([0, 5, 3, 1]),
    )
    assert reward.abs().max().item() == pytest.approx(0.0, abs=1e-12)


def test_causal_influence_batched_matches_elementwise() -> None:
    cond = random_log((2, 3, 4, 5), seed=7)
    influencer = random_log((2, 3, 4), seed=8)
    actions = torch.tensor([[0, 3, 1], [2, 2, 0]])
    batched = causal_influence_reward(cond, influencer, actions, "jsd")
    for b in range(2):
        for t in range(3):
            single = causal_influence_reward(cond[b, t], influencer[b, t], actions[b, t], "jsd")
            assert batched[b, t].item() == pytest.approx(single.item())


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_basic_influence_reward_sums_over_influencees(name: str) -> None:
    n, a, batch = 4, 3, 2
    cond = random_log((batch, n, n, a, a), seed=11)
    influencer_log = random_log((batch, n, a), seed=12)
    actions = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 1]])
    taken = torch.tensor([[1, 0, 2, 2], [0, 1, 1, 0]])
    influencers = torch.tensor([True, False, True, False])
    influencees = torch.tensor([False, True, False, True])
    # entries that are not an (influencer, influencee) pair are ignored, even if NaN
    cond = cond.clone()
    cond[:, 1] = float("nan")
    cond[:, :, 0] = float("nan")
    reward = basic_influence_reward(
        cond, influencer_log, actions, influencers, influencees, name, influencee_actions=taken
    )
    assert reward.shape == (batch, n)
    assert torch.all(reward[:, ~influencers] == 0)
    for b in range(batch):
        for k in (0, 2):
            expected = sum(
                causal_influence_reward(
                    cond[b, k, j], influencer_log[b, k], actions[b, k], name, taken[b, j]
                ).item()
                for j in (1, 3)
            )
            assert reward[b, k].item() == pytest.approx(expected)


def test_basic_influence_reward_rejects_overlapping_masks() -> None:
    cond = random_log((3, 3, 2, 2), seed=0)
    with pytest.raises(ValueError, match="disjoint"):
        basic_influence_reward(
            cond,
            random_log((3, 2), seed=1),
            torch.zeros(3, dtype=torch.long),
            torch.tensor([True, True, False]),
            torch.tensor([False, True, True]),
        )


def test_curriculum_weight_linear_ramp() -> None:
    c = 140e6
    assert curriculum_weight(0, c) == 0.0
    assert curriculum_weight(-5, c) == 0.0
    assert curriculum_weight(c / 4, c) == pytest.approx(0.25)
    assert curriculum_weight(c, c) == 1.0
    assert curriculum_weight(3 * c, c) == 1.0
    assert curriculum_weight(0, 0) == 1.0
    with pytest.raises(ValueError, match="-1"):
        curriculum_weight(0, -1)


@pytest.mark.parametrize(
    ("step", "weight"),
    [(0, 0.0), (1e7, 0.0), (5.5e7, 0.5), (1e8, 1.0), (2e8, 0.75), (3e8, 0.5), (5e8, 0.5)],
)
def test_reference_curriculum_weight(step: float, weight: float) -> None:
    assert reference_curriculum_weight(step) == pytest.approx(weight)


def test_unknown_divergence_name_raises() -> None:
    p = log_dist([0.0, 1.0])
    with pytest.raises(ValueError, match="'hellinger'"):
        divergence("hellinger", p, p)
    with pytest.raises(ValueError, match="'wasserstein'"):
        causal_influence_reward(p.expand(2, 2), p, torch.tensor(0), "wasserstein")
    with pytest.raises(ValueError, match="pmi"):
        divergence("pmi", p, p)
