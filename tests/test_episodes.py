"""Recorded episodes (ssdlib.episodes) and the episode explorer (ssdlib.book.explorer).

Two tiny smoke runs are trained once for the module: cleanup_influence (one influencer, four
influencees) and harvest_a3c (no influence).
"""

from __future__ import annotations

import shutil
from dataclasses import fields, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from ssdlib.book import explorer
from ssdlib.book.drawing import (
    moment_figure,
    moments_figure,
    plot_influence_over_time,
    plot_moment,
)
from ssdlib.book.results import run_dir
from ssdlib.envs import make_env, palette
from ssdlib.envs.geometry import VIEW_RADIUS
from ssdlib.envs.views import field_of_view, fields_of_view, in_view, views_from_maps
from ssdlib.episodes import recording
from ssdlib.episodes.analysis import (
    episode_start_steps,
    hidden_apples,
    high_influence_moments,
    influence_by_step,
    influence_sparsity,
    with_hidden_apples,
)
from ssdlib.episodes.format import Episodes, load_episodes, save_episodes
from ssdlib.episodes.recording import (
    checkpoint_digest,
    ensure_episodes,
    record_episodes,
)
from ssdlib.train import train
from ssdlib.training.replay import load_trainer, replay_view

SEEDS = [0, 1]
ARRAYS = ("maps", "views", "pos", "orient", "actions", "rewards", "influence", "exerted", "messages",
          "message_influence")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("episodes") / "results"
    for config in ("cleanup_influence", "harvest_a3c"):
        train(config, "smoke", SEEDS, "cpu", run_dir(root, config, "smoke"), progress=False)
    return root


@pytest.fixture(scope="module")
def influence_trainer(results):
    return load_trainer(run_dir(results, "cleanup_influence", "smoke"))


@pytest.fixture(scope="module")
def influence_episodes(influence_trainer) -> Episodes:
    return record_episodes(influence_trainer, seed=3)


@pytest.fixture(scope="module")
def a3c_episodes(results) -> Episodes:
    return record_episodes(load_trainer(run_dir(results, "harvest_a3c", "smoke")), seed=0, steps=30)


@pytest.fixture
def close_figures():
    yield
    plt.close("all")


def _assert_same(a: Episodes, b: Episodes) -> None:
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), name


# ---------------------------------------------------------------------------- recording
def test_recorded_shapes_and_dtypes(influence_episodes, a3c_episodes) -> None:
    ep = influence_episodes
    s, t, n, k = 2, 100, 5, 1  # the smoke preset's horizon is 100 steps
    assert (ep.config, ep.env, ep.seeds, ep.preset, ep.replay_seed) == ("cleanup_influence", "cleanup", SEEDS, "smoke", 3)
    assert ep.maps.shape == (s, t, 25, 18) and ep.maps.dtype == np.uint8
    assert ep.views.shape == (s, t, n, 15, 15) and ep.views.dtype == np.uint8
    assert ep.pos.shape == (s, t, n, 2) and ep.orient.shape == ep.actions.shape == (s, t, n)
    assert ep.rewards.shape == (s, t, n) and ep.rewards.dtype == np.float32
    assert ep.influence.shape == (s, t, k, n - k) and ep.influence.dtype == np.float64  # as the trainer computes it
    assert ep.exerted.shape == ep.influence.shape and ep.exerted.dtype == np.float64
    assert np.array_equal(ep.exerted, ep.influence)  # JSD in cleanup: already non-negative
    assert ep.influencers == k and ep.has_influence and ep.num_steps == t
    assert ep.action_names[7:] == ("FIRE", "CLEAN") and ep.actions.max() < len(ep.action_names)
    assert ep.trained_steps == 1_600 and ((0 <= ep.orient) & (ep.orient < 4)).all()
    assert ((ep.pos >= 1) & (ep.pos < np.array([24, 17]))).all()  # inside the walls
    assert np.isfinite(ep.influence).all() and (ep.influence >= 0).all()  # JSD in cleanup
    a3c = a3c_episodes
    assert a3c.influencers == 0 and not a3c.has_influence and a3c.influence.shape == (2, 30, 0, 5)
    assert a3c.exerted.shape == (2, 30, 0, 5)
    assert a3c.maps.shape == (2, 30, 16, 38)
    for e in (ep, a3c):  # no communication: no symbols (tests/test_episodes_comm.py has runs with them)
        assert e.vocabulary == 0 and not e.communicates and not e.has_message_influence
        assert e.messages.shape == e.actions.shape[:2] + (0,) and e.messages.dtype == np.int64
        assert e.message_influence.shape == e.actions.shape[:2] + (0, n - 1) and e.message_influence.dtype == np.float64


