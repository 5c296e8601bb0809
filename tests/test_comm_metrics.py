"""Hand-computed checks of the communication metrics (paper section 5.1, Figure 5; supplement
10.4.4, Eq. 8): speaker consistency, instantaneous coordination and its shuffled floor,
influence sparsity and the influenced-vs-reward Spearman correlation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssdlib.metrics import (
    align_next_step,
    fraction_above_mean,
    fraction_influenced,
    influenced_reward_correlation,
    influential_moments,
    instantaneous_coordination,
    max_pairwise_coordination,
    shuffled_coordination,
    speaker_consistency,
    spearman,
)

fast = settings(max_examples=60, deadline=None)


def code_pairs(max_num: int = 5) -> st.SearchStrategy:
    """(xs, ys, num_x, num_y) with equal, non-empty lengths."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[list[int], list[int], int, int]:
        num_x = draw(st.integers(1, max_num))
        num_y = draw(st.integers(1, max_num))
        n = draw(st.integers(1, 40))
        xs = draw(st.lists(st.integers(0, num_x - 1), min_size=n, max_size=n))
        ys = draw(st.lists(st.integers(0, num_y - 1), min_size=n, max_size=n))
        return xs, ys, num_x, num_y

    return build()


# --- speaker consistency -------------------------------------------------------------------

# Pairs (m, a): p(a | m=0) = (2/3, 1/3), p(a | m=1) = (0, 1); p(m | a=0) = (1, 0),
# p(m | a=1) = (1/2, 1/2). In bits H(2/3, 1/3) = log2 3 − 2/3.
HAND_SYMBOLS = [0, 0, 0, 1]
HAND_ACTIONS = [0, 0, 1, 1]
H_THIRD_BITS = math.log2(3) - 2 / 3


def test_speaker_consistency_one_to_one_is_one() -> None:
    rng = np.random.default_rng(0)
    symbols = rng.integers(0, 4, size=200)
    mapping = np.array([2, 0, 3, 1])
    assert speaker_consistency(symbols, mapping[symbols], 4, 4) == pytest.approx(1.0, abs=1e-12)


def test_speaker_consistency_one_to_one_on_subset_is_one() -> None:
    """Never-emitted symbols and never-taken actions are left out of the averages."""
    symbols = [0, 3, 3, 0, 4]
    actions = [7, 1, 1, 7, 2]
    assert speaker_consistency(symbols, actions, 5, 8) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("num_symbols", "num_actions", "repeat"), [(2, 2, 1), (3, 5, 4), (4, 8, 2)]
)
def test_speaker_consistency_independent_uniform_is_zero(
    num_symbols: int, num_actions: int, repeat: int
) -> None:
    pairs = list(itertools.product(range(num_symbols), range(num_actions))) * repeat
    symbols, actions = zip(*pairs)
    assert speaker_consistency(symbols, actions, num_symbols, num_actions) == pytest.approx(
        0.0, abs=1e-12
    )


def test_speaker_consistency_hand_computed() -> None:
    symbol_side = ((1 - H_THIRD_BITS) + 1) / 2  # H_max = log2 2 = 1 bit
    action_side = (1 + (1 - 1.0)) / 2
    expected = 0.5 * (symbol_side + action_side)
    assert expected == pytest.approx(0.520426, abs=1e-6)
    assert speaker_consistency(HAND_SYMBOLS, HAND_ACTIONS, 2, 2) == pytest.approx(
        expected, abs=1e-12
    )


def test_speaker_consistency_never_emitted_symbol_only_changes_h_max() -> None:
    """Symbol 2 is never emitted: it adds no term to the symbol average, but p(m | a) is now
    over 3 symbols, so H_max = log2 3 on the action side."""
    symbol_side = ((1 - H_THIRD_BITS) + 1) / 2
    action_side = (1 + (1 - 1.0 / math.log2(3))) / 2
    expected = 0.5 * (symbol_side + action_side)
    assert speaker_consistency(HAND_SYMBOLS, HAND_ACTIONS, 3, 2) == pytest.approx(
        expected, abs=1e-12
    )


