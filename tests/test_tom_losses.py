"""The Theory-of-Mind agents' equations: CLUB on Gaussians of known mutual information, the
first- and second-order belief losses, the ToM reward's sign and range, and PPO's pieces."""

import math

import pytest
import torch

from ssdlib.envs.physical_deception import PhysicalDeception
from ssdlib.tom import beliefs, club, ppo
from ssdlib.tom.config import load_config
from ssdlib.tom.networks import ToMNetworks, agent_inputs


# ---------------------------------------------------------------------------- CLUB
def gaussian_pairs(n: int, dim: int, rho: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(b, z) with b ~ N(0, I) and z = ρ b + sqrt(1 - ρ²) ε: I(b; z) = -dim/2 log(1 - ρ²)."""
    b = torch.randn(1, n, dim, generator=gen)
    z = rho * b + math.sqrt(1 - rho**2) * torch.randn(1, n, dim, generator=gen)
    return b, z


def fitted_club(rho: float, dim: int = 2, steps: int = 400) -> float:
    """Fit q(z|b) on fresh pairs with its own Adam, then estimate I on a held-out batch."""
    gen = torch.Generator().manual_seed(0)
    q = club.VariationalGaussian([torch.Generator().manual_seed(1)], dim, dim, 32)
    optimiser = torch.optim.Adam(q.parameters(), lr=3e-3)
    for _ in range(steps):
        b, z = gaussian_pairs(256, dim, rho, gen)
        optimiser.zero_grad()
        club.q_loss(z, *q(b)).sum().backward()
        optimiser.step()
    b, z = gaussian_pairs(4000, dim, rho, gen)
    with torch.no_grad():
        return float(club.club_estimate(z, *q(b)))


def test_club_is_near_zero_for_independent_pairs():
    assert abs(fitted_club(0.0)) < 0.03


def test_club_bounds_the_mutual_information_of_correlated_gaussians_from_above():
    """With q the true conditional N(ρ b, 1 - ρ²), CLUB's expectation is dim ρ² / (1 - ρ²),
    above the true I = -dim/2 log(1 - ρ²); a fitted q lands between the two, nearer the bound."""
    dim = 2
    for rho in (0.5, 0.8):
        true_mi = -dim / 2 * math.log(1 - rho**2)
        exact_q_bound = dim * rho**2 / (1 - rho**2)
        estimate = fitted_club(rho, dim)
        assert true_mi < estimate < exact_q_bound * 1.15, (rho, true_mi, estimate, exact_q_bound)


def test_club_closed_form_equals_the_all_pairs_mean():
    gen = torch.Generator().manual_seed(3)
    z, mu = torch.randn(3, 50, 4, generator=gen), torch.randn(3, 50, 4, generator=gen)
    logvar = torch.tanh(torch.randn(3, 50, 4, generator=gen))
    log_q = club.gaussian_log_likelihood(z[:, None, :, :], mu[:, :, None, :], logvar[:, :, None, :])  # [3, i, j]
    explicit = (log_q.diagonal(dim1=1, dim2=2) - log_q.mean(2)).mean(1)
    torch.testing.assert_close(club.club_estimate(z, mu, logvar), explicit, rtol=1e-5, atol=1e-5)


def test_club_penalty_moves_beliefs_and_residuals_but_not_q():
    q = club.VariationalGaussian([torch.Generator().manual_seed(0)], 2, 3, 8)
    b = torch.rand(1, 20, 2, requires_grad=True)
    z = torch.randn(1, 20, 3, requires_grad=True)
    club.club_estimate(z, *q.frozen(b)).sum().backward()
    assert b.grad.abs().sum() > 0 and z.grad.abs().sum() > 0
    assert all(p.grad is None for p in q.parameters())


# ---------------------------------------------------------------------------- beliefs
def test_first_order_loss_is_the_cross_entropy_against_the_target():
    logits = torch.tensor([[[2.0, -1.0], [0.0, 0.0], [-30.0, 30.0]]])
    goal = torch.tensor([[0, 1, 1]])
    expected = -(torch.log_softmax(logits, -1).gather(-1, goal[..., None])).mean()
    torch.testing.assert_close(beliefs.first_order_loss(logits, goal), expected[None])
    assert float(beliefs.first_order_loss(logits[:, 2:], goal[:, 2:])) < 1e-6  # certain and right
    torch.testing.assert_close(beliefs.first_order_loss(logits[:, 1:2], goal[:, 1:2]), torch.tensor([math.log(2)]))


def test_others_lists_each_agents_others_in_agent_order():
    b = torch.arange(2 * 3, dtype=torch.float32).view(6, 1, 1).expand(6, 4, 2)  # model m's belief = m
    others = beliefs.others(b, 3)
    assert others.shape == (6, 4, 2, 2)
    assert others[:, 0, :, 0].tolist() == [[1, 2], [0, 2], [0, 1], [4, 5], [3, 5], [3, 4]]


def test_others_matches_the_observation_slots():
    """Agent i's k-th "other" belief is that of the agent in its k-th "other agent" observation slot."""
    env = PhysicalDeception(num_envs=1, seed=0)
    obs = agent_inputs(env.observe())[:, 0]  # [3, 10]
    pos = env.state.pos[0].float()
    positions = beliefs.others(pos.view(3, 1, 2), 3)[:, 0]  # [3, 2 others, 2]
    for i in range(3):
        torch.testing.assert_close(obs[i, 6:].view(2, 2), positions[i] - pos[i])


def test_second_order_loss_trains_the_predictor_only():
    predicted = torch.full((1, 5, 2, 2), 0.5, requires_grad=True)
    actual = torch.tensor([1.0, 0.0]).expand(1, 5, 2, 2).clone().requires_grad_(True)
    loss = beliefs.second_order_loss(predicted, actual)
    torch.testing.assert_close(loss, torch.tensor([0.25]))
    loss.sum().backward()
    assert predicted.grad.abs().sum() > 0 and actual.grad is None


def test_tom_reward_is_zero_when_exact_and_in_minus_one_to_zero():
    gen = torch.Generator().manual_seed(0)
    actual = torch.rand(100, 2, 2, generator=gen).softmax(-1)
    assert torch.equal(beliefs.tom_reward(actual, actual), torch.zeros(100))
    predicted = torch.rand(100, 2, 2, generator=gen).softmax(-1)
    reward = beliefs.tom_reward(predicted, actual)
    assert (reward <= 0).all() and (reward >= -1).all() and (reward < 0).all()
    opposite = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    assert float(beliefs.tom_reward(opposite, opposite.flip(-1))) == -1.0
    worse = beliefs.tom_reward(torch.tensor([[[0.9, 0.1]]]), torch.tensor([[[0.1, 0.9]]]))
    better = beliefs.tom_reward(torch.tensor([[[0.6, 0.4]]]), torch.tensor([[[0.1, 0.9]]]))
    assert worse < better < 0


# ---------------------------------------------------------------------------- PPO and the networks
def test_gae_with_unit_gamma_and_lambda_is_the_return_to_go_minus_the_value():
    rewards, values = torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[0.5], [0.1], [-1.0]])
    advantages, returns = ppo.gae(rewards, values, 1.0, 1.0)
    torch.testing.assert_close(returns, torch.tensor([[6.0], [5.0], [3.0]]))
    torch.testing.assert_close(advantages, returns - values)
    advantages, _ = ppo.gae(rewards, values, 0.5, 0.0)  # one-step TD errors
    torch.testing.assert_close(advantages, torch.tensor([[1.0 + 0.05 - 0.5], [2.0 - 0.5 - 0.1], [3.0 + 1.0]]))


