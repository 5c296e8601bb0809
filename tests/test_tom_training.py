"""Training the Theory-of-Mind rows (smoke preset): the run folder, resumption bit for bit, seeds
that do not depend on each other, configs that are refused with errors naming what is wrong,
and the book's results API reaching these runs."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ssdlib.book import results
from ssdlib.tom import config as tom_config
from ssdlib.tom import feinting, table
from ssdlib.tom.presets import PRESETS, get_preset
from ssdlib.tom.replay import play, replay_run
from ssdlib.tom.train import LOSSES, load_checkpoint, main, train

ROW = "tom_second_order_good"  # every part on for some team


def tensors(data, path: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a nested checkpoint, by path."""
    if isinstance(data, torch.Tensor):
        return {path: data}
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    return {k: v for key, value in items for k, v in tensors(value, f"{path}/{key}").items()}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    return train(ROW, "smoke", [0, 1], "cpu", tmp_path_factory.mktemp("tom") / "run", progress=False)


def test_run_folder(smoke_run):
    preset = get_preset("smoke")
    assert (smoke_run / "done").is_file()
    stored = json.loads((smoke_run / "config.json").read_text())
    assert stored["seeds"] == [0, 1] and stored["config"]["name"] == ROW and stored["preset"]["name"] == "smoke"
    prov = json.loads((smoke_run / "provenance.json").read_text())
    assert prov["env_steps_per_seed"] == preset.total_steps and prov["git_commit"] and prov["torch"] == torch.__version__
    metrics = pd.read_parquet(smoke_run / "metrics.parquet")
    assert len(metrics) == 2 * preset.iterations and sorted(set(metrics.seed)) == [0, 1]
    assert metrics.env_steps.max() == preset.total_steps
    for name in ("good_return", "adversary_return", "good_belief_accuracy", "adversary_belief_accuracy",
                 "good_club", "good_tom_reward", *(f"{team}_{loss}" for team in ("good", "adversary") for loss in LOSSES)):
        assert name in metrics, name
    assert metrics.adversary_tom_reward.isna().all() and metrics.adversary_second_order.isna().all()
    assert (metrics.good_tom_reward <= 0).all() and (metrics.good_tom_reward >= -1).all()
    checkpoint = load_checkpoint(smoke_run / "checkpoint.pt")  # weights_only=True
    assert checkpoint["iteration"] == preset.iterations
    info = results.run_info(smoke_run)
    assert info["finished"] and info["seeds"] == [0, 1] and info["env_steps_per_seed"] == preset.total_steps


def test_resuming_is_bit_for_bit(smoke_run, tmp_path):
    half = get_preset("smoke").iterations // 2
    out = train(ROW, "smoke", [0, 1], "cpu", tmp_path / "run", progress=False, stop_after=half)
    assert not (out / "done").exists() and load_checkpoint(out / "checkpoint.pt")["iteration"] == half
    train(ROW, "smoke", [0, 1], "cpu", out, progress=False)
    whole, resumed = load_checkpoint(smoke_run / "checkpoint.pt"), load_checkpoint(out / "checkpoint.pt")
    a, b = tensors(whole), tensors(resumed)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different
    pd.testing.assert_frame_equal(pd.read_parquet(smoke_run / "metrics.parquet"), pd.read_parquet(out / "metrics.parquet"))


def test_a_seed_does_not_depend_on_the_seeds_beside_it(smoke_run, tmp_path):
    """Seed 1 alone draws the same games and samples as beside seed 0: the same numbers, to the
    float rounding of batched matrix products of another batch size."""
    alone = pd.read_parquet(train(ROW, "smoke", [1], "cpu", tmp_path / "alone", progress=False) / "metrics.parquet")
    pair = pd.read_parquet(smoke_run / "metrics.parquet")
    pair = pair[pair.seed == 1].reset_index(drop=True)
    np.testing.assert_allclose(alone.to_numpy(float), pair.to_numpy(float), rtol=1e-3, atol=1e-4)


def test_a_folder_of_another_config_is_refused(smoke_run):
    with pytest.raises(ValueError, match="holds a different config"):
        train("tom_ppo", "smoke", [0, 1], "cpu", smoke_run, progress=False)