def test_speaker_consistency_never_taken_action_only_changes_h_max() -> None:
    symbol_side = ((1 - H_THIRD_BITS / math.log2(3)) + 1) / 2
    action_side = (1 + 0) / 2
    expected = 0.5 * (symbol_side + action_side)
    assert speaker_consistency(HAND_SYMBOLS, HAND_ACTIONS, 2, 3) == pytest.approx(
        expected, abs=1e-12
    )


def test_speaker_consistency_relabelling_invariant() -> None:
    rng = np.random.default_rng(1)
    symbols = rng.integers(0, 5, size=300)
    actions = (symbols + rng.integers(0, 3, size=300)) % 7
    base = speaker_consistency(symbols, actions, 5, 7)
    assert 0.0 < base < 1.0
    for _ in range(5):
        sym_perm = rng.permutation(5)
        act_perm = rng.permutation(7)
        relabelled = speaker_consistency(sym_perm[symbols], act_perm[actions], 5, 7)
        assert relabelled == pytest.approx(base, abs=1e-12)


def test_speaker_consistency_constant_speaker_is_half() -> None:
    """One symbol, uniform actions: p(a | m) uniform (0), every p(m | a) deterministic (1)."""
    assert speaker_consistency([0] * 8, [0, 1, 2, 3] * 2, 3, 4) == pytest.approx(0.5, abs=1e-12)


def test_speaker_consistency_single_value_alphabet() -> None:
    """num_symbols = 1: p(m | a) is always deterministic (terms 1); p(a | m) uniform (0)."""
    assert speaker_consistency([0, 0], [0, 1], 1, 2) == pytest.approx(0.5, abs=1e-12)
    assert speaker_consistency([0, 0], [0, 0], 1, 1) == 1.0


def test_speaker_consistency_accepts_tensors_and_integral_floats() -> None:
    expected = speaker_consistency(HAND_SYMBOLS, HAND_ACTIONS, 2, 2)
    assert (
        speaker_consistency(torch.tensor(HAND_SYMBOLS), torch.tensor(HAND_ACTIONS), 2, 2)
        == expected
    )
    assert speaker_consistency(np.array(HAND_SYMBOLS, float), HAND_ACTIONS, 2, 2) == expected


@fast
@given(code_pairs())
def test_speaker_consistency_in_unit_interval(case: tuple) -> None:
    xs, ys, num_x, num_y = case
    assert 0.0 <= speaker_consistency(xs, ys, num_x, num_y) <= 1.0


@pytest.mark.parametrize(
    ("symbols", "actions", "num_symbols", "num_actions", "match"),
    [
        ([0, 3], [0, 1], 3, 2, r"symbols must lie in 0\.\.2 \(num_symbols = 3\), got \[3\]"),
        ([0, 1], [-1, 1], 2, 2, r"actions must lie in 0\.\.1 \(num_actions = 2\), got \[-1\]"),
        ([0, 1, 1], [0, 1], 2, 2, "equal lengths, got 3 and 2"),
        ([], [], 2, 2, "empty"),
        ([0.5, 1], [0, 1], 2, 2, r"symbols must hold integers, got \[0\.5\]"),
        ([[0, 1]], [[0, 1]], 2, 2, "symbols must be 1-D"),
        ([0], [0], 0, 2, "num_symbols must be an int >= 1, got 0"),
        ([0], [0], 2, True, "num_actions must be an int >= 1, got True"),
    ],
)
def test_speaker_consistency_errors(
    symbols: list, actions: list, num_symbols: int, num_actions: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        speaker_consistency(symbols, actions, num_symbols, num_actions)


# --- instantaneous coordination -------------------------------------------------------------


@pytest.mark.parametrize(("num_x", "num_y"), [(2, 2), (3, 4), (8, 5)])
def test_ic_exactly_balanced_independent_is_exactly_zero(num_x: int, num_y: int) -> None:
    pairs = list(itertools.product(range(num_x), range(num_y))) * 3
    x, y = zip(*pairs)
    assert instantaneous_coordination(x, y, num_x, num_y) == 0.0


@pytest.mark.parametrize("num", [2, 3, 8])
def test_ic_bijection_with_uniform_x_is_log_num(num: int) -> None:
    x = np.tile(np.arange(num), 5)
    y = np.random.default_rng(num).permutation(num)[x]
    assert instantaneous_coordination(x, y, num, num) == pytest.approx(math.log(num), abs=1e-12)
    assert instantaneous_coordination(x, y, num, num, base=2) == pytest.approx(
        math.log2(num), abs=1e-12
    )


def test_ic_hand_computed_table() -> None:
    """Pairs (0,0), (0,0), (0,1), (1,1): p(x) = (3/4, 1/4), p(y) = (1/2, 1/2)."""
    x, y = [0, 0, 0, 1], [0, 0, 1, 1]
    expected = 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)
    assert instantaneous_coordination(x, y, 2, 2) == pytest.approx(expected, abs=1e-15)
    assert instantaneous_coordination(x, y, 2, 2, base=2) == pytest.approx(
        expected / math.log(2), abs=1e-15
    )
    # Unused values of the alphabets change nothing.
    assert instantaneous_coordination(x, y, 5, 3) == pytest.approx(expected, abs=1e-15)


