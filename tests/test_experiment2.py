"""Experiment II (influential communication): the chapter's analysis
(`ssdlib.experiments.communication`) on synthetic episodes whose answers can be checked by hand,
Table 4's communication rows, and the chapter itself executed by papermill on small synthetic
run folders (tests/test_book.py executes it on real smoke runs, with the whole book)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pandas as pd
import pytest

from ssdlib.book.plotting import condition_colour
from ssdlib.experiments import communication as comm
from ssdlib.experiments import social_dilemmas as sd

REPO = Path(__file__).resolve().parent.parent
N = 5  # agents


def episodes(messages: np.ndarray, actions: np.ndarray, vocabulary: int, num_actions: int,
             message_influence: np.ndarray | None = None, rewards: np.ndarray | None = None,
             config: str = "cleanup_comm_influence") -> SimpleNamespace:
    """What the analysis reads of `ssdlib.episodes.Episodes`: [S, T, N] arrays, and a message
    influence [S, T, N, N-1] (empty, as the baseline records it, when None)."""
    s, t, n = actions.shape
    return SimpleNamespace(
        config=config, seeds=list(range(s)), actions=actions, messages=messages, vocabulary=vocabulary,
        action_names=tuple(f"a{i}" for i in range(num_actions)),
        rewards=np.zeros((s, t, n), np.float32) if rewards is None else rewards,
        message_influence=np.zeros((s, t, 0, n - 1)) if message_influence is None else message_influence,
    )


def balanced(values: int, repeats: int, rng: np.random.Generator) -> np.ndarray:
    """Each of `values` symbols exactly `repeats` times, in random order."""
    return rng.permutation(np.repeat(np.arange(values), repeats))


# ---------------------------------------------------------------------------- hand-checked cases
def test_listener_slots_and_who_influences_whom() -> None:
    assert [comm.listener_slot(2, j) for j in (0, 1, 3, 4)] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="own listeners"):
        comm.listener_slot(1, 1)
    influence = np.zeros((N, N - 1))
    influence[0, comm.listener_slot(0, 3)] = 2.0  # agent 0 on agent 3
    influence[4, comm.listener_slot(4, 3)] = 0.5  # agent 4 on agent 3
    influence[3, comm.listener_slot(3, 1)] = 1.0  # agent 3 on agent 1
    np.testing.assert_allclose(comm.exerted(influence), [2.0, 0.0, 0.0, 1.0, 0.5])
    np.testing.assert_allclose(comm.received(influence), [0.0, 1.0, 0.0, 2.5, 0.0])


def test_a_speaker_saying_its_action_is_fully_consistent() -> None:
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, (1, 400, N))
    messages = rng.integers(0, 4, (1, 400, N))
    messages[0, :, 2] = actions[0, :, 2]  # agent 2 says what it does
    frame = comm.communication_metrics(episodes(messages, actions, 4, 4))
    sc = frame[frame.measure == "speaker consistency"].set_index("agent")
    assert set(frame.moments) == {"all steps"}  # no influence recorded: no influential moments
    assert sc.loc[2, "value"] == pytest.approx(1.0)
    assert sc.loc[2, "steps"] == 400
    assert (sc.drop(index=2).value < 0.1).all()  # independent uniform symbols: near 0
    assert (sc.shuffled < 0.1).all()  # shuffling destroys the code


def test_a_listener_copying_a_symbol_gives_log_v_at_all_steps() -> None:
    rng = np.random.default_rng(1)
    v, t = 4, 4 * 250 + 1
    actions = rng.integers(0, v, (1, t, N))
    messages = rng.integers(0, v, (1, t, N))
    messages[0, :-1, 0] = balanced(v, 250, rng)  # the pairs (t, t + 1) see each symbol 250 times
    actions[0, 1:, 3] = messages[0, :-1, 0]  # agent 3 does next what agent 0 says
    frame = comm.communication_metrics(episodes(messages, actions, v, v)).set_index("measure")
    ic = frame.loc["symbol/action IC"]
    assert ic.value == pytest.approx(math.log(v), abs=1e-12)
    assert (ic.agent, ic.listener, ic.steps) == (0, 3, t - 1)
    assert ic.shuffled < 0.02  # the floor of the max over 20 pairs on 1000 steps: about 0.01 nats
    assert frame.loc["action/action IC"].value < 0.05  # agent 0's actions say nothing


def test_shuffled_coordination_is_near_zero_on_long_independent_sequences() -> None:
    rng = np.random.default_rng(2)
    t, v = 20_000, 3
    actions = rng.integers(0, v, (t, N))
    symbols = rng.integers(0, v, (t, N))
    c = comm.coordination(symbols, actions, v, v, rng=np.random.default_rng(0))
    bias = (v - 1) ** 2 / (2 * (t - 1))  # the plug-in bias of one pair, in nats
    assert 0 < c["shuffled"] < 5 * bias
    assert c["value"] < 5 * bias
    assert c["steps"] == t - 1


def test_coordination_at_influential_moments_keeps_only_the_speakers_moments() -> None:
    rng = np.random.default_rng(3)
    v, t = 4, 1000
    moments = np.arange(10, 10 + 40 * 20, 20)  # 40 steps, none next to another
    actions = rng.integers(0, v, (1, t, N))
    messages = rng.integers(0, v, (1, t, N))
    messages[0, moments, 1] = balanced(v, 10, rng)
    actions[0, moments + 1, 4] = messages[0, moments, 1]  # agent 4 acts on agent 1's symbol, only then
    influence = np.full((1, t, N, N - 1), 0.01)  # constant: every step is a moment of the other speakers
    influence[0, :, 1] = 0.0
    influence[0, moments, 1, comm.listener_slot(1, 4)] = 5.0
    ep = episodes(messages, actions, v, v, influence)

    frame = comm.communication_metrics(ep).set_index(["measure", "moments"])
    at_moments = frame.loc[("symbol/action IC", "influential moments")]
    assert (at_moments.agent, at_moments.listener, at_moments.steps) == (1, 4, 40)
    assert at_moments.value == pytest.approx(math.log(v), abs=1e-12)
    assert at_moments.shuffled < at_moments.value / 2  # on 40 steps the floor is high, not that high
    all_steps = frame.loc[("symbol/action IC", "all steps")]
    assert all_steps.value < 0.2 and all_steps.steps == t - 1
    sc = comm.communication_metrics(ep).query("measure == 'speaker consistency' and moments == 'influential moments'")
    assert sc.set_index("agent").steps.to_dict() == {0: t, 1: 40, 2: t, 3: t, 4: t}

    sparsity = comm.influence_sparsity(ep).set_index("speaker")
    assert sparsity.loc[1, "fraction_above_mean"] == pytest.approx(40 / t)
    assert (sparsity.drop(index=1).fraction_above_mean == 0).all()  # constant influence: never above its mean
    assert sparsity.loc[1, "mean_influence"] == pytest.approx(5.0 * 40 / t)


def test_the_baseline_has_no_influential_moments_and_no_sparsity() -> None:
    rng = np.random.default_rng(4)
    ep = episodes(rng.integers(0, 3, (2, 50, N)), rng.integers(0, 3, (2, 50, N)), 3, 3, config="harvest_comm_baseline")
    frame = comm.communication_metrics(ep)
    assert set(frame.moments) == {"all steps"} and set(frame.seed) == {0, 1}
    assert set(frame.condition) == {"comm_baseline"} and set(frame.game) == {"harvest"}
    with pytest.raises(ValueError, match="no influence of the symbols"):
        comm.influence_sparsity(ep)
    silent = episodes(np.zeros((1, 50, 0), np.int64), rng.integers(0, 3, (1, 50, N)), 0, 3)
    with pytest.raises(ValueError, match="hold no symbols"):
        comm.communication_metrics(silent)


def test_figure5_summary_averages_speakers_then_seeds() -> None:
    rows = [{"config": "cleanup_comm_influence", "game": "cleanup", "condition": "comm_influence", "seed": s,
             "measure": "speaker consistency", "moments": "all steps", "agent": k, "listener": -1,
             "value": 0.1 * k + s, "shuffled": 0.0, "steps": 100} for s in (0, 1) for k in range(N)]
    rows += [{"config": "cleanup_comm_influence", "game": "cleanup", "condition": "comm_influence", "seed": s,
              "measure": "symbol/action IC", "moments": "all steps", "agent": 0, "listener": 1,
              "value": 1.0 + s, "shuffled": 0.5, "steps": 99} for s in (0, 1)]
    summary = comm.figure5_summary(pd.DataFrame(rows)).set_index("measure")
    assert list(summary.index) == ["speaker consistency", "symbol/action IC"]
    assert summary.loc["speaker consistency", "value"] == pytest.approx(0.7)  # seed means 0.2 and 1.2
    assert summary.loc["speaker consistency", "value sd"] == pytest.approx(math.sqrt(0.5))
    assert summary.loc["symbol/action IC", ["value", "shuffled", "seeds"]].tolist() == [1.5, 0.5, 2]


def test_agents_influenced_more_often_earn_more() -> None:
    rng = np.random.default_rng(5)
    s, t = 3, 200
    influence = rng.uniform(0, 1, (s, t, N, N - 1))
    for j in range(N):  # agent j receives a lot at the first 20 * j steps of each seed
        for k in range(N):
            if k != j:
                influence[:, : 20 * j, k, comm.listener_slot(k, j)] += 10.0
    rewards = np.zeros((s, t, N), np.float32)
    rewards[:, 0] = np.arange(N) * np.array([[1.0], [2.0], [5.0]])  # more influenced, more reward
    ep = episodes(rng.integers(0, 3, (s, t, N)), rng.integers(0, 3, (s, t, N)), 3, 3, influence, rewards)
    table = comm.influenced_and_returns(ep)
    assert len(table) == s * N
    assert table.groupby("seed").fraction_influenced.apply(lambda f: f.is_monotonic_increasing).all()
    np.testing.assert_allclose(table["return"], rewards.sum(1).ravel())
    result = comm.influence_reward_correlation(table).set_index("game").loc["cleanup"]
    assert result.rho == pytest.approx(1.0) and result.pvalue == 0.0
    assert (result.agents, result.runs, result["paper rho"]) == (s * N, s, comm.PAPER_CORRELATION["cleanup"])
    flat = table.assign(**{"return": 0.0})
    assert "constant" in comm.influence_reward_correlation(flat).note.iloc[0]


# ---------------------------------------------------------------------------- Table 4 rows
def fake_metrics(configs: list[str], seeds=(0, 1), episodes_per_seed: int = 5, steps: int = 1_600) -> pd.DataFrame:
    """Per-episode metrics as a run logs them, with what the chapters read."""
    rng = np.random.default_rng(6)
    rows = []
    for c, config in enumerate(configs):
        for seed in seeds:
            for e in range(episodes_per_seed):
                returns = rng.normal(10.0 * (c + 1), 5.0, N)
                row = {"config": config, "seed": seed, "episode": e, "env_steps": (e + 1) * steps // episodes_per_seed,
                       "collective_reward": returns.sum(), "equality": 0.9,
                       "collective_times_equality": 0.9 * returns.sum(), "listening": 1.0 + 0.01 * e,
                       "listening_init": 1.0}
                for k in range(N):
                    row |= {f"return_{k}": returns[k], f"apples_{k}": 3.0, f"fire_{k}": 1.0, f"clean_{k}": 0.5,
                            f"influence_{k}": 0.1, f"influence_mean_{k}": 1e-3, f"influence_above_mean_{k}": 0.3}
                rows.append(row)
    return pd.DataFrame(rows)


def test_table4_communication_rows_are_computed_as_the_others() -> None:
    configs = ["cleanup_a3c", "cleanup_moa_influence", "cleanup_comm_baseline", "cleanup_comm_influence",
               "harvest_comm_influence"]
    metrics = fake_metrics(configs)
    finals = sd.final_rewards(metrics)
    assert list(dict.fromkeys(finals.config)) == configs
    assert finals.set_index("config").loc["harvest_comm_influence", "condition"].tolist() == ["comm_influence"] * 2
    runs = pd.DataFrame({"config": configs, "preset": "smoke", "env_steps_per_seed": 1_600, "device_name": "cpu"})
    table = sd.table4(finals, runs).set_index("config")
    assert table.loc["cleanup_comm_influence", "paper"] == 166 and table.loc["harvest_comm_influence", "paper"] == 951
    assert pd.isna(table.loc["cleanup_comm_baseline", "paper"]) and table.loc["cleanup_moa_influence", "paper"] == 392
    assert table.loc["cleanup_comm_influence", "condition"] == "influential communication"

    book = sd.table4_book(table.reset_index()).set_index("model")
    row = book.loc["influential communication"]
    assert row["Cleanup, paper"] == "166" and row["Harvest, paper"] == "951"
    assert row["Cleanup, ours"].endswith("(smoke, 1.6e+03 steps, 2/2 seeds)")
    assert book.loc["communication baseline", "Harvest, ours"] == "not run"
    assert book.loc["A3C", "Cleanup, paper"] == "89"

    listening = sd.listening_table(metrics).set_index("config")
    assert listening.loc["cleanup_comm_influence", "change"] == pytest.approx(0.04)
    assert listening.loc["cleanup_comm_influence", "condition"] == "comm_influence"
    summary = sd.final_summary(metrics[metrics.config.isin(["cleanup_comm_influence", "cleanup_moa_influence"])],
                                 ["influence_above_mean_0"])
    assert summary.influence_above_mean_0.tolist() == pytest.approx([0.3, 0.3])


def test_names_and_settings() -> None:
    assert sd.split_config("cleanup_comm_baseline") == ("cleanup", "comm_baseline")
    assert sd.config_label("harvest_comm_influence") == "Harvest, influential communication"
    with pytest.raises(ValueError, match="unknown condition"):
        sd.split_config("cleanup_comm")
    assert condition_colour("cleanup_comm_influence") != condition_colour("cleanup_comm_baseline")
    table = comm.settings(["cleanup_comm_influence", "harvest_comm_baseline"], "cpu").set_index("config")
    row = table.loc["cleanup_comm_influence"]
    assert [row["vocabulary V"], row["α (extrinsic, π_m)"], row["β (influence, π_m)"]] == [9, 0.0, 2.752]
    assert table.loc["harvest_comm_baseline", "β (influence, π_m)"] == 0.0
    assert table.loc["cleanup_comm_influence", "C on preset cpu (steps)"] == pytest.approx(1e6 * 320_000 / 5e8)


# ---------------------------------------------------------------------------- the chapter
def fake_run(results: Path, config: str, preset: str, seeds: list[int], rng: np.random.Generator) -> None:
    """A finished run folder with synthetic metrics and, for the communication configs, a
    synthetic recording (no checkpoint: `ensure_episodes` returns the recording as it is)."""
    from ssdlib.book.results import run_dir
    from ssdlib.episodes.format import Episodes, save_episodes
    from ssdlib.train import resolved_config

    folder = run_dir(results, config, preset)
    folder.mkdir(parents=True)
    resolved = resolved_config(config, preset, seeds)
    (folder / "config.json").write_text(json.dumps(resolved, default=str))
    steps = resolved["preset"]["total_steps"]
    (folder / "provenance.json").write_text(json.dumps({"env_steps_per_seed": steps, "device_name": "test cpu",
                                                        "git_commit": "0" * 40, "torch": "test"}))
    fake_metrics([config], seeds, steps=steps).drop(columns="config").to_parquet(folder / "metrics.parquet")
    (folder / "done").write_text("finished\n")
    game, condition = sd.split_config(config)
    if condition not in comm.COMMUNICATION:
        return
    s, t, v, a = len(seeds), 60, 5, 6
    influence = rng.exponential(1.0, (s, t, N, N - 1)) if condition == "comm_influence" else None
    save_episodes(Episodes(
        config=config, env=game, seeds=seeds, maps=np.zeros((s, t, 8, 8), np.uint8),
        views=np.zeros((s, t, N, 15, 15), np.uint8), pos=np.zeros((s, t, N, 2), np.int64),
        orient=np.zeros((s, t, N), np.int64), actions=rng.integers(0, a, (s, t, N)),
        rewards=rng.normal(0, 1, (s, t, N)).astype(np.float32), influence=np.zeros((s, t, 0, N)),
        exerted=np.zeros((s, t, 0, N)), influencers=0, action_names=tuple(f"a{i}" for i in range(a)),
        preset=preset, trained_steps=steps, vocabulary=v, messages=rng.integers(0, v, (s, t, N)),
        message_influence=influence,
    ), folder / "episodes.npz")


def test_chapter_executes_on_runs_it_reads_and_never_trains(tmp_path) -> None:
    import papermill

    from ssdlib.book.reproduce import _kernel_environment, notebook_parameters

    results, seeds = tmp_path / "results", [0, 1]
    rng = np.random.default_rng(7)
    for config in [sd.config_name(g, c) for g in sd.GAMES for c in sd.EXPERIMENT_II]:
        fake_run(results, config, "smoke", seeds, rng)
    parameters = notebook_parameters("smoke", results, train=False, notebook="experiment2")
    out = tmp_path / "experiment2.ipynb"
    with _kernel_environment():
        papermill.execute_notebook(str(REPO / "notebooks" / "experiment2.ipynb"), str(out), parameters=parameters,
                                   kernel_name="python3", cwd=str(REPO), progress_bar=False)
    executed = nbformat.read(out, as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3
    figures = {p.stem for p in (results / "figures" / "experiment2").glob("*.png")}
    assert figures == {"figure4_collective_reward", "figure5_communication", "listening"}
    figure5 = pd.read_csv(results / "tables" / "experiment2" / "figure5.csv")
    assert set(figure5.config) == {sd.config_name(g, c) for g in sd.GAMES for c in comm.COMMUNICATION}
    assert set(figure5[figure5.condition == "comm_baseline"].moments) == {"all steps"}
    table4 = pd.read_csv(results / "tables" / "experiment2" / "table4_experiment2.csv")
    assert set(table4.paper.dropna()) == {89, 485, 166, 951} and (table4.preset == "smoke").all()
    text = "\n".join(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    assert "312,500 times fewer steps than the paper's 5·10⁸" in text  # 5e8 / 1,600, from the runs
    assert "**These runs do not test the paper's claims.**" in text


def test_chapter_is_in_the_book() -> None:
    toc = (REPO / "book" / "_toc.yml").read_text()
    assert toc.index("generated/experiment1") < toc.index("generated/experiment2") < toc.index("generated/experiment3")
