"""Closed-form checks of the outcome metrics and error bars (supplement 5.4, Table 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdlib.metrics import (
    collective_reward,
    collective_times_equality,
    equality,
    final_collective_reward,
    gini,
    harvest_learned_filter,
    sliding_window_ci,
    student_t_ppf,
)

fast = settings(max_examples=80, deadline=None)
returns_lists = st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=8)


def gini_eq6(e: list[float]) -> float:
    """Eq. 6 written out literally, for non-negative returns."""
    n = len(e)
    return sum(abs(a - b) for a in e for b in e) / (2 * n * sum(e))


def test_collective_reward_sums_agents() -> None:
    r = np.array([[1.0, 2.0, 3.0], [-50.0, 0.0, 10.0]])
    assert collective_reward(r).tolist() == [6.0, -40.0]


@pytest.mark.parametrize("value", [0.0, 3.0, -7.5])
def test_gini_equal_returns_is_zero(value: float) -> None:
    assert gini([value] * 5) == 0.0
    assert equality([value] * 5) == 1.0


@pytest.mark.parametrize("n", range(1, 9))
def test_gini_one_agent_takes_all(n: int) -> None:
    e = [0.0] * n
    e[-1] = 42.0
    assert gini(e) == pytest.approx((n - 1) / n)


@fast
@given(st.lists(st.floats(0.0, 1e4), min_size=1, max_size=8), st.floats(1e-3, 1e3))
def test_gini_matches_eq6_and_is_scale_invariant(e: list[float], scale: float) -> None:
    g = float(gini(e))
    if sum(e) > 0:
        assert g == pytest.approx(gini_eq6(e), abs=1e-12)
    assert float(gini([scale * x for x in e])) == pytest.approx(g, abs=1e-9)


@fast
@given(returns_lists)
def test_gini_in_unit_interval(e: list[float]) -> None:
    g = float(gini(e))
    assert 0.0 <= g <= (len(e) - 1) / len(e) + 1e-12


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        ([0.0, 0.0, 0.0], 0.0),  # sum 0, all equal
        ([-1.0, -1.0, -1.0], 0.0),  # sum < 0, all equal
        ([-1.0, 0.0, 1.0], 4.0 / 9.0),  # sum 0: shifted to [0, 1, 2]
        ([-3.0, 1.0], 0.5),  # sum < 0: shifted to [0, 4]
        # sum > 0 but one agent was fined: shifted to [0, 70, 70, 70, 70]
        ([-50.0, 20.0, 20.0, 20.0, 20.0], gini_eq6([0.0, 70.0, 70.0, 70.0, 70.0])),
    ],
)
def test_gini_with_nonpositive_returns(returns: list[float], expected: float) -> None:
    assert float(gini(returns)) == pytest.approx(expected)


def test_gini_batched_and_torch_input() -> None:
    r = torch.tensor([[[1.0, 1.0], [0.0, 2.0]], [[0.0, 0.0], [3.0, 1.0]]])
    g = gini(r)
    assert g.shape == (2, 2)
    np.testing.assert_allclose(g, [[0.0, 0.5], [0.0, 0.25]])
    np.testing.assert_allclose(collective_times_equality(r), [[2.0, 1.0], [0.0, 3.0]])


def test_gini_rejects_scalar() -> None:
    with pytest.raises(ValueError, match="shape"):
        gini(3.0)


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.9975, 4, 5.597568),
        (0.975, 10, 2.228139),
        (0.975, 1, math.tan(math.pi * 0.475)),  # Cauchy: tan(pi (p - 1/2))
        (0.9, 2, 0.8 / math.sqrt(2 * 0.9 * 0.1)),  # df = 2: (2p - 1) / sqrt(2 p (1 - p))
        (0.025, 5, -2.570582),
        (0.5, 3, 0.0),
    ],
)
def test_student_t_quantile(p: float, df: int, expected: float) -> None:
    assert student_t_ppf(p, df) == pytest.approx(expected, abs=1e-6)


def test_student_t_quantile_tends_to_normal() -> None:
    assert student_t_ppf(0.975, 1e7) == pytest.approx(1.959964, abs=1e-5)


def test_ci_closed_form_window_one() -> None:
    values = np.array([[1.0, 4.0], [3.0, 4.0], [5.0, 4.0]])
    band = sliding_window_ci(values, window=1, confidence=0.95)
    half = student_t_ppf(0.975, 2) * 2.0 / math.sqrt(3)  # sd of [1, 3, 5] is 2
    assert band.mean.tolist() == pytest.approx([3.0, 4.0])
    assert band.lower.tolist() == pytest.approx([3.0 - half, 4.0])
    assert band.upper.tolist() == pytest.approx([3.0 + half, 4.0])


def test_ci_pools_trailing_window_per_seed() -> None:
    values = np.array([[0.0, 2.0, 4.0, 6.0], [2.0, 4.0, 6.0, 8.0]])
    band = sliding_window_ci(values, window=2)
    # per-seed trailing means: seed 0 [0, 1, 3, 5], seed 1 [2, 3, 5, 7]
    assert band.mean.tolist() == pytest.approx([1.0, 2.0, 4.0, 6.0])
    half = student_t_ppf(0.9975, 1) * math.sqrt(2.0) / math.sqrt(2.0)
    assert (band.upper - band.mean).tolist() == pytest.approx([half] * 4)


def test_ci_contains_mean_and_narrows_with_more_seeds() -> None:
    rng = np.random.default_rng(0)
    few = sliding_window_ci(rng.normal(size=(5, 300)), window=50)
    many = sliding_window_ci(rng.normal(size=(50, 300)), window=50)
    for band in (few, many):
        assert np.all(band.lower <= band.mean) and np.all(band.mean <= band.upper)
    assert np.all(many.upper - many.lower < few.upper - few.lower)


def test_ci_single_seed_has_nan_bounds() -> None:
    band = sliding_window_ci([[1.0, 2.0, 3.0]], window=2)
    assert band.mean.tolist() == pytest.approx([1.0, 1.5, 2.5])
    assert np.isnan(band.lower).all() and np.isnan(band.upper).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": np.zeros(5)}, r"\(5,\)"),
        ({"values": np.zeros((2, 3, 4))}, r"\(2, 3, 4\)"),
        ({"values": np.zeros((2, 3)), "window": 0}, "0"),
        ({"values": np.zeros((2, 3)), "window": 2.5}, "2.5"),
        ({"values": np.zeros((2, 3)), "confidence": 1.0}, "1.0"),
        ({"values": np.zeros((2, 3)), "confidence": 0.0}, "0.0"),
        ({"values": np.zeros((2, 3)), "confidence": 1.5}, "1.5"),
    ],
)
def test_ci_rejects_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sliding_window_ci(**kwargs)


def test_harvest_learned_filter() -> None:
    apples = np.array([[30.0, 25.0, 40.0], [30.0, 0.0, 40.0], [1.0, 12.0, 9.0], [0.5, 50.0, 50.0]])
    assert harvest_learned_filter(apples).tolist() == [True, False, True, False]
    assert harvest_learned_filter(apples, min_apples=10.0).tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="shape"):
        harvest_learned_filter(np.zeros(3))
    with pytest.raises(ValueError, match="-1"):
        harvest_learned_filter(apples, min_apples=-1)


def test_final_collective_reward_last_fifty_points() -> None:
    curve = np.stack([np.arange(100.0), np.full(100, 7.0)])
    # mean of 50..99 is 74.5
    assert final_collective_reward(curve).tolist() == pytest.approx([74.5, 7.0])
    assert final_collective_reward([1.0, 2.0, 3.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="0"):
        final_collective_reward(curve, last=0)
    with pytest.raises(ValueError, match="shape"):
        final_collective_reward(np.zeros((2, 0)))
