"""The CPU fast paths compute the same numbers, bit for bit, as the plain computation.

- `RecurrentCore.cell` copies each gate out contiguous and, without autograd, updates in place.
- The influence sources take their counterfactuals over slices of the games that fit in a
  core's L2 cache (`in_game_chunks`): every op acts per game, but a batched matrix product of
  fewer rows may round its last bit differently, so the influence agrees to RTOL (measured:
  exactly for the centralised and communication sources, to 3.4e-9 for the MOA's). The slices
  are a fixed function of the shapes, so a run stays bit-reproducible.
(The channels-last conv is checked against a per-copy plain conv in test_network.py, to float
tolerance: its last bits differ from the NCHW conv's.)
"""

from dataclasses import replace

import pytest
import torch

from ssdlib.agents.blocks import RecurrentCore
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
