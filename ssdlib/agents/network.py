"""The paper's agents, M independent copies (one per seed and agent) built from the config.

Per copy (supplement section 4): a conv layer on the 15x15 view, then the policy core
(FC 32 -> FC 32 -> LSTM 128) and the policy-value head. Optional parts, chosen by the config:
- the others' actions as LSTM input (block "others": one-hot actions of the N - 1 other
  agents; the visible-actions baseline and every influence agent);
- a model of other agents (MOA, paper section 6): its own FC + LSTM on the shared conv
  features, whose input block "all" holds every agent's actions of the step (own first), and
  a head predicting each other agent's next action;
- communication (paper section 5, Figure 3): every agent's symbol of the previous step as
  LSTM input (embedded), and a second head: the communication policy π_m and value V_m over
  the vocabulary, beside the environment's π_e and V_e.
"""

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .blocks import ConvEncoder, LSTMState, MessageInput, MOAHead, PolicyValueHead, RecurrentCore


def silence(shape: tuple[int, ...], vocabulary: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """What is heard at an episode's first step: symbol 0 from every speaker, int [*shape],
    spoken with certainty (log-policy [.., V]: 0 at symbol 0, −inf elsewhere), so that the
    counterfactual marginal equals the conditional and its influence is exactly 0."""
    heard = torch.zeros(shape, dtype=torch.long, device=device)
    logp = torch.full((*shape[:2], vocabulary), -torch.inf, dtype=torch.float64, device=device)
    logp[..., 0] = 0.0
    return heard, logp


class Memory(NamedTuple):
    """The recurrent state of every copy: the policy LSTM, with an MOA the MOA LSTM, and with
    communication the symbols every copy hears next (int [M, E, N], own first) and its own
    communication log-policy when it spoke ([M, E, V] float64, what the influence of its
    symbol marginalises over)."""

    policy: LSTMState
    moa: LSTMState | None = None
    heard: Tensor | None = None
    spoken_logp: Tensor | None = None

    def masked(self, live: Tensor) -> "Memory":
        """Games that ended (live = 0, [M, E, 1]) start again from zero (and silence)."""
        heard, spoken = self.heard, self.spoken_logp
        if heard is not None:
            quiet_heard, quiet_logp = silence(heard.shape, spoken.shape[-1], heard.device)
            keep = live.bool()
            heard, spoken = torch.where(keep, heard, quiet_heard), torch.where(keep, spoken, quiet_logp)
        return Memory(self.policy.masked(live), None if self.moa is None else self.moa.masked(live), heard, spoken)

    def detached(self) -> "Memory":
        """The same state, cut from the autograd graph of the steps that produced it."""
        def cut(state: LSTMState | None) -> LSTMState | None:
            return None if state is None else LSTMState(state.h.detach(), state.c.detach())
        return Memory(cut(self.policy), cut(self.moa), self.heard, self.spoken_logp)

    def clone(self) -> "Memory":
        def copy(x: Tensor | None) -> Tensor | None:
            return None if x is None else x.clone()
        return Memory(LSTMState(*(x.clone() for x in self.policy)),
                      None if self.moa is None else LSTMState(*(x.clone() for x in self.moa)),
                      copy(self.heard), copy(self.spoken_logp))

    def select(self, games: Tensor | slice) -> "Memory":
        """The state of the games `games` (second dim)."""
        def pick(state: LSTMState | None) -> LSTMState | None:
            return None if state is None else LSTMState(state.h[:, games], state.c[:, games])

        def part(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[:, games]
        return Memory(pick(self.policy), pick(self.moa), part(self.heard), part(self.spoken_logp))


class AgentNetworks(nn.Module):
    """M independent agents: conv -> policy core -> policy and value, plus an optional MOA.

    num_actions: policy size. num_agents: N (the MOA predicts N - 1 others). others_inputs:
    the policy LSTM sees the other agents' actions. moa: build the model of other agents.
    seeds: one init seed per copy (length M). vocabulary, embedding: with a vocabulary of at
    least 2 symbols, the agents communicate (every agent's previous symbol embedded in
    `embedding` dims) and have the communication head.
    """

    def __init__(self, num_actions: int, num_agents: int, others_inputs: bool, moa: bool, seeds: list[int],
                 vocabulary: int = 0, embedding: int = 0) -> None:
        super().__init__()
        init = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
        self.num_models, self.num_actions, self.num_agents = len(seeds), num_actions, num_agents
        self.vocabulary = vocabulary
        messages = MessageInput(num_agents, vocabulary, embedding) if vocabulary else None
        self.conv = ConvEncoder(init)
        self.core = RecurrentCore(init, num_actions, {"others": num_agents - 1} if others_inputs else {}, messages)
        self.head = PolicyValueHead(init, num_actions)
        self.moa_core = RecurrentCore(init, num_actions, {"all": num_agents}) if moa else None
        self.moa_head = MOAHead(init, num_actions, num_agents - 1) if moa else None
        self.comm_head = PolicyValueHead(init, vocabulary) if vocabulary else None

    @property
    def others_inputs(self) -> bool:
        return "others" in self.core.blocks

    @property
    def has_moa(self) -> bool:
        return self.moa_core is not None

    @property
    def communicates(self) -> bool:
        return self.comm_head is not None

    def initial_memory(self, num_games: int) -> Memory:
        heard = spoken = None
        if self.communicates:
            device = self.core.lstm_wh.device
            heard, spoken = silence((self.num_models, num_games, self.num_agents), self.vocabulary, device)
        return Memory(self.core.initial_state(num_games), self.moa_core.initial_state(num_games) if self.has_moa else None,
                      heard, spoken)

    def policy_inputs(self, others: Tensor | None) -> dict[str, Tensor]:
        """The policy core's action blocks from the others' actions int [M, E, N-1] (or None)."""
        return {"others": others} if self.others_inputs else {}

    def policy_step(self, features: Tensor, others: Tensor | None, state: LSTMState,
                    heard: Tensor | None = None) -> tuple[Tensor, Tensor, LSTMState]:
        """One step of the policy: (logits [M, E, A], value [M, E], next state); `heard`: the
        symbols heard, int [M, E, N] (with communication). The communication head reads the
        same state's h (`comm_head`)."""
        state = self.core.cell(self.core.gates(features, self.policy_inputs(others), state, heard), state.c)
        logits, value = self.head(state.h)
        return logits, value, state

    def moa_step(self, moa_features: Tensor, all_actions: Tensor, state: LSTMState) -> tuple[Tensor, Tensor, LSTMState]:
        """One MOA step from its FC features and every agent's actions of this step (own
        first, int [M, E, N]): (gates [M, E, 4*128], logits of the others' next actions
        [M, E, N-1, A], next state)."""
        gates = self.moa_core.gates(moa_features, {"all": all_actions}, state)
        state = self.moa_core.cell(gates, state.c)
        return gates, self.moa_head(state.h), state