def test_recording_replays_in_the_env(influence_trainer, influence_episodes) -> None:
    """The recorded actions, stepped in a fresh env made as replay_view makes it, give back
    the recorded maps, positions, facings, rewards and views."""
    ep = influence_episodes
    options = {**influence_trainer.config.env_options, "horizon": 100}
    env = make_env("cleanup", num_envs=2, num_agents=5, seed=ep.replay_seed, **options)
    obs = env.reset()
    hw = env.height * env.width
    for t in range(ep.num_steps):
        assert np.array_equal(env._image()[:, :hw].view(2, 25, 18).numpy(), ep.maps[:, t]), t
        assert np.array_equal(obs.image.numpy(), ep.views[:, t]), t
        assert np.array_equal(env.state.pos.numpy(), ep.pos[:, t, :, 0] * 18 + ep.pos[:, t, :, 1])
        assert np.array_equal(env.state.orient.numpy(), ep.orient[:, t])
        obs, rewards, _, _ = env.step(torch.from_numpy(ep.actions[:, t]))
        assert np.array_equal(rewards.numpy(), ep.rewards[:, t]), t
    assert (ep.rewards != 0).any()


def test_recording_is_deterministic(influence_trainer, influence_episodes) -> None:
    again = record_episodes(influence_trainer, seed=3)
    _assert_same(influence_episodes, again)
    other = record_episodes(influence_trainer, seed=4, steps=20)
    assert other.num_steps == 20 and not np.array_equal(other.actions, influence_episodes.actions[:, :20])


def test_recorded_influence_is_the_trainers(influence_trainer, influence_episodes) -> None:
    """The recorded pairs sum to the per-agent influence reward of trainer.act: influencers
    get what they exert; in cleanup_influence influencees also get what they receive."""
    trainer, ep = influence_trainer, influence_episodes
    assert trainer.config.reward.influencee_reward
    view = replay_view(trainer, 1, ep.replay_seed)
    for t in range(12):
        out = view.act(view.state.obs, view.state.memory)
        actions = view.to_games(out.transition.actions)
        assert np.array_equal(actions.numpy(), ep.actions[:, t])
        per_agent = out.influence.reward.numpy()
        assert np.allclose(ep.influence[:, t].sum(2), per_agent[:, :1], rtol=1e-6, atol=0)
        assert np.allclose(ep.influence[:, t].sum(1), per_agent[:, 1:], rtol=1e-6, atol=0)
        view.state.obs, _, _, _ = view.env.step(actions)
        view.state.memory = out.memory
    assert ep.influence.max() > 0


def test_record_episodes_rejects_bad_arguments(influence_trainer) -> None:
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match=f"seed must be .* got {bad!r}"):
            record_episodes(influence_trainer, seed=bad)
    for bad in (0, 101, 2.0):
        with pytest.raises(ValueError, match=rf"steps must be an int in 1\.\.100 .* got {bad!r}"):
            record_episodes(influence_trainer, steps=bad)


def test_views_are_crops_of_the_map(influence_episodes) -> None:
    ep = influence_episodes
    assert np.array_equal(views_from_maps(ep.maps, ep.pos, ep.orient), ep.views)
    s, t, agent = 1, 17, 2
    row, col = ep.pos[s, t, agent]
    assert ep.views[s, t, agent, VIEW_RADIUS, VIEW_RADIUS] == ep.maps[s, t, row, col] == 7 + agent  # itself, centred


# ---------------------------------------------------------------------------- files
def test_save_and_load_round_trip(influence_episodes, a3c_episodes, tmp_path) -> None:
    for ep in (influence_episodes, a3c_episodes):
        path = save_episodes(ep, tmp_path / f"{ep.config}.npz")
        loaded = load_episodes(path)
        _assert_same(ep, loaded)
        for f in fields(Episodes):
            if f.name not in ARRAYS:
                assert getattr(loaded, f.name) == getattr(ep, f.name), f.name
        assert path.stat().st_size < 60_000  # 2 games x 100 steps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cleanup_influence.npz", "harvest_a3c.npz"]
    missing = tmp_path / "nope" / "episodes.npz"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_episodes(missing)


