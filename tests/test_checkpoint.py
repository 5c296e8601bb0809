"""Checkpoints: read with `torch.load(weights_only=True)` only, so a file carrying an
arbitrary pickled object is refused before it can run anything; a real checkpoint round-trips
exactly; a checkpoint of another format is a clear error. The same holds where checkpoints
are read: `load_checkpoint`, `replay.load_trainer` and resuming with `train.train`/the CLI."""

import re
import textwrap
from pathlib import Path

import pytest
import torch

from ssdlib.train import main, train
from ssdlib.training.conditions import Preset, load_config
from ssdlib.training.conditions.presets import PRESETS
from ssdlib.training.replay import load_trainer
from ssdlib.training.state import CHECKPOINT_FORMAT, READABLE_FORMATS, load_checkpoint
from ssdlib.training.trainer import Trainer

# ---------------------------------------------------------------------- a payload that would run code
TRIGGERED: list[str] = []


def _trigger(tag: str) -> str:
    """What unpickling the payload calls: harmless, it only records that it ran."""
    TRIGGERED.append(tag)
    return tag


class Payload:
    """Unpickles by calling `_trigger` (a malicious file would name os.system instead)."""

    def __reduce__(self):
        return (_trigger, ("payload ran",))


@pytest.fixture(autouse=True)
def _clean_flag():
    TRIGGERED.clear()
    yield
    TRIGGERED.clear()


def refused(path: Path):
    """pytest.raises for load_checkpoint's refusal of `path`, naming the file."""
    return pytest.raises(ValueError, match=r"refusing to load checkpoint .*" + re.escape(str(path)))


# ---------------------------------------------------------------------- tiny runs
CONFIGS = {
    "moa": """
        name = "tiny_cleanup_moa"
        env = "cleanup"
        num_agents = 3

        [model]
        action_inputs = true
        moa = true

        [reward]
        scheme = "influence"
        influence_source = "moa"
        influence_weight = 0.620
        divergence = "kl"
        curriculum_steps = 4e6

        [optim]
        moa_loss_weight = 15.007
        moa_only_visible = true
        rollout_length = 8
        """,
    "inequity_aversion": """
        name = "tiny_harvest_ia"
        env = "harvest"
        num_agents = 2

        [env_options]
        map = "@@@@@@@\\n@P A P@\\n@ AAA @\\n@@@@@@@\\n"

        [reward]
        scheme = "inequity_aversion"
        ia_alpha = 5.0
        ia_beta = 0.05

        [optim]
        rollout_length = 8
        """,
}
TINY = Preset("tiny_checkpoint", total_steps=96, num_envs=2, horizon=10, checkpoint_seconds=0.0)  # 6 iterations


def write_config(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(CONFIGS[name]))
    return path


