"""The CPU fast paths compute the same numbers, bit for bit, as the plain computation.

- `RecurrentCore.cell` copies each gate out contiguous and, without autograd, updates in place.
- The influence sources take their counterfactuals over slices of the games that fit in a
  core's L2 cache (`in_game_chunks`): every op acts per game, but a batched matrix product of
  fewer rows may round its last bit differently, so the influence agrees to RTOL (measured:
  exactly for the centralised and communication sources, to 3.4e-9 for the MOA's). The slices
  are a fixed function of the shapes, so a run stays bit-reproducible.
- Cleanup's CLEAN beams are cast all at once, against the waste before the step, in every
  step where no ray's cleaned cell lies on a second cleaning ray (`GridGame._clean_beams_at_once`),
  else one after another: the games evolve exactly as with the sequential beams alone.
(The channels-last conv is checked against a per-copy plain conv in test_network.py, to float
tolerance: its last bits differ from the NCHW conv's.)
"""

from dataclasses import replace

import pytest
import torch

from ssdlib.agents.blocks import RecurrentCore
from ssdlib.envs import make_env
from ssdlib.envs.geometry import CLEAN
from ssdlib.training import influence_sources
from ssdlib.training.conditions import get_preset, load_config
from ssdlib.training.trainer import Trainer

RTOL = 1e-7


def plain_cell(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    i, f, g, o = gates.chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


@pytest.mark.parametrize("shape", [(5, 7, 512), (4, 6, 9, 512)])
def test_cell_with_and_without_autograd_equals_the_plain_cell(shape):
    gen = torch.Generator().manual_seed(0)
    gates = torch.randn(shape, generator=gen) * 3
    c = torch.randn(*shape[:2], *([1] if len(shape) == 4 else []), 128, generator=gen)
    h_want, c_want = plain_cell(gates, c)
    with torch.no_grad():
        fast = RecurrentCore.cell(gates, c)
    graph = RecurrentCore.cell(gates.clone().requires_grad_(), c)
    for state in (fast, graph):
        assert torch.equal(state.h, h_want) and torch.equal(state.c, c_want)
    assert graph.h.requires_grad and not fast.h.requires_grad


def played_trainer(name: str) -> Trainer:
    """A smoke-preset trainer of `name` with 7 games per seed, two seeds, a few steps played."""
    preset = replace(get_preset("smoke"), num_envs=7)
    trainer = Trainer(load_config(name), preset, [0, 1])
    for _ in range(3):
        trainer.play()
    return trainer


@pytest.mark.parametrize("name", ["cleanup_influence", "harvest_influence", "cleanup_moa_influence",
                                  "cleanup_comm_influence"])
def test_influence_in_game_chunks_agrees_with_all_games_at_once(name, monkeypatch):
    trainer = played_trainer(name)
    st = trainer.state
    sampling = st.generator.get_state()

    def influence() -> influence_sources.InfluenceStep:
        st.generator.set_state(sampling)  # the same actions every time
        with torch.no_grad():
            return trainer.act(st.obs, st.memory).influence
    whole = influence()
    assert whole.reward.abs().sum() > 0
    for cache in (2**17, 3 * 2**16, 2**18):  # slices of a few games, the last one shorter
        monkeypatch.setattr(influence_sources, "CACHE_BYTES", cache)
        chunked = influence()
        for want, got in zip(whole, chunked):
            torch.testing.assert_close(got, want, rtol=RTOL, atol=0)


def test_in_game_chunks_slices_dim_one_and_keeps_order(monkeypatch):
    monkeypatch.setattr(influence_sources, "CACHE_BYTES", 8)
    x = torch.arange(2 * 7 * 3).view(2, 7, 3)
    seen = []

    def fn(a: torch.Tensor) -> torch.Tensor:
        seen.append(a.shape[1])
        return a * 2
    assert torch.equal(influence_sources.in_game_chunks(fn, (x,), bytes_per_game=3), x * 2)
    assert seen == [2, 2, 2, 1]


def test_clean_beams_at_once_evolve_the_games_as_the_sequential_beams(monkeypatch):
    """Two Cleanup batches, one stepping its beams in order only, driven by the same
    CLEAN-heavy random actions for 300 steps: every state tensor and output stays equal, and
    both the at-once path and its fallback were taken (the comparison is not vacuous)."""
    fast = make_env("cleanup", num_envs=16, seed=3)
    plain = make_env("cleanup", num_envs=16, seed=3)
    plain.branch_on_host = False
    taken = []
    at_once = type(fast)._clean_beams_at_once

    def counted(self, *args):
        taken.append(at_once(self, *args))
        return taken[-1]
    monkeypatch.setattr(type(fast), "_clean_beams_at_once", counted)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        actions = torch.randint(0, fast.num_actions, (16, 5), generator=gen)
        actions[torch.rand(16, 5, generator=gen) < 0.5] = CLEAN
        got, want = fast.step(actions), plain.step(actions)
        assert torch.equal(got[0].image, want[0].image) and torch.equal(got[1], want[1])
        assert all(torch.equal(got[3][key], want[3][key]) for key in want[3])
        for a, b in zip(fast.state.tensors(), plain.state.tensors()):
            assert torch.equal(a, b)
    assert len(taken) == 300 and 0 < sum(taken) < 300, sum(taken)


def test_cell_without_autograd_leaves_the_callers_gates_unchanged():
    """Even where a gate chunk is already contiguous (one copy, one game), the in-place cell
    works on its own copy."""
    gen = torch.Generator().manual_seed(1)
    for shape in [(1, 1, 512), (3, 2, 512)]:
        gates = torch.randn(shape, generator=gen)
        before = gates.clone()
        with torch.no_grad():
            RecurrentCore.cell(gates, torch.randn(*shape[:2], 128, generator=gen))
        assert torch.equal(gates, before)