# ---------------------------------------------------------------------------- configs
def write_config(tmp_path: Path, edit) -> Path:
    text = (tom_config.CONFIG_DIR / f"{ROW}.toml").read_text()
    path = tmp_path / "bad.toml"
    path.write_text(edit(text))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("[ppo]\n", "[ppo]\nlearning_rate = 0.1\n"), r"unknown config field\(s\) \['ppo.learning_rate'\]"),
    (lambda t: t + "\n[extra]\nx = 1\n", r"unknown config field\(s\) \['extra'\]"),
    (lambda t: t.replace("clip = 0.2", "clip = 1.5"), r"'ppo.clip' = 1.5"),
    (lambda t: t.replace("epochs = 4", "epochs = 0"), r"'ppo.epochs' = 0"),
    (lambda t: t.replace("tom_reward_weight = 1.0", "tom_reward_weight = -1.0"), r"'loss.tom_reward_weight' = -1.0"),
    (lambda t: t.replace("hidden = 64", 'hidden = "64"'), r"'model.hidden' must be int"),
    (lambda t: t.replace("first_order = true", "first_order = 1", 1), r"'good.first_order' must be bool"),
    (lambda t: t.replace("residual_dim = 8", ""), r"missing field\(s\) \['model.residual_dim'\]"),
    (lambda t: t.replace("[adversary]\nfirst_order = true", "[adversary]\nfirst_order = false"),
     r"'good.second_order' = True: .*adversary.first_order"),
    (lambda t: t.replace(f'name = "{ROW}"', 'name = "ppo"'), r"'name' = 'ppo': must start with 'tom_'"),
    (lambda t: t + "\n[[", "not valid TOML"),
])
def test_bad_configs_name_the_field_and_value(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        tom_config.load_config(write_config(tmp_path, edit))


def test_unknown_config_and_preset_names(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown config 'tom_nope'; packaged configs: tom_bottleneck, tom_ppo"):
        tom_config.load_config("tom_nope")
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        get_preset("fast")
    with pytest.raises(SystemExit, match="unknown config 'tom_nope'"):
        main(["tom_nope", "--out", str(tmp_path / "x"), "--no-progress"])
    assert not (tmp_path / "x").exists()


def test_packaged_configs_are_the_papers_rows():
    assert tom_config.config_names() == sorted(table.ROWS)
    assert [table.flags(c) for c in table.ROWS] == [
        dict(zip(["1st-order (good)", "1st-order (adv.)", "2nd-order (good)", "2nd-order (adv.)"], row))
        for row in (["No"] * 4, ["Yes", "Yes", "No", "No"], ["Yes", "Yes", "Yes", "No"], ["Yes", "Yes", "No", "Yes"])]


def test_presets_are_whole_iterations():
    for preset in PRESETS.values():
        assert preset.total_steps == preset.iterations * preset.steps_per_iteration > 0


# ---------------------------------------------------------------------------- the book's side
def test_results_api_reaches_tom_runs(smoke_run, tmp_path):
    with pytest.raises(ValueError, match="unknown config 'tom_nope'"):
        results.check_names(["tom_nope"], "smoke")
    results.check_names(table.ROWS, "cpu")
    folder = results.run_dir(tmp_path, ROW, "smoke")
    with pytest.raises(FileNotFoundError, match=r"python -m ssdlib\.tom\.train tom_second_order_good"):
        results.ensure_run(ROW, "smoke", [0, 1], tmp_path)
    folder.parent.mkdir(parents=True)
    folder.symlink_to(smoke_run, target_is_directory=True)
    assert results.ensure_run(ROW, "smoke", [0, 1], tmp_path) == folder
    metrics = results.load_metrics([ROW], "smoke", tmp_path, seeds=[1])
    assert set(metrics.seed) == {1} and (metrics.config == ROW).all()
    assert results.stale_fields(folder, ROW, "smoke") == []


def test_replays_and_feinting_diagnostics(smoke_run):
    replay = replay_run(smoke_run, num_games=6)
    assert replay.positions.shape == (2, 26, 6, 3, 2) and replay.bottleneck == [True, True, True]
    # a replay's extrinsic rewards are the game's: d(adversary) - min d(good) for good agents
    target, _ = feinting.landmark_positions(replay)
    d = (replay.positions[:, 1:] - target[:, None, :, None]).norm(dim=-1)
    torch.testing.assert_close(replay.rewards[..., 1].double(), d[..., 0] - d[..., 1:].amin(-1), atol=1e-5, rtol=0)
    stats = feinting.diagnostics(replay)
    for name, value in stats.items():
        assert value.shape == (2,), name
    assert ((stats["decoy_heading"] >= 0) & (stats["decoy_heading"] <= 1)).all()
    random = play(None, [0, 1], num_games=6)
    assert torch.equal(random.positions[:, 0], replay.positions[:, 0])  # the same games start alike
    assert feinting.diagnostics(random)["adversary_belief_target"].isnan().all()


def test_results_table_has_ours_beside_the_papers(smoke_run):
    metrics = pd.read_parquet(smoke_run / "metrics.parquet").assign(config=ROW)
    out = table.results_table(metrics)
    assert list(out.config) == [ROW] and out.seeds.tolist() == [2]
    assert out["good (paper, reference)"].tolist() == [2.760]
    shown = table.formatted(out)
    assert shown["good", "paper"].tolist() == ["2.760\u00a0±\u00a00.440"]
    assert shown["beliefs", "1st"].tolist() == ["both"] and shown["beliefs", "2nd"].tolist() == ["good"]


def test_episode_animation_plays_every_step_of_each_replay(smoke_run):
    from ssdlib.book.explorer import animation_html
    from ssdlib.tom.drawing import episode_animation

    replays = {"trained": replay_run(smoke_run, num_games=2), "random": play(None, [0, 1], num_games=2)}
    anim = episode_animation(replays, seed=0, game=1, interval=100)
    assert len(list(anim.new_frame_seq())) == 26 and len(anim._fig.axes) == 2
    page = animation_html(anim)
    assert page.count("data:image/png;base64,") == 26 and "https://" not in page
    with pytest.raises(ValueError, match="interval must be a positive int"):
        episode_animation(replays, seed=0, game=1, interval=0)
