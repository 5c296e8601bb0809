"""The paper's agent network, M independent copies evaluated in batched operations.

Per copy (supplement section 4): conv 3x3, stride 1, 6 channels, valid padding, ReLU on the
15x15 RGB view scaled to [0, 1] -> FC 32 -> FC 32 (tanh, as the reference) -> LSTM 128 ->
policy logits and value. Optional LSTM input: one-hot actions of the other agents (the
visible-actions baseline and every agent of the influence model).

No weights are shared: copy m = seed * N + agent has its own tensors, stacked on a leading
dim of size M. Every layer is one batched op over all copies (a grouped convolution, batched
matrix products), never a Python loop over agents or seeds. Inputs are laid out [M, E, ...]:
E games per copy.

The action input enters the LSTM gates linearly, so an influencee's policy under a
counterfactual action of an influencer is a cheap correction of its gates
(`counterfactual_gates`), not a new forward pass.
"""

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..envs.geometry import VIEW_SIZE
from ..envs.palette import PALETTE

CONV_CHANNELS = 6
CONV_OUT = VIEW_SIZE - 2
FC_SIZES = (32, 32)
LSTM_SIZE = 128


class LSTMState(NamedTuple):
    h: Tensor  # [M, E, LSTM_SIZE]
    c: Tensor


def _uniform(gen: torch.Generator, shape: tuple[int, ...], bound: float) -> Tensor:
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


class AgentNetworks(nn.Module):
    """M independent conv-FC-LSTM actor-critics.

    num_actions: policy size. action_inputs: number of other agents whose one-hot actions
    feed the LSTM (0 for none). seeds: one init seed per copy (length M), so a copy's initial
    weights do not depend on which other copies share the batch.
    """

    def __init__(self, num_actions: int, action_inputs: int, seeds: list[int]) -> None:
        super().__init__()
        self.num_models = m = len(seeds)
        self.num_actions, self.action_inputs = num_actions, action_inputs
        conv_in, fc_in = 3 * 9, CONV_CHANNELS * CONV_OUT * CONV_OUT
        lstm_in = FC_SIZES[1] + action_inputs * num_actions
        shapes = {
            "conv_w": ((CONV_CHANNELS, 3, 3, 3), conv_in),
            "conv_b": ((CONV_CHANNELS,), conv_in),
            "fc1_w": ((fc_in, FC_SIZES[0]), fc_in),
            "fc1_b": ((FC_SIZES[0],), fc_in),
            "fc2_w": ((FC_SIZES[0], FC_SIZES[1]), FC_SIZES[0]),
            "fc2_b": ((FC_SIZES[1],), FC_SIZES[0]),
            "lstm_wx": ((lstm_in, 4 * LSTM_SIZE), LSTM_SIZE),
            "lstm_wh": ((LSTM_SIZE, 4 * LSTM_SIZE), LSTM_SIZE),
            "lstm_b": ((4 * LSTM_SIZE,), LSTM_SIZE),
            "pi_w": ((LSTM_SIZE, num_actions), LSTM_SIZE),
            "v_w": ((LSTM_SIZE, 1), LSTM_SIZE),
        }
        copies: dict[str, list[Tensor]] = {name: [] for name in shapes}
        for seed in seeds:
            gen = torch.Generator().manual_seed(int(seed))
            for name, (shape, fan_in) in shapes.items():
                bound = fan_in**-0.5
                if name == "pi_w":
                    bound *= 0.01  # near-uniform initial policy
                copies[name].append(_uniform(gen, shape, bound))
        for name, tensors in copies.items():
            setattr(self, name, nn.Parameter(torch.stack(tensors)))
        self.pi_b = nn.Parameter(torch.zeros(m, num_actions))
        self.v_b = nn.Parameter(torch.zeros(m, 1))
        self.register_buffer("palette", PALETTE.float() / 255.0, persistent=False)

    def initial_state(self, num_games: int) -> LSTMState:
        zeros = torch.zeros(self.num_models, num_games, LSTM_SIZE, device=self.conv_w.device)
        return LSTMState(zeros, zeros.clone())

    def encode(self, image: Tensor) -> Tensor:
        """Palette images uint8 [M, E, 15, 15] -> features [M, E, 32] (any E, e.g. T*E)."""
        m, e = image.shape[:2]
        rgb = self.palette[image.long()]  # [M, E, 15, 15, 3], scaled to [0, 1]
        x = rgb.permute(1, 0, 4, 2, 3).reshape(e, m * 3, VIEW_SIZE, VIEW_SIZE)
        x = F.conv2d(x, self.conv_w.flatten(0, 1), self.conv_b.flatten(), groups=m)
        x = F.relu(x).reshape(e, m, -1).transpose(0, 1)  # [M, E, 6*13*13] (reshape: M = 1 gives channels-last)
        x = torch.tanh(torch.baddbmm(self.fc1_b[:, None], x, self.fc1_w))
        return torch.tanh(torch.baddbmm(self.fc2_b[:, None], x, self.fc2_w))

    def one_hot_actions(self, actions: Tensor) -> Tensor:
        """Other agents' actions int [M, E, K] -> one-hot [M, E, K * A]."""
        return F.one_hot(actions, self.num_actions).flatten(-2).float()

    def gates(self, features: Tensor, actions: Tensor | None, state: LSTMState) -> Tensor:
        """LSTM pre-activations [M, E, 4*128] from features, action inputs and state."""
        x = features if actions is None else torch.cat([features, self.one_hot_actions(actions)], -1)
        g = torch.baddbmm(self.lstm_b[:, None], x, self.lstm_wx)
        return torch.baddbmm(g, state.h, self.lstm_wh)

    def counterfactual_gates(self, gates: Tensor, actions: Tensor, slot: int, models: Tensor | slice = slice(None)) -> Tensor:
        """Gates [M', E, A, 4*128] with the action in input slot `slot` replaced by every
        possible action ã (the other inputs and the LSTM state unchanged), for the copies
        `models` (gates and actions given for those copies only)."""
        a = self.num_actions
        rows = self.lstm_wx[models, FC_SIZES[1] + slot * a : FC_SIZES[1] + (slot + 1) * a]  # [M', A, 4H]
        taken = rows.gather(1, actions[:, :, slot, None].expand(-1, -1, rows.shape[-1]))  # [M, E, 4H]
        return gates[:, :, None] - taken[:, :, None] + rows[:, None]

    @staticmethod
    def cell(gates: Tensor, c: Tensor) -> LSTMState:
        """The LSTM cell update from pre-activations (input, forget, cell, output gates)."""
        i, f, g, o = gates.chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return LSTMState(torch.sigmoid(o) * torch.tanh(c), c)

    def heads(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Policy logits [M, E, A] and value [M, E] from LSTM outputs [M, E, 128]."""
        logits = torch.baddbmm(self.pi_b[:, None], h, self.pi_w)
        value = torch.baddbmm(self.v_b[:, None], h, self.v_w).squeeze(-1)
        return logits, value

    def policy_logits(self, h: Tensor, models: Tensor) -> Tensor:
        """Policy logits [M', E, A] of the copies `models` from their LSTM outputs [M', E, 128]."""
        return torch.baddbmm(self.pi_b[models, None], h, self.pi_w[models])

    def step(self, features: Tensor, actions: Tensor | None, state: LSTMState) -> tuple[Tensor, Tensor, LSTMState]:
        """One time step: (logits [M, E, A], value [M, E], next state)."""
        state = self.cell(self.gates(features, actions, state), state.c)
        logits, value = self.heads(state.h)
        return logits, value, state
