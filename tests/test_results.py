"""The results API the book reads."""

import json
import shutil
from pathlib import Path

import pytest

from ssdlib.book import results
from ssdlib.train import train


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    for config in ("box_trapped_a3c", "box_trapped_influence"):
        train(config, "smoke", [0, 1], "cpu", results.run_dir(root, config, "smoke"), progress=False)
    return root


def test_load_metrics_labels_rows(results_dir):
    frame = results.load_metrics(["box_trapped_a3c", "box_trapped_influence"], "smoke", results_dir)
    assert set(frame.config) == {"box_trapped_a3c", "box_trapped_influence"}
    assert set(frame.seed) == {0, 1} and (frame.preset == "smoke").all()
    assert frame.finished.all() and frame.device_name.str.len().gt(0).all()
    assert {"collective_reward", "equality", "return_0", "influence_0", "env_steps"} <= set(frame.columns)


def test_available_runs_lists_both(results_dir):
    runs = results.available_runs(results_dir)
    assert sorted(runs.config) == ["box_trapped_a3c", "box_trapped_influence"]
    assert runs.finished.all() and all(list(seeds) == [0, 1] for seeds in runs.seeds)


def test_missing_run_names_the_file(results_dir):
    with pytest.raises(FileNotFoundError, match="cleanup_a3c"):
        results.load_metrics(["cleanup_a3c"], "smoke", results_dir)
    with pytest.raises(FileNotFoundError, match="config.json"):
        results.run_info(results_dir / "nothing")


def test_ensure_run_reuses_trains_or_names_what_to_run(results_dir, tmp_path):
    folder = results.ensure_run("box_trapped_a3c", "smoke", [7], results_dir)  # finished: reused as is
    assert folder == results.run_dir(results_dir, "box_trapped_a3c", "smoke")
    with pytest.raises(FileNotFoundError, match="python -m ssdlib.train cleanup_a3c --preset smoke"):
        results.ensure_run("cleanup_a3c", "smoke", [0], tmp_path)
    trained = results.ensure_run("box_trapped_a3c", "smoke", [3], tmp_path, train=True)
    assert (trained / "done").is_file() and results.run_info(trained)["seeds"] == [3]


def test_a_run_whose_config_changed_is_stale_and_retrained_on_its_own_seeds(tmp_path):
    folder = results.ensure_run("box_trapped_a3c", "smoke", [3], tmp_path, train=True)
    assert results.stale_fields(folder, "box_trapped_a3c", "smoke") == []
    stored = json.loads((folder / "config.json").read_text())
    stored["config"]["optim"]["lr_init"] *= 2  # as if the packaged config had changed since
    stored["preset"]["total_steps"] += 1
    (folder / "config.json").write_text(json.dumps(stored))
    changed = results.stale_fields(folder, "box_trapped_a3c", "smoke")
    assert changed == ["config.optim.lr_init", "preset.total_steps"]
    with pytest.raises(ValueError, match=r"stale: config.optim.lr_init, preset.total_steps changed"):
        results.ensure_run("box_trapped_a3c", "smoke", [3], tmp_path)  # no silent reuse
    retrained = results.ensure_run("box_trapped_a3c", "smoke", [5], tmp_path, train=True)
    assert results.stale_fields(retrained, "box_trapped_a3c", "smoke") == []
    assert results.run_info(retrained)["seeds"] == [3] and (retrained / "done").is_file()


def test_discard_runs_deletes_only_the_named_runs(results_dir, tmp_path):
    from ssdlib.book.reproduce import discard_runs

    root = tmp_path / "copy"
    shutil.copytree(results_dir, root)
    assert discard_runs(["box_trapped_a3c", "cleanup_a3c"], "smoke", root) == [
        results.run_dir(root, "box_trapped_a3c", "smoke")]
    assert list(results.available_runs(root).config) == ["box_trapped_influence"]
    with pytest.raises(ValueError, match="'box_trapped_ppo'"):
        discard_runs(["box_trapped_influence", "box_trapped_ppo"], "smoke", root)
    assert list(results.available_runs(root).config) == ["box_trapped_influence"]  # nothing deleted