def test_ensure_episodes_records_once_and_again_for_new_weights(results, tmp_path, monkeypatch) -> None:
    folder = tmp_path / "run"
    shutil.copytree(run_dir(results, "cleanup_influence", "smoke"), folder)
    first = ensure_episodes(folder)
    assert (folder / "episodes.npz").is_file() and first.checkpoint == checkpoint_digest(folder) != ""

    def no_recording(*args, **kwargs):
        raise AssertionError("recorded again")

    monkeypatch.setattr(recording, "record_episodes", no_recording)
    _assert_same(first, ensure_episodes(folder))  # cached
    monkeypatch.setattr(recording, "checkpoint_digest", lambda run: "retrained")
    with pytest.raises(AssertionError, match="recorded again"):
        ensure_episodes(folder)  # a checkpoint that changed is recorded again
    with pytest.raises(FileNotFoundError, match="trained run folder"):
        ensure_episodes(tmp_path / "empty")


# ---------------------------------------------------------------------------- analysis
def test_high_influence_moments_are_the_largest_pairs(influence_episodes) -> None:
    ep = influence_episodes
    moments = high_influence_moments(ep, top=7)
    assert list(moments.columns) == ["seed", "step", "influencer", "influencee", "exerted", "influence",
                                     "influencee_sees_influencer"]
    # ranked on the non-negative divergence (`exerted`)
    assert len(moments) == 7 and moments["exerted"].is_monotonic_decreasing
    assert moments["exerted"].iloc[0] == pytest.approx(float(ep.exerted.max()))
    seventh = np.sort(ep.exerted.reshape(-1))[::-1][6]
    assert moments["exerted"].iloc[-1] == pytest.approx(float(seventh))
    for row in moments.itertuples():
        s = ep.seed_index(row.seed)
        assert row.influencer == 0 and 1 <= row.influencee <= 4
        assert ep.exerted[s, row.step, row.influencer, row.influencee - 1] == pytest.approx(row.exerted)
        assert ep.influence[s, row.step, row.influencer, row.influencee - 1] == pytest.approx(row.influence)
        assert row.influencee_sees_influencer == bool(in_view(ep.pos[s, row.step, row.influencee], ep.pos[s, row.step, 0]))
    per_seed = high_influence_moments(ep, top=2, per_seed=True)
    assert per_seed["seed"].tolist() == [0, 0, 1, 1]
    for s, seed in enumerate(SEEDS):
        assert per_seed[per_seed.seed == seed]["exerted"].iloc[0] == pytest.approx(float(ep.exerted[s].max()))


def test_moments_need_influence(a3c_episodes, influence_episodes) -> None:
    with pytest.raises(ValueError, match="'harvest_a3c' record no influence"):
        high_influence_moments(a3c_episodes)
    with pytest.raises(ValueError, match="no influence"):
        influence_sparsity(a3c_episodes)
    with pytest.raises(ValueError, match="top must be a positive int, got 0"):
        high_influence_moments(influence_episodes, top=0)
    last = influence_episodes.num_steps - 1
    with pytest.raises(ValueError, match=rf"from_step must be an int in 0..{last}, got {last + 1}"):
        high_influence_moments(influence_episodes, from_step=last + 1)
    with pytest.raises(ValueError, match=rf"steps must be an int in 1..{last + 1}, got 0"):
        influence_by_step(influence_episodes, steps=0)


def test_episode_start_is_where_influence_settles(influence_episodes) -> None:
    toy = replace(influence_episodes, exerted=np.full_like(influence_episodes.exerted, 1e-9))
    assert episode_start_steps(toy) == 0  # nothing stands apart
    toy.exerted[:, 0] = 1e-6  # far above the rest
    toy.exerted[:, 1] = 1.5e-9  # within 2x of the later mean
    assert episode_start_steps(toy) == 1 and episode_start_steps(toy, factor=1.2) == 2
    with pytest.raises(ValueError, match="factor must be >= 1, got 0.5"):
        episode_start_steps(toy, factor=0.5)


