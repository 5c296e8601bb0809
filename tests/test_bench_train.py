"""`python -m ssdlib.bench train`: timed training iterations, one JSON line per config."""

import json

import pytest

from ssdlib import bench

TINY = ["--device", "cpu", "--num-envs", "2", "--iterations", "1", "--rollout-length", "3", "--horizon", "10"]


def test_bench_train_prints_one_json_line_per_config(capsys):
    bench.main(["train", "--config", "box_trapped_a3c", "box_trapped_influence", *TINY])
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [row["config"] for row in lines] == ["box_trapped_a3c", "box_trapped_influence"]
    for row in lines:
        for key in ("env_steps_per_s", "agent_steps_per_s", "num_envs", "seeds", "num_agents", "rollout_length",
                    "algorithm", "config", "device", "device_name", "torch", "ratio_vs_first", "seconds"):
            assert key in row, key
        assert row["bench"] == "train" and row["device"] == "cpu"
        assert row["num_envs"] == 2 and row["seeds"] == 1 and row["rollout_length"] == 3 and row["iterations"] == 1
        assert row["env_steps_per_s"] > 0
        assert row["agent_steps_per_s"] == pytest.approx(row["env_steps_per_s"] * row["num_agents"], abs=1.0)
        assert row["baseline_config"] == "box_trapped_a3c"
    assert [row["algorithm"] for row in lines] == ["a2c", "a2c"]
    assert [row["reward_scheme"] for row in lines] == ["extrinsic", "influence"]
    assert lines[0]["ratio_vs_first"] == 1.0
    assert lines[1]["ratio_vs_first"] == pytest.approx(lines[1]["env_steps_per_s"] / lines[0]["env_steps_per_s"], rel=0.05)


def test_bench_train_several_seeds(capsys):
    bench.main(["train", "--config", "box_trapped_a3c", "--seeds", "2", "--device", "cpu", "--num-envs", "1",
                "--iterations", "2", "--rollout-length", "2", "--horizon", "5"])
    (row,) = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert row["seeds"] == 2 and row["iterations"] == 2 and row["num_agents"] == 2
    assert row["algorithm"] == "a2c" and row["ratio_vs_first"] == 1.0
    # 2 seeds x 1 game x 2 steps x 2 iterations in `seconds`
    assert row["env_steps_per_s"] == pytest.approx(8 / row["seconds"], rel=1e-2)


def test_bench_train_defaults():
    args = bench.build_parser().parse_args(["train"])
    assert args.config == ["cleanup_a3c", "cleanup_influence"]
    assert (args.device, args.num_envs, args.seeds, args.iterations) == ("cpu", 64, 1, 5)
    assert args.rollout_length is None and args.horizon is None  # the config's and the game's own


@pytest.mark.parametrize("bad", [["--config", "no_such_config"], ["--num-envs", "0"], ["--iterations", "0"]])
def test_bench_train_rejects_bad_arguments(bad):
    with pytest.raises(SystemExit, match="error"):
        bench.main(["train", *TINY, *bad])


def test_bench_train_against_a_revision_times_old_and_new_code_in_the_same_run(capsys):
    # HEAD stands in for an older revision: exported from git and imported by its own process
    bench.main(["train", "--config", "box_trapped_a3c", "--against", "HEAD", *TINY])
    (row,) = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert row["config"] == "box_trapped_a3c" and len(row["against_revision"]) == 12
    assert row["env_steps_per_s"] > 0 and row["against_env_steps_per_s"] > 0
    assert row["speedup_vs_revision"] == pytest.approx(row["env_steps_per_s"] / row["against_env_steps_per_s"], rel=1e-2)


def test_bench_train_names_an_unknown_revision():
    with pytest.raises(SystemExit, match="unknown git revision 'no-such-rev'"):
        bench.main(["train", "--config", "box_trapped_a3c", "--against", "no-such-rev", *TINY])


@pytest.mark.parametrize("bad, message", [
    (["--against", "HEAD", "--repeats", "0"], "--repeats must be positive, got 0"),
    (["--against", "HEAD", "--capture"], "--capture cannot be combined with --against"),
])
def test_bench_train_against_names_bad_options(bad, message):
    with pytest.raises(SystemExit, match=message):
        bench.main(["train", "--config", "box_trapped_a3c", *bad, *TINY])


def test_bench_train_against_takes_the_median_of_the_pairs(monkeypatch, capsys):
    """Three old/new pairs, ratios 2, 1 and 4: the speedup is their median, 2, with the range."""
    speeds = iter([100.0, 200.0, 100.0, 100.0, 50.0, 200.0])  # old, new, old, new, old, new

    def timed(root, args, config):
        speed = next(speeds)
        return {"config": config, "env_steps_per_s": speed, "agent_steps_per_s": speed, "seconds": 1 / speed,
                "collect_seconds": 0.5 / speed, "update_seconds": 0.5 / speed}
    monkeypatch.setattr(bench, "_time_in_process", timed)
    bench.main(["train", "--config", "box_trapped_a3c", "--against", "HEAD", "--repeats", "3", *TINY])
    (row,) = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert (row["speedup_vs_revision"], row["speedup_min"], row["speedup_max"]) == (2.0, 1.0, 4.0)
    assert row["repeats"] == 3 and row["env_steps_per_s"] == 200.0 and row["against_env_steps_per_s"] == 100.0