def test_clipped_policy_loss_and_its_diagnostics():
    logratio = torch.log(torch.tensor([[0.5, 1.0, 1.5]]))
    advantages = torch.tensor([[1.0, 1.0, 1.0]])
    torch.testing.assert_close(ppo.clipped_policy_loss(logratio, advantages, 0.2), torch.tensor([-(0.5 + 1.0 + 1.2) / 3]))
    torch.testing.assert_close(ppo.clip_fraction(logratio, 0.2), torch.tensor([2 / 3]))
    assert float(ppo.approx_kl(torch.zeros(1, 4))) == 0.0 and (ppo.approx_kl(logratio) > 0).all()
    assert float(ppo.entropy(torch.zeros(1, 2, 5))) == pytest.approx(math.log(5))


def test_gradient_clipping_is_per_model():
    weight = torch.nn.Parameter(torch.zeros(2, 3))
    weight.grad = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.4, 0.0]])
    norms = ppo.clip_grad_norm_per_model([weight], 1.0)
    torch.testing.assert_close(norms, torch.tensor([5.0, 0.5]))
    torch.testing.assert_close(weight.grad, torch.tensor([[0.6, 0.8, 0.0], [0.3, 0.4, 0.0]]), rtol=1e-5, atol=1e-6)


def test_network_outputs_and_the_bottleneck_switch():
    config = load_config("tom_bottleneck")
    net = ToMNetworks(config.model, [0, 1], [True, True, True], num_landmarks=2, num_actions=5)
    out = net(torch.randn(6, 7, 10))
    assert out.logits.shape == (6, 7, 5) and out.value.shape == (6, 7) and out.residual.shape == (6, 7, 8)
    torch.testing.assert_close(out.belief.sum(-1), torch.ones(6, 7))
    torch.testing.assert_close(out.second_order.sum(-1), torch.ones(6, 7, 2))
    other = ToMNetworks(config.model, [0, 1], [False, True, True], num_landmarks=2, num_actions=5)
    obs = torch.randn(6, 7, 10)
    out = other(obs)
    # agent 0 (no bottleneck) acts on the raw logits: moving them by a constant changes its policy
    logits = other.latent.bias.detach().clone()
    with torch.no_grad():
        other.latent.bias[:, :, :2] += 1.0
    moved = other(obs).logits
    other.latent.bias.data.copy_(logits)
    assert not torch.allclose(moved[0], out.logits[0]) and torch.allclose(moved[1], out.logits[1], atol=1e-6)


def test_networks_are_drawn_per_seed():
    model = load_config("tom_ppo").model
    pair = ToMNetworks(model, [3, 4], [False] * 3, 2, 5)
    alone = ToMNetworks(model, [4], [False] * 3, 2, 5)
    for (name, a), b in zip(pair.named_parameters(), alone.parameters()):
        assert torch.equal(a[3:], b), name