def test_moments_after_the_episode_start(influence_episodes) -> None:
    ep, start = influence_episodes, 2
    later = high_influence_moments(ep, top=5, from_step=start)
    assert (later.step >= start).all() and later["exerted"].is_monotonic_decreasing
    assert later["exerted"].iloc[0] == pytest.approx(float(ep.exerted[:, start:].max()))
    for row in later.itertuples():  # step indices point into the whole episode
        s = ep.seed_index(row.seed)
        assert ep.exerted[s, row.step, row.influencer, row.influencee - 1] == row.exerted
        assert ep.influence[s, row.step, row.influencer, row.influencee - 1] == row.influence
    per_seed = high_influence_moments(ep, top=1, per_seed=True, from_step=start)
    assert (per_seed.step >= start).all() and len(per_seed) == len(SEEDS)


def test_influence_by_step_against_the_episode_mean(influence_episodes) -> None:
    ep = influence_episodes
    by_step = influence_by_step(ep, steps=4)
    assert by_step.step.tolist() == [0, 1, 2, 3]
    for t in range(4):
        assert by_step.mean_exerted[t] == pytest.approx(ep.exerted[:, t].mean(), rel=1e-12)
        assert by_step.max_exerted[t] == ep.exerted[:, t].max()
    assert by_step.ratio_to_episode_mean[0] == pytest.approx(ep.exerted[:, 0].mean() / ep.exerted.mean(), rel=1e-12)
    later = influence_sparsity(ep, from_step=2)
    assert (later.steps == ep.num_steps - 2).all()
    given = ep.exerted_given()[0, 2:, 0]
    assert later.fraction_above_mean[0] == pytest.approx((given > given.mean()).mean())


def test_influence_sparsity(influence_episodes) -> None:
    ep = influence_episodes
    table = influence_sparsity(ep)
    assert table[["seed", "influencer"]].values.tolist() == [[0, 0], [1, 0]]
    given = ep.exerted[1, :, 0].sum(1)  # the non-negative divergence, summed over influencees
    row = table.iloc[1]
    assert row["mean_influence"] == pytest.approx(given.mean())
    assert row["fraction_above_mean"] == pytest.approx((given > given.mean()).mean())
    assert 0 < row["fraction_above_mean"] < 1 and row["steps"] == 100


def test_field_of_view_is_clipped_to_the_map() -> None:
    assert field_of_view((12, 9), 25, 18) == (5, 19, 2, 16)  # the full 15x15 square
    assert field_of_view((1, 1), 25, 18) == (0, 8, 0, 8)  # corner: clipped
    assert field_of_view(np.array([23, 16]), 25, 18) == (16, 24, 9, 17)
    with pytest.raises(ValueError, match=r"\(25, 3\) is outside the 25x18 map"):
        field_of_view((25, 3), 25, 18)
    many = np.array([[[12, 9], [1, 1]], [[23, 16], [0, 17]]])  # [2, 2, 2]
    bounds = np.stack(fields_of_view(many, 25, 18), axis=-1)
    assert bounds.shape == (2, 2, 4)
    for index in np.ndindex(2, 2):
        assert tuple(bounds[index]) == field_of_view(many[index], 25, 18)
    assert in_view(np.array([[5, 5], [5, 5]]), np.array([[12, 12], [13, 5]])).tolist() == [True, False]


def _scene(apples: list[tuple[int, int]], influencer: tuple[int, int], influencee: tuple[int, int]) -> Episodes:
    """One step of a 20x20 floor with apples and two agents (agent 0 influences agent 1)."""
    maps = np.zeros((1, 1, 20, 20), dtype=np.uint8)
    for row, col in apples:
        maps[0, 0, row, col] = palette.APPLE
    pos = np.array([[[influencer, influencee]]], dtype=np.int64)
    orient = np.zeros((1, 1, 2), dtype=np.int64)
    return Episodes("toy", "cleanup", [7], maps, views_from_maps(maps, pos, orient), pos, orient,
                    np.zeros((1, 1, 2), np.int64), np.zeros((1, 1, 2), np.float32),
                    np.ones((1, 1, 1, 1), np.float64), np.ones((1, 1, 1, 1), np.float64), 1, ("STAY",))


