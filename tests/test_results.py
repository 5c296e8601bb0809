"""The results API the book reads."""

import importlib
import json
import re
import shlex
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ssdlib.book import results
from ssdlib.train import train

REPO = Path(__file__).resolve().parent.parent


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


def test_finished_presets_lists_each_other_preset_with_its_finished_configs(results_dir, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(results_dir, root)
    for preset in ("campaign", "paper"):  # the smoke runs, as if trained on longer presets
        shutil.copytree(results.run_dir(root, "box_trapped_a3c", "smoke"), results.run_dir(root, "box_trapped_a3c", preset))
    (results.run_dir(root, "box_trapped_a3c", "paper") / "done").unlink()  # still training
    configs = ["box_trapped_influence", "box_trapped_a3c", "cleanup_a3c"]
    available = results.available_runs(root)
    assert results.finished_presets(available, configs, "smoke") == {"campaign": ["box_trapped_a3c"]}
    assert results.finished_presets(available, configs, "campaign") == {
        "smoke": ["box_trapped_influence", "box_trapped_a3c"]}
    assert results.finished_presets(available, ["cleanup_a3c"], "smoke") == {}


def test_missing_run_names_the_file(results_dir):
    with pytest.raises(FileNotFoundError, match="cleanup_a3c"):
        results.load_metrics(["cleanup_a3c"], "smoke", results_dir)
    with pytest.raises(FileNotFoundError, match="config.json"):
        results.run_info(results_dir / "nothing")


def test_a_relative_results_folder_is_taken_from_the_repository_root(results_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as a kernel started in notebooks/ would be
    assert results.REPO == REPO
    assert results.results_folder("results") == results.results_folder() == REPO / "results"
    assert results.results_folder(tmp_path / "r") == tmp_path / "r"
    assert results.run_dir("results", "cleanup_a3c", "cpu") == REPO / "results" / "runs" / "cleanup_a3c" / "cpu"
    repo = tmp_path / "repo"  # a checkout whose results/ holds the fixture's runs
    shutil.copytree(results_dir, repo / "results")
    monkeypatch.setattr(results, "REPO", repo)
    assert sorted(results.available_runs().config) == ["box_trapped_a3c", "box_trapped_influence"]
    assert set(results.load_metrics(["box_trapped_a3c"], "smoke").seed) == {0, 1}
    assert results.ensure_run("box_trapped_a3c", "smoke", [0]) == repo / "results" / "runs" / "box_trapped_a3c" / "smoke"
    assert not (tmp_path / "results").exists()


def test_ensure_run_reuses_a_run_holding_the_seeds_or_trains_when_asked(results_dir, tmp_path):
    folder = results.ensure_run("box_trapped_a3c", "smoke", [1], results_dir)  # a subset of [0, 1]: reused
    assert folder == results.run_dir(results_dir, "box_trapped_a3c", "smoke")
    assert results.ensure_run("box_trapped_a3c", "smoke", [0, 1], results_dir) == folder
    trained = results.ensure_run("box_trapped_a3c", "smoke", [3], tmp_path, train=True)
    assert (trained / "done").is_file() and results.run_info(trained)["seeds"] == [3]


def test_notebooks_asking_at_once_for_a_missing_run_train_it_once(tmp_path, monkeypatch):
    import ssdlib.train

    calls = []

    def counted(*args, **kwargs):
        calls.append(args[0])
        return train(*args, **kwargs)

    monkeypatch.setattr(ssdlib.train, "train", counted)
    with ThreadPoolExecutor(3) as pool:
        folders = list(pool.map(lambda _: results.ensure_run("box_trapped_a3c", "smoke", [0], tmp_path, train=True),
                                range(3)))
    assert calls == ["box_trapped_a3c"] and len(set(folders)) == 1 and (folders[0] / "done").is_file()


def test_ensure_run_names_the_seeds_a_run_lacks(results_dir):
    folder = results.run_dir(results_dir, "box_trapped_a3c", "smoke")
    for train_missing in (False, True):  # training would discard the run: never implicit
        with pytest.raises(ValueError, match=r"trained on seeds \[0, 1\], not on \[7\] of the seeds asked for \[1, 7\]"):
            results.ensure_run("box_trapped_a3c", "smoke", [1, 7], results_dir, train=train_missing)
    assert results.run_info(folder)["seeds"] == [0, 1] and (folder / "done").is_file()
    for bad in ([], [1, 1]):
        with pytest.raises(ValueError, match="distinct seeds"):
            results.ensure_run("box_trapped_a3c", "smoke", bad, results_dir)


def test_load_metrics_keeps_only_the_seeds_asked_for(results_dir):
    frame = results.load_metrics(["box_trapped_a3c", "box_trapped_influence"], "smoke", results_dir, seeds=[1])
    assert set(frame.seed) == {1} and set(frame.config) == {"box_trapped_a3c", "box_trapped_influence"}
    with pytest.raises(ValueError, match=r"not on \[2\].*ask for seeds among \[0, 1\]"):
        results.load_metrics(["box_trapped_a3c"], "smoke", results_dir, seeds=[0, 2])


def test_unknown_config_or_preset_is_named_with_the_valid_ones(results_dir):
    for call in (lambda: results.ensure_run("cleanup_a3cc", "smoke", [0], results_dir),
                 lambda: results.load_metrics(["box_trapped_a3c", "cleanup_a3cc"], "smoke", results_dir)):
        with pytest.raises(ValueError, match=r"unknown config 'cleanup_a3cc'; did you mean 'cleanup_a3c'.*harvest_a3c"):
            call()
    for call in (lambda: results.ensure_run("box_trapped_a3c", "fast", [0], results_dir),
                 lambda: results.load_metrics(["box_trapped_a3c"], "fast", results_dir)):
        with pytest.raises(ValueError, match="unknown preset 'fast'; choose from smoke, cpu, gpu, campaign, paper"):
            call()


def _commands(error: pytest.ExceptionInfo) -> dict[str, list[str]]:
    """The `python -m MODULE ...` commands an error message suggests, by module."""
    commands = [shlex.split(c) for c in re.findall(r"`([^`]+)`", str(error.value)) if c.startswith("python -m ")]
    return {c[2]: c[3:] for c in commands}


def _cli_call(module_name: str, argv: list[str], work: str, monkeypatch) -> tuple:
    """The arguments module_name's command line hands to its function `work` for `argv`: the
    CLI parses and checks them, the work itself is only recorded."""
    module = importlib.import_module(module_name)
    calls = []
    monkeypatch.setattr(module, work, lambda *args, **kwargs: calls.append(args) or Path("."))
    module.main(argv)
    (call,) = calls
    return call


def test_the_commands_a_missing_run_suggests_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # they must not depend on the working directory
    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(FileNotFoundError, match="no run") as error:
        results.ensure_run("box_trapped_a3c", "smoke", [2, 4], elsewhere)
    assert "or train=True (in a notebook: `train = True` in its parameters cell)" in str(error.value)
    commands = _commands(error)
    assert sorted(commands) == ["ssdlib.book.reproduce", "ssdlib.train"]
    preset, _, _, results_arg, _, reuse_only, *_ = _cli_call("ssdlib.book.reproduce", commands["ssdlib.book.reproduce"],
                                                             "reproduce", monkeypatch)
    assert (preset, Path(results_arg), reuse_only) == ("smoke", elsewhere, False)
    importlib.import_module("ssdlib.train").main(commands["ssdlib.train"] + ["--no-progress"])  # trains it
    folder = results.ensure_run("box_trapped_a3c", "smoke", [2, 4], elsewhere)
    assert folder == results.run_dir(elsewhere, "box_trapped_a3c", "smoke") and (folder / "done").is_file()
    assert results.run_info(folder)["seeds"] == [2, 4]


def test_a_stale_run_is_an_error_then_retrained_on_its_own_seeds(tmp_path, monkeypatch):
    folder = results.ensure_run("box_trapped_a3c", "smoke", [3, 5], tmp_path, train=True)
    assert results.stale_fields(folder, "box_trapped_a3c", "smoke") == []
    stored = json.loads((folder / "config.json").read_text())
    stored["config"]["optim"]["lr_init"] *= 2  # as if the packaged config had changed since
    stored["preset"]["total_steps"] += 1
    (folder / "config.json").write_text(json.dumps(stored))
    changed = results.stale_fields(folder, "box_trapped_a3c", "smoke")
    assert changed == ["config.optim.lr_init", "preset.total_steps"]
    with pytest.raises(ValueError, match=r"stale: config.optim.lr_init, preset.total_steps changed") as error:
        results.ensure_run("box_trapped_a3c", "smoke", [5], tmp_path)  # no silent reuse
    config, preset, seeds, device, out, restart, *_ = _cli_call("ssdlib.train", _commands(error)["ssdlib.train"],
                                                                "train", monkeypatch)
    assert (config, preset, seeds, device, out, restart) == ("box_trapped_a3c", "smoke", [3, 5], "cpu", folder, True)
    monkeypatch.undo()
    retrained = results.ensure_run("box_trapped_a3c", "smoke", [5], tmp_path, train=True)
    assert results.stale_fields(retrained, "box_trapped_a3c", "smoke") == []
    assert results.run_info(retrained)["seeds"] == [3, 5] and (retrained / "done").is_file()


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


def test_discard_runs_knows_the_tom_configs(tmp_path):
    from ssdlib.book.reproduce import discard_runs

    folder = results.run_dir(tmp_path, "tom_ppo", "smoke")
    folder.mkdir(parents=True)
    assert discard_runs(["tom_ppo"], "smoke", tmp_path) == [folder] and not folder.exists()
