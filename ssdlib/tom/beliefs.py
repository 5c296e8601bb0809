"""First- and second-order beliefs: their losses and the ToM reward.

First order: agent i's belief b^(i) is a distribution over the N landmarks, "which one is the
target", trained towards the env's ground truth `state.goal`. Good agents see the target; the
adversary has to infer it from how the good agents move.
Second order: agent i predicts, from its own observation, the beliefs of the K = N other
agents, B_i = (B_i[j])_j, each row a distribution over the landmarks, trained towards the other
agents' actual (detached) beliefs. Its negative prediction error is the ToM reward.
"""

import torch
from torch import Tensor
from torch.nn import functional as F


def first_order_loss(belief_logits: Tensor, goal: Tensor) -> Tensor:
    """L_b = -E[log b_g], the cross-entropy of the belief against the true target g.
    belief_logits [M, B, N], goal [M, B] -> [M], the mean over each model's batch."""
    return F.cross_entropy(belief_logits.transpose(1, 2), goal, reduction="none").mean(1)


def others(beliefs: Tensor, num_agents: int) -> Tensor:
    """Each agent's K = num_agents - 1 others' beliefs, in agent order without itself (the order
    of the "other agents" slots of the observations: adversary first).
    beliefs [S * num_agents, B, N] -> [S * num_agents, B, K, N]."""
    per_seed = beliefs.unflatten(0, (-1, num_agents))
    index = torch.tensor([[j for j in range(num_agents) if j != i] for i in range(num_agents)], device=beliefs.device)
    return per_seed[:, index].permute(0, 1, 3, 2, 4).flatten(0, 1)


def prediction_error(predicted: Tensor, actual: Tensor) -> Tensor:
    """1/K Σ_j MSE(B_i[j], b^(j)), each MSE the mean over the N landmarks of (B_i[j] - b^(j))².
    predicted, actual [.., K, N] -> [..]. Both are probability vectors, so it lies in [0, 1]."""
    return ((predicted - actual) ** 2).mean((-1, -2))


def second_order_loss(predicted: Tensor, actual: Tensor) -> Tensor:
    """L_B = E[1/K Σ_j MSE(B_i[j], sg(b^(j)))] per model ([M, B, K, N] -> [M]); the others'
    beliefs are targets (sg: stop-gradient), never moved by this loss."""
    return prediction_error(predicted, actual.detach()).mean(1)


def tom_reward(predicted: Tensor, actual: Tensor) -> Tensor:
    """r_tom = -1/K Σ_j MSE(B_i[j], b^(j)) in [-1, 0]: 0 when agent i predicts every other
    agent's belief exactly. [.., K, N] -> [..]."""
    return -prediction_error(predicted, actual)