def test_hidden_apples_are_those_only_the_influencer_sees(influence_episodes) -> None:
    # influencer at (5, 5) sees rows/cols 0..12; influencee at (15, 15) sees 8..19
    toy = _scene([(2, 2), (12, 0), (10, 10), (18, 18), (0, 19)], (5, 5), (15, 15))
    assert hidden_apples(toy).tolist() == [[[[2]]]]  # (2, 2) and (12, 0); (10, 10) both see
    moments = with_hidden_apples(toy, high_influence_moments(toy, top=1))
    assert moments[["seed", "step", "influencer", "influencee", "hidden_apples"]].values.tolist() == [[7, 0, 0, 1, 2]]
    assert not moments["influencee_sees_influencer"].iloc[0]
    assert hidden_apples(_scene([(2, 2)], (5, 5), (6, 6))).item() == 0  # same view
    ep = influence_episodes
    hidden = hidden_apples(ep)
    assert hidden.shape == ep.influence.shape and (hidden >= 0).all()
    s, t, j = 1, 60, 2  # one entry against a brute-force count
    mask = np.zeros((ep.height, ep.width), dtype=bool)
    top, bottom, left, right = field_of_view(ep.pos[s, t, 0], ep.height, ep.width)
    mask[top:bottom + 1, left:right + 1] = True
    top, bottom, left, right = field_of_view(ep.pos[s, t, 1 + j], ep.height, ep.width)
    mask[top:bottom + 1, left:right + 1] = False
    assert hidden[s, t, 0, j] == ((ep.maps[s, t] == palette.APPLE) & mask).sum()


# ---------------------------------------------------------------------------- figures
def test_plot_moment_draws_the_pair_and_the_field_of_view(influence_episodes, close_figures) -> None:
    ep = influence_episodes
    moment = high_influence_moments(ep, top=1).iloc[0]
    seed, step, k, j = (int(moment[c]) for c in ("seed", "step", "influencer", "influencee"))
    _, (ax_map, ax_view) = plt.subplots(1, 2)
    patches = plot_moment(ax_map, ax_view, ep, seed, step, k, j)
    s = ep.seed_index(seed)
    top, bottom, left, right = field_of_view(ep.pos[s, step, j], ep.height, ep.width)
    box = patches["influencee_view"]
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (
        left - 0.5, top - 0.5, right - left + 1, bottom - top + 1)
    row, col = ep.pos[s, step, k]
    assert patches["influencer"].get_xy() == (col - 0.5, row - 0.5)
    assert patches["influencer"].get_edgecolor() != patches["influencee"].get_edgecolor()
    assert all(p in ax_map.patches for p in patches.values())
    title = ax_map.get_title()
    assert f"{moment['influence']:.3g}" in title and ep.action_names[ep.actions[s, step, k]] in title
    assert f"agent {j}'s view" in ax_view.get_title()
    assert np.array_equal(ax_view.images[0].get_array()[7, 7], ax_map.images[0].get_array()[ep.pos[s, step, j][0], ep.pos[s, step, j][1]])
    with pytest.raises(ValueError, match="influencer 2 is not an influencer"):
        plot_moment(ax_map, ax_view, ep, seed, step, 2, 3)
    with pytest.raises(ValueError, match="seed 9 was not recorded"):
        plot_moment(ax_map, ax_view, ep, 9, step, k, j)
    with pytest.raises(ValueError, match="step 100 is outside"):
        plot_moment(ax_map, ax_view, ep, seed, 100, k, j)
    figure = moment_figure(ep, seed, step, k, j)
    assert len(figure.axes) == 2 and figure.legends
    grid = moments_figure(ep, high_influence_moments(ep, top=3), ncols=2)
    assert len(grid.axes) == 8 and sum(ax.get_visible() for ax in grid.axes) == 6
    assert sum(len(ax.patches) == 4 for ax in grid.axes) == 3  # three maps with their outlines
    _, ax = plt.subplots()
    plot_influence_over_time(ax, ep, 0)
    series = ep.exerted[0, :, 0].sum(1)  # the exerted (non-negative) influence over time
    assert np.allclose(ax.lines[0].get_ydata(), series) and ax.lines[1].get_ydata()[0] == pytest.approx(series.mean())


def test_animate_makes_one_frame_per_step(influence_episodes, a3c_episodes) -> None:
    anim = explorer.animate(influence_episodes, 1, steps=range(10, 16), interval=100)
    assert explorer.animation_frames(anim) == 6
    page = explorer.animation_html(anim)
    assert page.count("data:image/png;base64,") == 6
    assert "://" not in page and "font-awesome" not in page
    assert anim.panels.step == 15 and "step 15 of 100" in anim.panels.title.get_text()
    plain = explorer.animate(a3c_episodes, 0, steps=[0, 29])
    assert explorer.animation_frames(plain) == 2 and plain.panels.outlined(3) == (None, None)
    assert explorer.animation_html(plain, colours=None).count("data:image/png;base64,") == 2
    with pytest.raises(ValueError, match="step 30 is outside"):
        explorer.animate(a3c_episodes, 0, steps=[30])


