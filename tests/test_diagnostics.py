"""The per-episode diagnostics: loss terms by name, the listening diagnostic, sparsity columns."""

import dataclasses
import math

import pytest
import torch

from ssdlib.agents.blocks import RecurrentCore
from ssdlib.training import losses
from ssdlib.training.conditions import Preset, load_config
from ssdlib.training.trainer import Trainer

TINY = Preset("tiny", total_steps=400, num_envs=2, horizon=20, checkpoint_seconds=0.0)


def train(name: str, seeds=(0, 1), iterations: int = 3, rollout: int = 20) -> Trainer:
    config = load_config(name)
    config = dataclasses.replace(config, optim=dataclasses.replace(config.optim, rollout_length=rollout))
    trainer = Trainer(config, TINY, list(seeds))
    for _ in range(iterations):
        trainer.train_iteration()
    return trainer


def test_approx_kl_and_ppo_terms_by_hand():
    logp = torch.log(torch.tensor([[[0.5, 0.2]]]))
    old = torch.log(torch.tensor([[[0.25, 0.2]]]))
    ratio = torch.tensor([2.0, 1.0])
    expected = (ratio - 1) - torch.log(ratio)
    assert torch.allclose(losses.approx_kl(logp, old)[0, 0], expected)
    adv = torch.tensor([[[1.0, -1.0]]])
    clipped = losses.ppo_clipped_loss(logp, old, adv, clip=0.3)
    assert torch.allclose(clipped[0, 0], torch.tensor([-1.3, 1.0]))
    assert torch.allclose(losses.policy_gradient_loss(logp, adv), -logp * adv)
    assert losses.value_loss(torch.tensor(3.0), torch.tensor(1.0)).item() == 2.0
    uniform = torch.log(torch.full((4,), 0.25))
    assert losses.entropy(uniform).item() == pytest.approx(math.log(4))


def test_actor_critic_terms_are_the_per_model_means_of_the_loss_parts():
    gen = torch.Generator().manual_seed(0)
    t, m, e, a = 5, 3, 4, 6
    logits = torch.randn(t, m, e, a, generator=gen)
    values, returns, adv = (torch.randn(t, m, e, generator=gen) for _ in range(3))
    actions = torch.randint(0, a, (t, m, e), generator=gen)
    old = torch.log_softmax(logits + 0.1 * torch.randn(t, m, e, a, generator=gen), -1).gather(-1, actions[..., None])[..., 0]
    total, terms = losses.actor_critic_loss(logits, values, actions, old, adv, returns, "ppo", 0.5, 0.01, 0.2)
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(-1, actions[..., None])[..., 0]
    ratio = (logp - old).exp()
    policy = -torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    value = 0.5 * (returns - values) ** 2
    assert torch.allclose(terms["policy"], policy.mean((0, 2)))
    assert torch.allclose(terms["value"], value.mean((0, 2)))
    assert torch.allclose(terms["entropy"], entropy.mean((0, 2)))
    assert torch.allclose(terms["clip_fraction"], ((ratio - 1).abs() > 0.2).float().mean((0, 2)))
    assert torch.allclose(total, (terms["policy"] + 0.5 * terms["value"] - 0.01 * terms["entropy"]).sum(), atol=1e-5)
    _, a2c = losses.actor_critic_loss(logits, values, actions, old, adv, returns, "a2c", 0.5, 0.01, 0.2)
    assert set(a2c) == {"policy", "value", "entropy"}


def test_moa_loss_counts_only_kept_entries():
    logits = torch.zeros(2, 1, 1, 2, 4)  # uniform predictions: cross-entropy log 4, accuracy of argmax 0
    targets = torch.tensor([[[[0, 3]]], [[[1, 0]]]])
    mask = torch.tensor([[[[True, False]]], [[[True, True]]]])
    total, terms = losses.moa_loss(logits, targets, mask)
    assert terms["moa"].item() == pytest.approx(math.log(4))
    assert terms["moa_accuracy"].item() == pytest.approx(2 / 3)  # argmax is action 0: right for targets 0, 0
    assert total.item() == pytest.approx(math.log(4))


def test_listening_is_the_norm_of_the_centred_action_rows():
    init = [torch.Generator().manual_seed(s) for s in (0, 1)]
    core = RecurrentCore(init, num_actions=3, blocks={"others": 2})
    rows = core.lstm_wx[:, core.block_rows("others", 1)].detach()
    centred = rows - rows.mean(1, keepdim=True)
    assert torch.allclose(core.listening("others", [1]), centred.flatten(1).norm(dim=1))
    before = core.listening("others", [0, 1])
    with torch.no_grad():  # the same change for every action of a slot carries no information
        core.lstm_wx[:, core.block_rows("others", 0)] += torch.randn(2, 1, core.lstm_wx.shape[-1])
    assert torch.allclose(core.listening("others", [0, 1]), before, rtol=1e-5)
    with torch.no_grad():  # rows equal across actions: the gates ignore which action it was
        core.lstm_wx[:, core.block_rows("others", 0)] = 1.0
    assert torch.equal(core.listening("others", [0]), torch.zeros(2))


@pytest.mark.parametrize("name, columns, absent", [
    ("cleanup_a3c", {"loss_policy", "loss_value", "loss_entropy"},
     {"approx_kl", "listening", "loss_moa", "influence_mean_0"}),
    ("cleanup_ppo", {"loss_policy", "approx_kl", "clip_fraction"}, {"loss_moa"}),
    ("cleanup_visible", {"listening", "listening_init"}, {"influence_mean_0"}),
    ("cleanup_influence", {"listening", "influence_mean_0", "influence_above_mean_0"}, {"influence_mean_1"}),
    ("cleanup_moa_influence", {"loss_moa", "moa_accuracy", "listening"} | {f"influence_mean_{k}" for k in range(5)},
     {"approx_kl"}),
])
def test_episode_rows_carry_the_condition_s_diagnostics(name, columns, absent):
    trainer = train(name, iterations=3 if name != "cleanup_ppo" else 2)
    last = trainer.episodes[-1]
    assert columns <= set(last), sorted(columns - set(last))
    assert not absent & set(last), sorted(absent & set(last))
    for column in columns:
        assert math.isfinite(last[column]), column
    if "moa_accuracy" in last:
        assert 0.0 <= last["moa_accuracy"] <= 1.0
    for k in range(5):
        if f"influence_above_mean_{k}" in last:
            assert 0.0 <= last[f"influence_above_mean_{k}"] <= 1.0
            assert last[f"influence_mean_{k}"] >= 0.0


def test_listening_starts_at_its_initial_value_and_is_per_seed():
    trainer = Trainer(load_config("cleanup_influence"), TINY, [0, 3])
    init = trainer.state.listening_init
    assert init.shape == (2,)
    assert torch.equal(trainer.listening(), init)
    # the influencees' weights for the influencer's slot, by hand, for seed 3 (second seed)
    core = trainer.net.core
    rows = core.lstm_wx[5 + 1: 10, core.block_rows("others", 0)].detach()
    by_hand = (rows - rows.mean(1, keepdim=True)).flatten(1).norm(dim=1).mean()
    assert init[1].item() == pytest.approx(by_hand.item(), rel=1e-6)
