"""Where the counterfactual policies of the influence reward come from.

Both sources hand `ssdlib.influence.causal_influence_reward` the same three things: the
influencee's log-policies under every action the influencer could have taken,
[..., A(ã), A(a^j)], the influencer's own log-policy p(ã | s^k), and the action it took.
- `CentralisedInfluence` (paper section 4): the influencees' own policy networks, run with
  the influencer's action of this step replaced (influencers act first, influencees see the
  same step's action).
- `MOAInfluence` (section 6): the influencer's own model of the other agents, run with its
  own action of this step replaced; it predicts the others' actions at the next step, and
  only the others inside its view count. No agent reads another agent's network.

Counterfactual logits become log-probabilities, and divergences are taken, in float64: the
counterfactual distributions are nearly identical, and the influence is a small difference
of them that float32 rounding (about 1e-7 per log-probability) would swamp.
"""

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from ..agents import AgentNetworks
from ..influence import causal_influence_reward
from .layout import Layout

MOA_REWARD_CLIP = 10.0  # the reference code clips the MOA influence reward to [-10, 10]


class InfluenceStep(NamedTuple):
    """One step's influence, float64, env layout.

    reward: c^k [B, N], what each agent is rewarded with (before β and the curriculum);
    pairs: [B, K, J], influencer k's divergence on its j-th influencee (centralised: agents
        0..K-1 on agent K + j; MOA: every agent on its j-th other agent, in index order, 0
        when out of view), as the reward takes it (KL, JSD or PMI);
    nonnegative: [B, K, J], the same pairs in a divergence that is never negative (KL or JSD;
        KL where the reward uses PMI, whose sign makes "above the mean" meaningless): what
        moments of high influence and sparsity are measured on.
    """

    reward: Tensor
    pairs: Tensor
    nonnegative: Tensor


class CentralisedInfluence:
    """c^k = Σ_j D[p(a^j | a^k, s^j) ‖ Σ_ã p(a^j | ã, s^j) p(ã | s^k)] from the influencees'
    policies (paper Eq. 1/3); with `influencee_reward`, influencees also get what they receive."""

    def __init__(self, net: AgentNetworks, layout: Layout, influencers: int, divergence: str,
                 influencee_reward: bool, device: torch.device) -> None:
        self.net, self.layout, self.K = net, layout, influencers
        self.divergence, self.influencee_reward = divergence, influencee_reward
        is_influencer = (torch.arange(layout.models) % layout.agents) < influencers
        self.influencee_models = torch.nonzero(~is_influencer).squeeze(1).to(device)  # seed-major

    def counterfactual_log_policies(self, gates: Tensor, c: Tensor, others: Tensor) -> Tensor:
        """log p(a^j | ã for influencer k, s^j), float64 [B, K, J, A(ã), A(a^j)], from the
        influencees' gates [M, E, 4H], cell states [M, E, H] (before the step) and inputs
        `others` [M, E, N-1] (influencer slot k holds agent k for every influencee)."""
        s, e, a, j = self.layout.seeds, self.layout.games, self.net.num_actions, self.layout.agents - self.K
        models = self.influencee_models  # only the influencees' counterfactual policies are needed
        gates, c, others = gates[models], c[models], others[models]
        counterfactual = []
        for k in range(self.K):
            cf_gates = self.net.core.counterfactual_gates(gates, others, "others", k, models)  # [S*J, E, A, 4H]
            cf_h = self.net.core.cell(cf_gates, c[:, :, None]).h
            cf_logits = self.net.head.logits(cf_h.reshape(len(models), e * a, -1), models)
            counterfactual.append(F.log_softmax(cf_logits.view(len(models), e, a, a).double(), -1))
        cf = torch.stack(counterfactual, 2).reshape(s, j, e, self.K, a, a)  # [S, J, E, K, ã, a^j]
        return cf.permute(0, 2, 3, 1, 4, 5).reshape(s * e, self.K, j, a, a)

    def __call__(self, gates: Tensor, c: Tensor, others: Tensor, logits: Tensor, actions: Tensor) -> InfluenceStep:
        """From the influencees' gates, cell states and inputs (model layout), every agent's
        policy logits [M, E, A] and actions [M, E]."""
        cond_log_all = self.counterfactual_log_policies(gates, c, others)
        j = cond_log_all.shape[2]
        taken = self.layout.to_games(actions)
        influencer_log = self.layout.to_games(F.log_softmax(logits.double(), -1))[:, : self.K, None, :]
        influencer_action = taken[:, : self.K, None].expand(-1, -1, j)
        influencee_action = taken[:, None, self.K:].expand(-1, self.K, -1)
        pairs = causal_influence_reward(cond_log_all, influencer_log, influencer_action,
                                        divergence=self.divergence, influencee_action=influencee_action)  # [B, K, J]
        reward = pairs.new_zeros(pairs.shape[0], self.layout.agents)
        reward[:, : self.K] = pairs.sum(2)
        if self.influencee_reward:
            reward[:, self.K:] = pairs.sum(1)
        nonnegative = pairs if self.divergence != "pmi" else causal_influence_reward(
            cond_log_all, influencer_log, influencer_action, divergence="kl")
        return InfluenceStep(reward, pairs, nonnegative)


class MOAInfluence:
    """c^k_t = clip(Σ_{j in view} D[p̂_k(a^j_{t+1} | a^k_t) ‖ Σ_ã p̂_k(a^j_{t+1} | ã) π^k(ã | s^k_t)], ±10)
    from agent k's own MOA p̂_k, run once per counterfactual own action ã from the same MOA
    LSTM state; credited to step t, the step of the influencing action."""

    def __init__(self, net: AgentNetworks, layout: Layout, divergence: str) -> None:
        self.net, self.layout, self.divergence = net, layout, divergence

    def counterfactual_log_predictions(self, gates: Tensor, c: Tensor, all_actions: Tensor) -> Tensor:
        """log p̂_k(a^j_{t+1} | own action ã), float64 [M, E, N-1, A(ã), A(a^j)], from the MOA
        gates [M, E, 4H] of this step, its cell state before the step and its action input
        int [M, E, N] (own action first)."""
        cf_gates = self.net.moa_core.counterfactual_gates(gates, all_actions, "all", 0)  # [M, E, ã, 4H]
        cf_h = self.net.moa_core.cell(cf_gates, c[:, :, None]).h
        logits = self.net.moa_head(cf_h)  # [M, E, ã, N-1, A]
        return F.log_softmax(logits.double(), -1).transpose(2, 3)

    def __call__(self, gates: Tensor, c: Tensor, all_actions: Tensor, logits: Tensor, visible: Tensor) -> InfluenceStep:
        """From each agent's MOA gates, MOA cell state (before the step) and action input
        (model layout), its policy logits [M, E, A], and which others it sees, bool [M, E, N-1]."""
        cond_log_all = self.counterfactual_log_predictions(gates, c, all_actions)
        others = cond_log_all.shape[2]
        own_log = F.log_softmax(logits.double(), -1)[:, :, None, :]  # p(ã | s^k), [M, E, 1, A]
        own_action = all_actions[:, :, :1].expand(-1, -1, others)
        divergence = causal_influence_reward(cond_log_all, own_log, own_action, divergence=self.divergence)  # [M, E, N-1]
        pairs = self.layout.to_games(torch.where(visible, divergence, torch.zeros_like(divergence)))  # [B, N, N-1]
        reward = pairs.sum(-1).clamp(-MOA_REWARD_CLIP, MOA_REWARD_CLIP)
        return InfluenceStep(reward, pairs, pairs)