def test_panels_outline_the_most_influenced_agent(influence_episodes) -> None:
    ep = influence_episodes
    panels = explorer.EpisodePanels(ep, 0, 0)
    for step in (0, 40, 99):
        panels.draw(step)
        k, j = panels.outlined(step)
        assert k == 0 and ep.influence[0, step, 0, j - 1] == ep.influence[0, step, 0].max()
        top, bottom, left, _ = field_of_view(ep.pos[0, step, j], ep.height, ep.width)
        assert panels.fov.get_visible() and panels.fov.get_x() == left - 0.5 and panels.fov.get_height() == bottom - top + 1
        assert list(panels.cursor.get_xdata()) == [step, step]
        assert np.array_equal(panels.view_images[3].get_array(), panels._rgb(ep.views[0, step, 3]))
    assert panels.png()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------- the explorer
def test_explorer_lists_runs_and_follows_the_slider(results) -> None:
    runs = explorer.recordable_runs(results)
    assert [label for label, _ in runs] == ["cleanup_influence / smoke", "harvest_a3c / smoke"]
    ex = explorer.EpisodeExplorer(results)
    assert ex.run_menu.value is not None and ex.episodes is not None
    assert (Path(ex.run_menu.value) / "episodes.npz").is_file()  # recorded on first use
    assert ex.step == 0 and ex.seed_menu.options and ex.slider.max == ex.episodes.num_steps - 1
    before_image, before_table = ex.image.value, ex.table.value
    assert before_image[:4] == b"\x89PNG"
    ex.slider.value = 42  # what dragging the slider (or Play) does
    assert ex.step == 42 and ex.image.value != before_image and ex.table.value != before_table
    ex.show(7)
    assert ex.step == 7 and ex.slider.value == 7
    s = ex.episodes.seed_index(ex.seed_menu.value)
    action = ex.episodes.action_names[ex.episodes.actions[s, 7, 0]]
    assert action in ex.table.value and "influencer" in ex.table.value
    ex.seed_menu.value = 1
    assert ex.panels.seed == 1 and ex.step == 7
    ex.outline_menu.value = 3
    assert ex.panels.outlined(7) == (None, 3)
    ex.run_menu.value = str(run_dir(results, "harvest_a3c", "smoke"))
    assert ex.episodes.config == "harvest_a3c" and ex.panels.outline is None
    assert "influence" not in ex.table.value and ex.widget.children


def test_explorer_without_runs(tmp_path) -> None:
    ex = explorer.EpisodeExplorer(tmp_path)
    assert ex.runs == [] and ex.step is None and "No runs under" in ex.status.value


def test_interactive_frontend_guess(monkeypatch) -> None:
    monkeypatch.delenv("SSDLIB_WIDGETS", raising=False)
    assert explorer.interactive_frontend() is False  # no kernel here
    monkeypatch.setenv("SSDLIB_WIDGETS", "1")
    assert explorer.interactive_frontend() is True


def test_explorer_status_names_the_training_seed_and_the_replay_seed(results) -> None:
    ex = explorer.EpisodeExplorer(results)
    replay = ex.episodes.replay_seed
    assert "training seed 0" in ex.status.value and f"replay seed {replay}" in ex.status.value
    ex.seed_menu.value = 1  # what picking a seed in the menu does
    assert "training seed 1" in ex.status.value and "training seed 0" not in ex.status.value
    assert f"replay seed {replay}" in ex.status.value and "step 0 of" in ex.status.value
    ex.slider.value = 12
    assert "training seed 1" in ex.status.value and "step 12 of" in ex.status.value
    ex.outline_menu.value = 2
    assert "training seed 1" in ex.status.value and "step 12 of" in ex.status.value
    ex.seed_menu.value = 0
    assert "training seed 0" in ex.status.value and "training seed 1" not in ex.status.value


def test_box_trapped_names_its_open_action() -> None:
    env = make_env("box_trapped", num_envs=1)
    assert env.action_names[-1] == "OPEN" and len(env.action_names) == env.num_actions == 8


def test_constant_influence_is_never_above_its_mean(influence_episodes) -> None:
    flat = replace(influence_episodes, exerted=np.full_like(influence_episodes.exerted, 0.1))
    assert (influence_sparsity(flat).fraction_above_mean == 0.0).all()
