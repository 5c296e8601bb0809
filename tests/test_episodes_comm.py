"""Recorded episodes of communicating runs (paper section 5): the symbols said, the influence
of each symbol on the others' next actions, format 3 files (and format 2 files, which stay
valid), and the explorer's rendering of them.

One smoke-preset cleanup_comm_influence trainer learns for one iteration; the comm baseline
plays untrained.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

from ssdlib.book import explorer
from ssdlib.episodes.format import FORMAT_VERSION, Episodes, load_episodes, recording_format, save_episodes
from ssdlib.episodes.recording import checkpoint_digest, ensure_episodes, record_episodes, recording_is_current
from ssdlib.training import replay
from ssdlib.training.conditions import get_preset, load_config
from ssdlib.training.replay import replay_view
from ssdlib.training.trainer import Trainer

SEEDS = [0, 1]
STEPS = 30
REPLAY_SEED = 5
ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "results" / "runs" / "harvest_a3c" / "cpu" / "episodes.npz"  # recorded in format 2
ARRAYS = ("maps", "views", "pos", "orient", "actions", "rewards", "influence", "exerted", "messages",
          "message_influence")


def _trainer(name: str) -> Trainer:
    config = load_config(name)
    return Trainer(config, get_preset("smoke", config.env), SEEDS)


@pytest.fixture(scope="module")
def comm_trainer() -> Trainer:
    trainer = _trainer("cleanup_comm_influence")
    trainer.train_iteration()
    return trainer


@pytest.fixture(scope="module")
def comm_episodes(comm_trainer) -> Episodes:
    return record_episodes(comm_trainer, seed=REPLAY_SEED, steps=STEPS)


@pytest.fixture(scope="module")
def baseline_episodes() -> Episodes:
    return record_episodes(_trainer("cleanup_comm_baseline"), seed=0, steps=10)


def _assert_same(a: Episodes, b: Episodes) -> None:
    for f in fields(Episodes):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name in ARRAYS:
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def _as_format_2(episodes: Episodes, path: Path) -> Path:
    """`episodes` saved as format 2 wrote them: no messages, message influence nor vocabulary."""
    save_episodes(episodes, path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if name not in ("messages", "message_influence")}
    meta = json.loads(str(arrays["meta"]))
    del meta["vocabulary"]
    arrays["meta"] = np.array(json.dumps(meta | {"format": 2}))
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


# ---------------------------------------------------------------------------- recording
def test_comm_recording_shapes_and_dtypes(comm_episodes, baseline_episodes) -> None:
    ep, s, t, n = comm_episodes, len(SEEDS), STEPS, 5
    assert ep.vocabulary == 9 and ep.communicates and ep.has_message_influence
    assert ep.messages.shape == (s, t, n) and ep.messages.dtype == np.int64
    assert ep.messages.min() >= 0 and ep.messages.max() < ep.vocabulary
    assert len(np.unique(ep.messages)) > 1  # an untrained communication policy says many symbols
    assert ep.message_influence.shape == (s, t, n, n - 1) and ep.message_influence.dtype == np.float64
    assert np.isfinite(ep.message_influence).all() and (ep.message_influence >= 0).all()  # KL
    assert (ep.message_influence > 0).mean() > 0.5
    assert not ep.has_influence and ep.influencers == 0 and ep.influence.shape == (s, t, 0, n)  # no centralised influence
    assert ep.message_influence_given().shape == ep.message_influence_received().shape == (s, t, n)
    assert np.allclose(ep.message_influence_given().sum(2), ep.message_influence_received().sum(2), rtol=1e-12)
    base = baseline_episodes  # the baseline speaks, but no influence of its symbols is measured
    assert base.vocabulary == 9 and base.communicates and not base.has_message_influence
    assert base.messages.shape == (s, 10, n) and base.message_influence.shape == (s, 10, 0, n - 1)
    assert base.message_influence_received().shape == (s, 10, 0)


def test_messages_and_their_influence_are_the_trainers(comm_trainer, comm_episodes) -> None:
    """Replaying the same view: messages[t] are the symbols said at step t, and
    message_influence[t] the pairs `act` computes at step t + 1 (for the last step, what the
    next step of the game computes; the recording acted once more without stepping)."""
    ep = comm_episodes
    view = replay_view(comm_trainer, 1, ep.replay_seed)
    for t in range(STEPS + 1):
        out, _, _, _ = view.play()
        if t < STEPS:
            assert np.array_equal(view.to_games(out.transition.actions).numpy(), ep.actions[:, t]), t
            assert np.array_equal(view.to_games(out.transition.message).numpy(), ep.messages[:, t]), t
            assert np.array_equal(out.transition.heard[:, 0, 0].numpy().reshape(2, 5),
                                  ep.messages[:, t - 1] if t else np.zeros((2, 5), np.int64)), t  # own symbol heard
        if t == 0:
            assert (out.influence.pairs == 0).all()  # the silence of the episode's start
        else:
            assert np.array_equal(out.influence.pairs.numpy(), ep.message_influence[:, t - 1]), t
            assert np.array_equal(out.influence.reward.numpy(), ep.message_influence_given()[:, t - 1]), t


def test_received_influence_follows_the_listener_order() -> None:
    """message_influence[.., k, jj] is on listener jj + (jj >= k): each pair coded 10 k + j."""
    n = 4
    pairs = np.array([[10 * k + j for j in range(n) if j != k] for k in range(n)], np.float64)
    toy = Episodes("toy", "cleanup", [0], np.zeros((1, 1, 3, 3), np.uint8), np.zeros((1, 1, n, 15, 15), np.uint8),
                   np.ones((1, 1, n, 2), np.int64), np.zeros((1, 1, n), np.int64), np.zeros((1, 1, n), np.int64),
                   np.zeros((1, 1, n), np.float32), np.zeros((1, 1, 0, n)), np.zeros((1, 1, 0, n)), 0, ("STAY",),
                   vocabulary=3, messages=np.zeros((1, 1, n), np.int64), message_influence=pairs[None, None])
    assert toy.listeners(2) == [0, 1, 3]
    expected = [sum(10 * k + j for k in range(n) if k != j) for j in range(n)]
    assert toy.message_influence_received()[0, 0].tolist() == expected
    assert toy.message_influence_given()[0, 0].tolist() == pairs.sum(1).tolist()


# ---------------------------------------------------------------------------- files
def test_format_3_round_trip(comm_episodes, baseline_episodes, tmp_path) -> None:
    for ep in (comm_episodes, baseline_episodes):
        path = save_episodes(ep, tmp_path / f"{ep.config}.npz")
        assert recording_format(path) == FORMAT_VERSION == 3
        _assert_same(ep, load_episodes(path))


def test_format_2_files_still_load(comm_episodes, tmp_path) -> None:
    assert recording_format(COMMITTED) == 2
    committed = load_episodes(COMMITTED)
    s, t, n = committed.num_seeds, committed.num_steps, committed.num_agents
    assert committed.vocabulary == 0 and not committed.communicates and not committed.has_message_influence
    assert committed.messages.shape == (s, t, 0) and committed.messages.dtype == np.int64
    assert committed.message_influence.shape == (s, t, 0, n - 1) and committed.message_influence.dtype == np.float64
    old = load_episodes(_as_format_2(comm_episodes, tmp_path / "old.npz"))
    assert old.vocabulary == 0 and old.messages.shape == (2, STEPS, 0) and old.message_influence.shape == (2, STEPS, 0, 4)
    for name in ARRAYS[:-2]:
        assert np.array_equal(getattr(old, name), getattr(comm_episodes, name)), name


def test_format_2_recordings_are_not_recorded_again(comm_episodes, tmp_path, monkeypatch) -> None:
    """A format-2 recording of a run without communication stays valid (its checkpoint may be
    gone); one of a communicating run is recorded again when its checkpoint is there."""
    def no_trainer(*args, **kwargs):
        raise AssertionError("recorded again")

    monkeypatch.setattr(replay, "load_trainer", no_trainer)
    for name, communicating in (("harvest_a3c", False), ("cleanup_comm_influence", True)):
        folder = tmp_path / name
        folder.mkdir()
        config = {"model": {"vocabulary": 9, "message_embedding": 32}} if communicating else {"model": {}}
        (folder / "config.json").write_text(json.dumps({"config": config}))
        (folder / "checkpoint.pt").write_bytes(name.encode())
        digest = checkpoint_digest(folder)
        path = _as_format_2(replace(comm_episodes, checkpoint=digest), folder / "episodes.npz")
        before = path.read_bytes()
        assert recording_is_current(folder) is not communicating
        if communicating:
            with pytest.raises(AssertionError, match="recorded again"):
                ensure_episodes(folder, seed=REPLAY_SEED)
        else:
            assert ensure_episodes(folder, seed=REPLAY_SEED).checkpoint == digest
        assert path.read_bytes() == before  # never rewritten
    save_episodes(comm_episodes, tmp_path / "cleanup_comm_influence" / "episodes.npz")
    assert recording_is_current(tmp_path / "cleanup_comm_influence")


# ---------------------------------------------------------------------------- the explorer
def test_panels_show_the_symbols_and_their_influence(comm_episodes) -> None:
    ep, step = comm_episodes, 7
    panels = explorer.EpisodePanels(ep, 1, step)
    assert panels.png()[:8] == b"\x89PNG\r\n\x1a\n"
    for agent in range(ep.num_agents):
        said = ep.messages[1, step, agent]
        assert panels.ax_views[agent].get_title().startswith(f"agent {agent} says {said}\n")
        label = panels.symbol_labels[agent]
        row, col = ep.pos[1, step, agent]
        assert label.get_text() == str(said) and label.get_position() == (col + 0.45, row - 0.45)
    lines = panels.ax_plot.lines[:-1]  # one per speaker, then the cursor
    assert len(lines) == ep.num_agents
    for agent, line in enumerate(lines):
        assert np.array_equal(line.get_ydata(), ep.message_influence[1, :, agent].sum(1))
    speaker, listener = panels.outlined(step)
    best = ep.message_influence[1, step].max()
    assert ep.message_influence[1, step, speaker, ep.listeners(speaker).index(listener)] == best
    assert panels.fov.get_visible() and f"{best:.3g}" in panels.subtitle.get_text()
    anim = explorer.animate(ep, 0, steps=[0, STEPS - 1])
    assert explorer.animation_html(anim, colours=None).count("data:image/png;base64,") == 2
    assert anim.panels.symbol_labels[2].get_text() == str(ep.messages[0, STEPS - 1, 2])


def test_step_table_names_the_symbols(comm_episodes, baseline_episodes) -> None:
    ep, step = comm_episodes, 4
    table = explorer.step_table(ep, 0, step)
    assert "says" in table and "listener" in table
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]]
    assert len(rows) == ep.num_agents
    for agent, row in enumerate(rows):  # agent, role, row/col, facing, action, reward, return, then:
        says, each, given, received = row[7:]
        assert says == str(ep.messages[0, step, agent])
        assert each == ", ".join(f"→ {j}: {v:.3g}" for j, v in zip(ep.listeners(agent), ep.message_influence[0, step, agent]))
        assert given == f"{ep.message_influence[0, step, agent].sum():.3g}"
        assert received == f"{ep.message_influence_received()[0, step, agent]:.3g}"
    base = explorer.step_table(baseline_episodes, 1, 3)
    assert "says" in base and "listener" not in base and "influence" not in base


def test_explorer_shows_a_comm_run(comm_episodes, tmp_path) -> None:
    folder = tmp_path / "results" / "runs" / "cleanup_comm_influence" / "smoke"
    folder.mkdir(parents=True)
    save_episodes(comm_episodes, folder / "episodes.npz")
    ex = explorer.EpisodeExplorer(tmp_path / "results")
    assert ex.episodes.communicates and ex.outline_menu.value == explorer.AUTO
    assert ex.image.value[:4] == b"\x89PNG" and "says" in ex.table.value
    assert "one of 9 symbols" in ex.status.value
    ex.slider.value = 12
    assert ex.step == 12 and str(comm_episodes.messages[0, 12, 3]) in ex.table.value
