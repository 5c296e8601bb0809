"""Collecting a rollout reads nothing back from the device between episode ends.

On a GPU every read of a tensor's value on the host (bool(), item(), tolist(), cpu(), a
data-dependent shape such as nonzero()) stalls the launch queue until the device catches up.
The trainer's env steps need none: actions come from an argmax, so the env's range check is
skipped (`check_range=False`), episode ends are known on the host (all games reach the horizon
together), and β w(t) and the counters are host numbers. Here, on the CPU, every such read
raises while a rollout is collected; on CUDA, torch's sync debug mode does the same. The env's
CPU-only shortcuts that branch on a device value (`GridGame.branch_on_host`) are switched off
here, so the CPU runs the code path a GPU runs.
"""

from dataclasses import replace

import pytest
import torch

from ssdlib.training.conditions import get_preset, load_config
from ssdlib.training.trainer import Trainer

CONFIGS = ["cleanup_a3c", "harvest_influence", "cleanup_moa_influence", "cleanup_comm_influence",
           "cleanup_inequity_aversion", "cleanup_ppo"]
HOST_READS = ("__bool__", "item", "tolist", "__int__", "__float__", "__index__", "numpy", "cpu", "nonzero")


def trainer_inside_an_episode(name: str, device: str = "cpu", capture: bool = False) -> Trainer:
    """A smoke-preset trainer whose episodes are longer than one rollout, so that collecting
    one rollout crosses no episode end (whose metrics are read on the host by design)."""
    config = load_config(name)
    preset = replace(get_preset("smoke"), horizon=3 * config.optim.rollout_length)
    trainer = Trainer(config, preset, [0, 1], device, capture=capture)
    trainer.env.branch_on_host = False  # what it is on a GPU
    return trainer


@pytest.mark.parametrize("name, capture", [(name, False) for name in CONFIGS]
                         + [("cleanup_a3c", True), ("cleanup_influence", True)])
def test_collecting_a_rollout_reads_no_tensor_on_the_host(name, capture, monkeypatch):
    """Acting and stepping the games eagerly, or through the captured steps (`capture`)."""
    trainer = trainer_inside_an_episode(name, capture=capture)

    def host_read(self, *args, **kwargs):
        raise AssertionError("a tensor was read on the host while collecting")
    for method in HOST_READS:
        monkeypatch.setattr(torch.Tensor, method, host_read)
    monkeypatch.setattr(torch, "nonzero", host_read)
    batch = trainer.collect()
    monkeypatch.undo()
    assert batch.steps.actions.shape[0] == trainer.config.optim.rollout_length
    assert trainer.env.t == trainer.config.optim.rollout_length  # no episode ended


def test_the_host_read_guard_catches_the_env_range_check(monkeypatch):
    """The guard above is not vacuous: the env's range check, left on, trips it."""
    trainer = trainer_inside_an_episode("cleanup_a3c")
    actions = torch.zeros(trainer.env.num_envs, trainer.N, dtype=torch.long)

    def host_read(self, *args, **kwargs):
        raise AssertionError("host read")
    monkeypatch.setattr(torch.Tensor, "__bool__", host_read)
    with pytest.raises(AssertionError, match="host read"):
        trainer.env.step(actions)
    trainer.env.step(actions, check_range=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("capture", [False, True])
@pytest.mark.parametrize("name", ["cleanup_a3c", "cleanup_influence"])
def test_collecting_a_rollout_on_cuda_never_synchronises(name, capture):
    trainer = trainer_inside_an_episode(name, "cuda", capture)
    trainer.collect()  # warm-up: lazy initialisation (and the captures) may synchronise once
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.collect()
    finally:
        torch.cuda.set_sync_debug_mode("default")