def test_ic_hand_computed_three_by_two() -> None:
    """x uniform over 3, y = 0 for x ∈ {0, 1}, y = 1 for x = 2: I = H(y) = H(2/3, 1/3)."""
    x, y = [0, 1, 2] * 2, [0, 0, 1] * 2
    expected = -(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)
    assert instantaneous_coordination(x, y, 3, 2) == pytest.approx(expected, abs=1e-15)


@fast
@given(code_pairs())
def test_ic_symmetric_and_bounded(case: tuple) -> None:
    xs, ys, num_x, num_y = case
    mi = instantaneous_coordination(xs, ys, num_x, num_y)
    assert mi == pytest.approx(instantaneous_coordination(ys, xs, num_y, num_x), abs=1e-12)
    assert 0.0 <= mi <= min(math.log(num_x), math.log(num_y)) + 1e-12


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        ([0, 1], [0, 2], {}, r"y must lie in 0\.\.1 \(num_y = 2\), got \[2\] at indices \[1\]"),
        ([0, 1], [0], {}, "equal lengths, got 2 and 1"),
        ([], [], {}, "empty"),
        ([0, 1], [0, 1], {"base": 1}, "base must be a number > 0 and != 1, got 1"),
        ([0, 1], [0, 1], {"base": 0}, "base must be"),
    ],
)
def test_ic_errors(x: list, y: list, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        instantaneous_coordination(x, y, 2, 2, **kwargs)


def test_align_next_step_plain() -> None:
    x, y = np.arange(5), np.arange(10, 15)
    xt, yt = align_next_step(x, y)
    assert xt.tolist() == [0, 1, 2, 3] and yt.tolist() == [11, 12, 13, 14]


def test_align_next_step_never_crosses_episodes() -> None:
    x, y = np.arange(6), np.arange(10, 16)
    starts = [True, False, False, True, False, False]  # episodes 0..2 and 3..5
    dones = [False, False, True, False, False, True]
    for kwargs in (
        {"episode_starts": starts},
        {"dones": dones},
        {"episode_starts": starts, "dones": dones},
    ):
        xt, yt = align_next_step(x, y, **kwargs)
        assert xt.tolist() == [0, 1, 3, 4] and yt.tolist() == [11, 12, 14, 15]


def test_align_next_step_mask_selects_speaker_step() -> None:
    x, y = np.arange(6), np.arange(10, 16)
    mask = [True, False, True, True, False, True]  # mask[5] has no step 6: ignored
    xt, yt = align_next_step(x, y, episode_starts=[1, 0, 0, 1, 0, 0], mask=mask)
    assert xt.tolist() == [0, 3] and yt.tolist() == [11, 14]


def test_align_next_step_keeps_trailing_axes() -> None:
    x = np.arange(8).reshape(4, 2)
    xt, yt = align_next_step(x, x)
    assert xt.shape == (3, 2) and yt.tolist() == x[1:].tolist()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"episode_starts": [True, False]}, r"episode_starts must have shape \(3,\)"),
        ({"dones": [0, 2, 1]}, "dones must be boolean"),
        ({"mask": [[True] * 3]}, r"mask must have shape \(3,\)"),
    ],
)
def test_align_next_step_mask_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        align_next_step([0, 1, 2], [0, 1, 2], **kwargs)


