"""The uniform-random floor: one function with fixed defaults, its CLI, and the README's numbers."""

import io
import re
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssdlib import metrics
from ssdlib.experiments import random_policy as rp

README = Path(__file__).resolve().parent.parent / "README.md"


def test_stats_match_the_returns_and_episodes_follow_one_another() -> None:
    stats = rp.random_policy_stats("cleanup", 3, episodes=2, seed=2, horizon=30)
    assert list(stats.episode) == [0, 0, 0, 1, 1, 1] and (stats.seed == 2).all()
    returns = rp.random_policy_returns("cleanup", 3, episodes=2, seed=2, horizon=30)
    assert returns.shape == (6, 5)
    assert np.allclose(stats.collective_reward, metrics.collective_reward(returns))
    assert np.allclose(stats.equality, metrics.equality(returns))
    assert (stats.waste > 0).all() and (stats.fire >= 0).all()
    first = rp.random_policy_stats("cleanup", 3, episodes=1, seed=2, horizon=30)
    pd.testing.assert_frame_equal(stats[stats.episode == 0], first)  # more episodes: the same first one
    table = rp.summarise(stats, formatted=True)
    assert list(table.columns) == ["games", *rp.OUTCOMES.values()] and table.loc["cleanup", "games"] == 6
    with pytest.raises(ValueError, match="episodes must be >= 1, got 0"):
        rp.random_policy_stats("cleanup", episodes=0)


def test_the_command_prints_the_floor_table_of_the_defaults(monkeypatch) -> None:
    calls, real = [], rp.random_policy_stats

    def short(game: str, *args: int) -> pd.DataFrame:  # the defaults the command passes, on short episodes
        calls.append((game, *args))
        return real(game, *args, horizon=5)

    monkeypatch.setattr(rp, "random_policy_stats", short)
    out = io.StringIO()
    with redirect_stdout(out):
        rp.main([])
    assert calls == [(game, rp.GAMES, rp.EPISODES, rp.SEED) for game in ("cleanup", "harvest", "box_trapped")]
    expected = rp.summarise(pd.concat([real(*call, horizon=5) for call in calls], ignore_index=True))
    assert out.getvalue() == expected.to_csv()
    assert out.getvalue().startswith("game,games,collective_reward_mean,collective_reward_std,")


def _readme_floor() -> dict[str, float]:
    text = README.read_text()
    row = re.search(r"^\| uniform random policy \| (\S+) \| (\S+) \|", text, flags=re.MULTILINE)
    assert row, "README.md has no uniform random policy row"
    assert "python -m ssdlib.experiments.random_policy" in text
    assert "results/tables/environments/random_policy.csv" in text
    assert f"{rp.GAMES} games, one full episode each, seed {rp.SEED}" in text
    return {game: float(value.replace("−", "-").replace(",", "")) for game, value in zip(("cleanup", "harvest"), row.groups())}


def test_readme_quotes_the_floor_of_the_documented_defaults() -> None:
    assert rp.EPISODES == 1  # the README says "one full episode each"
    for game, quoted in _readme_floor().items():
        assert round(rp.random_policy_stats(game).collective_reward.mean()) == quoted, game