@pytest.fixture
def run_folder(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A run folder after one iteration of the tiny MOA run: (config path, folder)."""
    monkeypatch.setitem(PRESETS, TINY.name, TINY)
    config = write_config(tmp_path, "moa")
    out = train(str(config), TINY.name, [0], "cpu", tmp_path / "run", progress=False, max_iterations=1)
    assert (out / "checkpoint.pt").is_file() and not (out / "done").exists()
    return config, out


# ---------------------------------------------------------------------- arbitrary pickled objects
def test_load_checkpoint_refuses_pickled_object(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "net": {"w": torch.zeros(2)}, "payload": Payload()}, path)
    with refused(path):
        load_checkpoint(path)
    assert TRIGGERED == []
    # a nested object (not at the top level) is refused too
    nested = tmp_path / "nested.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "episodes": [{"seed": 0, "row": Payload()}]}, nested)
    with refused(nested):
        load_checkpoint(nested)
    assert TRIGGERED == []
    # not vacuous: unpickled without the restriction, the payload does run
    torch.load(path, weights_only=False)
    assert TRIGGERED == ["payload ran"]


def test_run_folder_with_pickled_object_is_refused(run_folder, capsys):
    config, out = run_folder
    checkpoint = out / "checkpoint.pt"
    data = load_checkpoint(checkpoint)  # the real checkpoint, with one object slipped in
    data["episodes"] = [*data["episodes"], Payload()]
    torch.save(data, checkpoint)
    with refused(checkpoint):
        load_checkpoint(checkpoint)
    with refused(checkpoint):
        load_trainer(out)
    with refused(checkpoint):
        train(str(config), TINY.name, [0], "cpu", out, progress=False)
    with pytest.raises(SystemExit, match=r"error: refusing to load checkpoint .*" + re.escape(str(checkpoint))):
        main([str(config), "--preset", TINY.name, "--seeds", "0", "--out", str(out), "--no-progress"])
    assert TRIGGERED == []
    assert not (out / "done").exists()


# ---------------------------------------------------------------------- real checkpoints round-trip
def make_trainer(tmp_path: Path, name: str) -> Trainer:
    return Trainer(load_config(write_config(tmp_path, name)), TINY, [0, 3], "cpu")


def iterate(trainer: Trainer, count: int) -> None:
    for _ in range(count):
        trainer.train_iteration()


def outcome(trainer: Trainer) -> dict:
    """Everything a continued run produces: episode rows (but wall time), weights, optimiser
    state, observation, memory and the env's RNG-bearing snapshot, as a saved checkpoint."""
    data = trainer.state.checkpoint()
    data["episodes"] = [{k: v for k, v in row.items() if k != "wall_time"} for row in data["episodes"]]
    del data["wall_time"]
    return data


def assert_same(a, b, where: str = "checkpoint") -> None:
    """Exact equality of nested checkpoints (tensors bit for bit, dtypes included)."""
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_checkpoint_round_trips_exactly(tmp_path, name):
    """Stopping mid-episode after 2 iterations and continuing for 3 more gives the same run
    whether the state stays in memory, is restored from its own checkpoint(), or is saved to
    a file, read back with weights_only=True and restored into a fresh Trainer."""
    path = tmp_path / "checkpoint.pt"
    reference = make_trainer(tmp_path, name)
    iterate(reference, 2)
    assert 0 < reference.state.stats.t < TINY.horizon  # mid-episode: the accumulators matter
    torch.save(reference.state.checkpoint(), path)
    iterate(reference, 3)
    expected = outcome(reference)
    assert len(expected["episodes"]) == 2 * 4  # 40 steps: 4 episodes of 10 per seed

    raw = torch.load(path, weights_only=True)  # tensors and plain containers only
    assert raw["format"] == CHECKPOINT_FORMAT
    assert (raw["memory"]["moa"] is not None) == (name == "moa")
    assert (raw["reward_memory"] is not None) == (name == "inequity_aversion")

    fresh = make_trainer(tmp_path, name)
    fresh.state.restore(load_checkpoint(path))
    torch.manual_seed(999)  # the global RNG plays no part
    iterate(fresh, 3)
    assert_same(outcome(fresh), expected)

    in_place = make_trainer(tmp_path, name)
    iterate(in_place, 2)
    in_place.state.restore(in_place.state.checkpoint())
    iterate(in_place, 3)
    assert_same(outcome(in_place), expected)

    # not vacuous: a trainer restored from a different point ends up elsewhere
    early = make_trainer(tmp_path, name)
    iterate(early, 1)
    torch.save(early.state.checkpoint(), path)
    other = make_trainer(tmp_path, name)
    other.state.restore(load_checkpoint(path))
    iterate(other, 3)
    assert not torch.equal(outcome(other)["net"]["head.pi_w"], expected["net"]["head.pi_w"])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_checkpoint_at_an_episode_start_leaves_the_memory_out(tmp_path, name):
    """At an episode's start (5 iterations of 8 steps: the games reset at step 40) the memory
    is the initial one: the checkpoint holds None for it, and a run restored from that
    continues exactly; so does one restored from the same point written by format 2, which
    always held the memory. Mid-episode the memory is kept."""
    path = tmp_path / "checkpoint.pt"
    reference = make_trainer(tmp_path, name)
    iterate(reference, 5)
    assert reference.env.t == 0 and reference.state.memory_is_initial()
    data = reference.state.checkpoint()
    assert data["memory"] is None
    torch.save(data, path)
    memory = reference.state.memory.clone()
    old_format = {**load_checkpoint(path), "format": 2,
                  "memory": {"policy": list(memory.policy), "moa": None if memory.moa is None else list(memory.moa),
                             "heard": None, "spoken_logp": None}}
    iterate(reference, 1)
    expected = outcome(reference)
    assert not reference.state.memory_is_initial() and expected["memory"] is not None

    for source in (load_checkpoint(path), old_format):
        fresh = make_trainer(tmp_path, name)
        iterate(fresh, 2)  # its own memory is not the initial one: restoring must replace it
        fresh.state.restore(source)
        iterate(fresh, 1)
        assert_same(outcome(fresh), expected)


class FakeClock:
    """`time` for ssdlib.train: monotonic() reads a clock that only training moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def test_a_deadline_stops_at_an_episode_start_when_the_next_episode_would_not_fit(tmp_path, monkeypatch):
    """Episodes of 16 steps are 2 iterations of 8; each iteration takes 1 s of a fake clock,
    the deadline is 3.5 s away. After the first episode (2 s) one more iteration would fit but
    not the whole next episode: training stops at the episode's start, and the checkpoint
    holds no memory. A deadline that leaves room for the next episode trains through it."""
    aligned = Preset("tiny_aligned", total_steps=96, num_envs=2, horizon=16, checkpoint_seconds=0.0)
    monkeypatch.setitem(PRESETS, aligned.name, aligned)
    config = str(write_config(tmp_path, "moa"))
    clock = FakeClock()
    monkeypatch.setattr("ssdlib.train.time", clock)
    iteration = Trainer.train_iteration

    def one_second(self: Trainer) -> None:
        iteration(self)
        clock.now += 1.0
    monkeypatch.setattr(Trainer, "train_iteration", one_second)
    for deadline, steps in ((3.5, 32), (4.5, 64)):  # env steps per seed: 2 games x 8 steps an iteration
        clock.now = 0.0
        out = train(config, aligned.name, [0], "cpu", tmp_path / f"run{deadline}", progress=False, deadline=deadline)
        data = load_checkpoint(out / "checkpoint.pt")
        assert data["env_steps"] == steps and data["memory"] is None, deadline


# ---------------------------------------------------------------------- other formats
@pytest.mark.parametrize("value", [1, None])
def test_checkpoint_of_another_format_is_a_clear_error(run_folder, value):
    config, out = run_folder
    checkpoint = out / "checkpoint.pt"
    data = load_checkpoint(checkpoint)
    if value is None:
        del data["format"]
    else:
        data["format"] = value
    torch.save(data, checkpoint)
    message = rf"checkpoint format {value!r} is not one of {re.escape(str(READABLE_FORMATS))}.*another version of ssdlib"
    trainer = Trainer(load_config(config), TINY, [0], "cpu")
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        trainer.state.restore(load_checkpoint(checkpoint))
    for k, v in trainer.net.state_dict().items():  # refused before anything was restored
        assert torch.equal(v, before[k]), k
    assert trainer.env_steps == 0
    with pytest.raises(ValueError, match=message):
        load_trainer(out)
    with pytest.raises(ValueError, match=message):
        train(str(config), TINY.name, [0], "cpu", out, progress=False)
    assert not (out / "done").exists()