def test_align_next_step_length_error() -> None:
    with pytest.raises(ValueError, match="same number of steps"):
        align_next_step([0, 1, 2], [0, 1])


def test_shuffled_floor_nonnegative_and_below_true_coordination() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=200)
    y = (x + 1) % 4
    true = instantaneous_coordination(x, y, 4, 4)
    floor = shuffled_coordination(x, y, 4, 4, seed=0, repeats=30)
    assert 0.0 <= floor < 0.1 * true
    assert true > 1.3  # close to log 4


def test_shuffled_floor_reproducible_and_near_plug_in_bias() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.integers(0, 4, size=2000), rng.integers(0, 4, size=2000)
    a = shuffled_coordination(x, y, 4, 4, seed=7, repeats=40)
    assert a == shuffled_coordination(x, y, 4, 4, seed=np.random.default_rng(7), repeats=40)
    bias = (4 - 1) * (4 - 1) / (2 * 2000)
    assert 0.5 * bias < a < 1.5 * bias


def test_shuffled_floor_of_balanced_constant_is_zero() -> None:
    assert shuffled_coordination([0] * 10, [0, 1] * 5, 1, 2, repeats=3) == 0.0


@pytest.mark.parametrize("repeats", [0, -1, 2.5, True])
def test_shuffled_repeats_error(repeats: object) -> None:
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        shuffled_coordination([0, 1], [0, 1], 2, 2, repeats=repeats)  # type: ignore[arg-type]


