"""The command-line tools and the PettingZoo adapter."""

import json

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from ssdlib import bench
from ssdlib.book import gallery
from ssdlib.envs.pettingzoo_env import SSDParallelEnv


@pytest.mark.parametrize("name", ["cleanup", "harvest", "box_trapped"])
def test_pettingzoo_parallel_api(name):
    parallel_api_test(SSDParallelEnv(name, horizon=30, seed=1), num_cycles=100)


def test_pettingzoo_truncates_at_horizon_with_real_last_observation():
    env = SSDParallelEnv("harvest", num_agents=3, horizon=4)
    obs, _ = env.reset(seed=3)
    assert set(obs) == {"agent_0", "agent_1", "agent_2"}
    assert obs["agent_0"]["rgb"].shape == (15, 15, 3) and obs["agent_0"]["rgb"].dtype == np.uint8
    for t in range(4):
        obs, rewards, terminations, truncations, infos = env.step({a: 4 for a in env.agents})
        assert all(truncations.values()) == (t == 3)
        assert not any(terminations.values())
    assert env.agents == []
    assert set(infos["agent_1"]) >= {"apples", "fire", "hits"}


def test_pettingzoo_missing_action_is_an_error():
    env = SSDParallelEnv("cleanup")
    env.reset()
    with pytest.raises(ValueError, match="agent_4"):
        env.step({f"agent_{i}": 4 for i in range(4)})


def test_bench_env_prints_json_lines(capsys):
    bench.main(["env", "--env", "harvest", "--sweep", "2,8", "--steps", "3", "--baseline-steps", "3"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["num_envs"] for r in rows] == [2, 8]
    for row in rows:
        assert row["env_steps_per_s"] > 0
        assert row["agent_steps_per_s"] == pytest.approx(5 * row["env_steps_per_s"], rel=1e-4)
        assert row["state_bytes_per_game"] > 0 and row["torch"] and row["device"] == "cpu"
        assert row["speedup_vs_single_game"] > 0 and row["reference_quoted_env_steps_per_s"] == 1200.0


def test_bench_rejects_bad_sweep():
    with pytest.raises(SystemExit, match="-4"):
        bench.main(["env", "--sweep", "2,-4", "--steps", "1", "--baseline-steps", "1"])


def test_gallery_writes_images(tmp_path):
    paths = gallery.render_games(tmp_path, steps=2)
    assert len(paths) == 6
    import matplotlib.image as mpimg

    for path in paths:
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[0] >= 11 * 16 and image.std() > 0


def test_random_policy_returns_match_reward_table():
    from ssdlib.experiments.random_policy import random_policy_returns

    returns = random_policy_returns("harvest", num_games=3, episodes=2, seed=1, horizon=20)
    assert returns.shape == (6, 5)
    # each step costs at most 1 (FIRE) + 50 per penalty ray, and gives at most 1 apple
    assert (returns <= 20).all() and returns.mean() < 0
    with pytest.raises(ValueError, match="0"):
        random_policy_returns("harvest", episodes=0)