def _three_agents(steps: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbols [T, 3], actions [T, 3], influence [T, 3]: listener 2 copies speaker 0's symbol
    of the step before at speaker 0's influential steps (every 5th), else acts at random;
    agent 1 copies its own symbol (a self pair, to be excluded)."""
    rng = np.random.default_rng(5)
    symbols = rng.integers(0, 4, size=(steps, 3))
    actions = rng.integers(0, 4, size=(steps, 3))
    influential = np.arange(steps) % 5 == 0
    influence = np.zeros((steps, 3))
    influence[influential, 0] = 1.0
    influence[:, 1:] = rng.random((steps, 2))
    t = np.flatnonzero(influential[:-1])
    actions[t + 1, 2] = symbols[t, 0]
    actions[1:, 1] = symbols[:-1, 1]
    return symbols, actions, influence


def test_max_pairwise_coordination_all_steps_and_influential_moments() -> None:
    symbols, actions, influence = _three_agents()
    everywhere = max_pairwise_coordination(symbols, actions, 4, 4)
    assert np.isnan(np.diag(everywhere.matrix)).all()
    assert (everywhere.speaker, everywhere.listener) == (0, 2)
    xt, yt = align_next_step(symbols[:, 0], actions[:, 2])
    assert everywhere.value == instantaneous_coordination(xt, yt, 4, 4)

    moments = max_pairwise_coordination(symbols, actions, 4, 4, influence=influence)
    assert (moments.speaker, moments.listener) == (0, 2)
    t = np.flatnonzero(influence[:-1, 0] >= influence[:, 0].mean())
    # At the influential steps the listener's next action is the symbol: I = plug-in H(symbol).
    expected = instantaneous_coordination(symbols[t, 0], symbols[t, 0], 4, 4)
    assert moments.value == pytest.approx(expected, abs=1e-12)
    assert moments.value > 1.2 and moments.value > 3 * everywhere.value


def test_max_pairwise_coordination_pairwise_influence_and_self_pairs() -> None:
    symbols, actions, influence = _three_agents()
    pairwise = np.repeat(influence[:, :, None], 3, axis=2)
    a = max_pairwise_coordination(symbols, actions, 4, 4, influence=influence)
    b = max_pairwise_coordination(symbols, actions, 4, 4, influence=pairwise)
    np.testing.assert_array_equal(a.matrix, b.matrix)
    with_self = max_pairwise_coordination(symbols, actions, 4, 4, exclude_self=False)
    assert (with_self.speaker, with_self.listener) == (1, 1)


def test_max_pairwise_coordination_respects_episode_starts() -> None:
    x = np.array([[0], [1], [0], [1]])
    y = np.array([[9], [0], [1], [0]]) % 2
    # Pairs (0,0), (1,1), (0,0) without boundaries; a new episode at t=2 drops (1, 1).
    plain = max_pairwise_coordination(x, y, 2, 2, exclude_self=False)
    assert plain.value == pytest.approx(instantaneous_coordination([0, 1, 0], [0, 1, 0], 2, 2))
    split = max_pairwise_coordination(x, y, 2, 2, episode_starts=[1, 0, 1, 0], exclude_self=False)
    assert split.value == 0.0  # pairs (0, 0), (0, 0): one x value, no information


def test_max_pairwise_coordination_errors() -> None:
    with pytest.raises(ValueError, match="exclude_self needs as many speakers as listeners"):
        max_pairwise_coordination(np.zeros((4, 2), int), np.zeros((4, 3), int), 2, 2)
    with pytest.raises(ValueError, match=r"influence must have shape \(4, 2\) or \(4, 2, 2\)"):
        max_pairwise_coordination(
            np.zeros((4, 2), int), np.zeros((4, 2), int), 2, 2, influence=np.zeros(4)
        )
    with pytest.raises(ValueError, match="no speaker/listener pair"):
        max_pairwise_coordination(np.zeros((1, 2), int), np.zeros((1, 2), int), 2, 2)
    with pytest.raises(ValueError, match=r"listener must lie in 0\.\.1 \(num_y = 2\), got \[5, 5"):
        max_pairwise_coordination(np.zeros((4, 2), int), np.full((4, 2), 5), 2, 2)
    with pytest.raises(ValueError, match="speaker must have shape"):
        max_pairwise_coordination(np.zeros(4, int), np.zeros((4, 2), int), 2, 2)


# --- influence sparsity ----------------------------------------------------------------------


def test_fraction_above_mean_hand_computed() -> None:
    one_spike = [0.0] * 9 + [10.0]  # mean 1: one step of ten above it
    assert fraction_above_mean(one_spike) == pytest.approx(0.1)
    per_agent = np.array([[0.0, 1.0], [0.0, 2.0], [4.0, 3.0], [0.0, 6.0]])  # means 1 and 3
    assert fraction_above_mean(per_agent).tolist() == [0.25, 0.25]
    assert fraction_above_mean(per_agent.T, axis=1).tolist() == [0.25, 0.25]


@pytest.mark.parametrize(("value", "steps"), [(0.1, 7), (0.3, 10), (0.7, 3), (1 / 3, 1000)])
def test_fraction_above_mean_constant_series_is_zero(value: float, steps: int) -> None:
    """The float mean of these constant series is off by one ulp; they are still not above it."""
    assert fraction_above_mean([value] * steps) == 0.0
    assert influential_moments([value] * steps).all()


def test_influential_moments_include_equal_to_mean() -> None:
    assert influential_moments([1.0, 2.0, 3.0]).tolist() == [False, True, True]
    assert influential_moments([[1.0, 5.0], [3.0, 5.0]]).tolist() == [[False, True], [True, True]]


def test_fraction_influenced_hand_computed() -> None:
    received = [[0.0, 2.0], [0.0, 2.0], [4.0, 0.0], [0.0, 0.0]]  # run mean 1
    assert fraction_influenced(received).tolist() == [0.25, 0.5]
    assert fraction_influenced(received, threshold=2.0).tolist() == [0.25, 0.5]
    assert fraction_influenced(received, threshold=3.0).tolist() == [0.25, 0.0]
    # A constantly influenced agent counts at every step (its own mean would give 0).
    assert fraction_influenced([[0.1, 0.1]] * 7).tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("received", "kwargs", "match"),
    [
        ([0.0, 1.0], {}, "received must have shape"),
        ([[0.0, np.nan]], {}, "received must be finite"),
        ([[0.0, 1.0]], {"threshold": math.inf}, "threshold must be a finite number"),
    ],
)
def test_fraction_influenced_errors(received: list, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fraction_influenced(received, **kwargs)


def test_influence_sparsity_errors() -> None:
    with pytest.raises(ValueError, match="influence must be finite"):
        fraction_above_mean([0.0, math.nan])
    with pytest.raises(ValueError, match="non-empty time axis"):
        influential_moments([])


# --- Spearman correlation --------------------------------------------------------------------


def test_spearman_hand_computed_without_ties() -> None:
    """Σd² = 4, ρ = 1 − 6·4 / (5·24) = 0.8; p from the closed-form t CDF with 3 df."""
    result = spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert result.rho == pytest.approx(0.8, abs=1e-15) and result.n == 5
    t = 0.8 * math.sqrt(3 / (1 - 0.64))
    u = t / math.sqrt(3)
    p = 1 - (2 / math.pi) * (u / (1 + u * u) + math.atan(u))
    assert result.pvalue == pytest.approx(p, abs=1e-12)
    assert result.pvalue == pytest.approx(0.1041, abs=1e-4)


def test_spearman_hand_computed_with_ties() -> None:
    """x ranks (1, 2.5, 2.5, 4): ρ = 4.5 / √(4.5·5) = 3/√10; t = 3√2 on 2 df, two-sided
    p = 1 − t / √(t² + 2) = 1 − 3/√10."""
    result = spearman([1, 2, 2, 3], [1, 3, 2, 4])
    assert result.rho == pytest.approx(3 / math.sqrt(10), abs=1e-15)
    assert result.pvalue == pytest.approx(1 - 3 / math.sqrt(10), abs=1e-12)


def test_spearman_perfect_and_reversed() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == (1.0, 0.0, 4)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == (-1.0, 0.0, 4)


def test_spearman_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(6)
    for n in (5, 12, 40):
        x = rng.integers(0, 6, size=n).astype(float)  # many ties
        y = x + rng.normal(0, 2, size=n)
        ours = spearman(x, y)
        ref = stats.spearmanr(x, y)
        assert ours.rho == pytest.approx(ref.statistic, abs=1e-12)
        assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1, 2], [1, 2], "at least 3 pairs, got 2"),
        ([1, 1, 1], [1, 2, 3], "x is constant"),
        ([1, 2, 3], [4, 4, 4], "y is constant"),
        ([1, 2, 3], [1, 2], "equal sizes, got 3 and 2"),
        ([1, 2, math.nan], [1, 2, 3], "x must be finite"),
    ],
)
def test_spearman_errors(x: list, y: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        spearman(x, y)


def test_influenced_reward_correlation_pools_agents_of_all_runs() -> None:
    ti = [[0.125, 0.25, 0.375], [0.5, 0.625, 0.75]]  # exact in binary: z-scores tie exactly
    rw = [[100.0, 110.0, 120.0], [0.0, 10.0, 20.0]]
    pooled = influenced_reward_correlation(ti, rw)
    # Ranks of ti 1..6, of the rewards 4, 5, 6, 1, 2, 3: Σd² = 54, ρ = 1 − 6·54 / (6·35).
    assert pooled.rho == pytest.approx(1 - 6 * 54 / (6 * 35), abs=1e-12) and pooled.n == 6
    assert pooled == spearman(np.ravel(ti), np.ravel(rw))
    within = influenced_reward_correlation(ti, rw, normalize=True)
    assert within.rho == pytest.approx(1.0) and within.pvalue == 0.0
    assert influenced_reward_correlation([0.1, 0.3, 0.2], [1, 3, 2]).rho == pytest.approx(1.0)


def test_influenced_reward_correlation_errors() -> None:
    with pytest.raises(ValueError, match="same shape"):
        influenced_reward_correlation([[0.1, 0.2, 0.3]], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="normalize needs shape"):
        influenced_reward_correlation([0.1, 0.2, 0.3], [1, 2, 3], normalize=True)
    with pytest.raises(ValueError, match=r"\[agents\] or \[runs, agents\]"):
        influenced_reward_correlation(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
