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
- `CommunicationInfluence` (section 5): the listeners' own policy networks, run with the
  speaker's symbol of the previous step replaced by every symbol of the vocabulary
  (centralised, as in the paper).

Counterfactual logits become log-probabilities, and divergences are taken, in float64: the
counterfactual distributions are nearly identical, and the influence is a small difference
of them that float32 rounding (about 1e-7 per log-probability) would swamp. Each
counterfactual's logits are the taken action's logits plus the (linear) head applied to the
change of the LSTM output, so a counterfactual that changes nothing gives exactly the same
logits and exactly zero influence (a batched product of identical rows need not round
identically).
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from ..agents import AgentNetworks
from ..agents.blocks import pick_rows
from ..hardware import cache_bytes_per_core
from ..influence import causal_influence_reward
from .layout import Layout

MOA_REWARD_CLIP = 10.0  # the reference code clips the MOA influence reward to [-10, 10]
CACHE_BYTES = cache_bytes_per_core()  # what one core can keep in cache (its L2 or its share of L3)


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


class StepInputs(NamedTuple):
    """What `Trainer.act` computed for one step that an influence source may need, model layout."""

    policy_gates: Tensor  # [M, E, 4H], of the step acted on
    policy_c: Tensor  # [M, E, H], policy LSTM cell state before the step
    others: Tensor | None  # int [M, E, N-1], the others' actions the policy saw
    logits: Tensor  # [M, E, A], every agent's policy logits
    actions: Tensor  # int [M, E]
    moa_gates: Tensor | None  # [M, E, 4H], the MOA's gates of this step
    moa_c: Tensor | None  # [M, E, H], MOA LSTM cell state before the step
    all_actions: Tensor | None  # int [M, E, N], own action first (MOA input)
    visible: Tensor | None  # bool [M, E, N-1], which others are in view
    heard: Tensor | None = None  # int [M, E, N], the symbols of the previous step heard (own first)
    spoken_logp: Tensor | None = None  # [M, E, V] float64, each copy's log π_m when it spoke them


def counterfactual_logits(cf_h: Tensor, taken: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """A linear head's outputs under each counterfactual, float64 [M', E, A, out], from the
    LSTM outputs cf_h [M', E, A, H] (row ã: the counterfactual ã) and the taken action
    [M', E]: out(ã) = (b + h(a) W) + (h(ã) − h(a)) W, exactly out(a) where h(ã) = h(a).

    The change's product runs in the network's precision and is then widened: its rounding
    is relative to the change itself (about 1e-7 of it in float32), below the rounding of
    the LSTM outputs it is formed from, so a float64 product would add no digits; the sum
    with the taken action's outputs, and everything after it, is float64."""
    m, e, a, h = cf_h.shape
    h_taken = pick_rows(cf_h.flatten(0, 1), taken.reshape(-1, 1)).view(m, e, 1, h)  # [M', E, 1, H]
    base = torch.baddbmm(bias[:, None], h_taken.squeeze(2), weight)  # [M', E, out]
    change = torch.bmm((cf_h - h_taken).reshape(m, e * a, h), weight)
    return base.double()[:, :, None] + change.double().view(m, e, a, -1)


def in_game_chunks(fn: Callable[..., Tensor], tensors: tuple[Tensor, ...], bytes_per_game: int) -> Tensor:
    """fn(*tensors) over slices of the games dim (dim 1), concatenated on it. On CPU each
    slice's counterfactual gates (`bytes_per_game` per game) fit in what one core can keep in
    cache (`CACHE_BYTES`: its L2, or its share of a large L3), where the LSTM cell's elementwise
    passes over them run faster than from memory: 2.7x at 64 games on a VM with a 2 MiB L2
    and memory at a few GB/s. With a large cache share there is one slice: on a 2-core VM with
    240 MiB of L3 a core, slices of 2 MiB made the counterfactual policies slower (2.1 against
    1.5 ms at 64 games), more small ops for no gain. Elsewhere one slice. Every op acts per
    game; only a batched product of fewer rows may round its last bit differently. The slices
    are a fixed function of the shapes and the machine's caches, so a run stays
    bit-reproducible on its machine."""
    games = tensors[0].shape[1]
    size = max(1, CACHE_BYTES // bytes_per_game) if tensors[0].device.type == "cpu" else games
    if size >= games:
        return fn(*tensors)
    return torch.cat([fn(*(x[:, start:start + size] for x in tensors)) for start in range(0, games, size)], 1)


def gate_bytes(models: int, counterfactuals: int, gates: Tensor) -> int:
    """Bytes per game of the counterfactual gates [models, E, counterfactuals, 4H]."""
    return models * counterfactuals * gates.shape[-1] * gates.element_size()


class CentralisedInfluence:
    """c^k = Σ_j D[p(a^j | a^k, s^j) ‖ Σ_ã p(a^j | ã, s^j) p(ã | s^k)] from the influencees'
    policies (paper Eq. 1/3); with `influencee_reward`, influencees also get what they receive."""

    def __init__(self, net: AgentNetworks, layout: Layout, influencers: int, divergence: str,
                 influencee_reward: bool, device: torch.device) -> None:
        self.net, self.layout, self.K = net, layout, influencers
        self.divergence, self.influencee_reward = divergence, influencee_reward
        self.influencee_models = layout.agent_rows(slice(influencers, layout.agents), device)  # seed-major

    def counterfactual_log_policies(self, gates: Tensor, c: Tensor, others: Tensor) -> Tensor:
        """log p(a^j | ã for influencer k, s^j), float64 [B, K, J, A(ã), A(a^j)], from the
        influencees' gates [M, E, 4H], cell states [M, E, H] (before the step) and inputs
        `others` [M, E, N-1] (influencer slot k holds agent k for every influencee)."""
        s, a, j = self.layout.seeds, self.net.num_actions, self.layout.agents - self.K
        e = self.layout.games
        models = self.influencee_models  # only the influencees' counterfactual policies are needed
        gates, c, others = gates[models], c[models], others[models]
        weight, bias = self.net.head.pi_w[models], self.net.head.pi_b[models]
        counterfactual = []
        for k in range(self.K):
            def log_policies(gates: Tensor, c: Tensor, others: Tensor, k: int = k) -> Tensor:
                cf_h = self.net.core.counterfactual_h(gates, others, "others", k, c, models)  # [S*J, E, A, H]
                return F.log_softmax(counterfactual_logits(cf_h, others[:, :, k], weight, bias), -1)
            counterfactual.append(in_game_chunks(log_policies, (gates, c, others), gate_bytes(s * j, a, gates)))
        cf = torch.stack(counterfactual, 2).reshape(s, j, e, self.K, a, a)  # [S, J, E, K, ã, a^j]
        return cf.permute(0, 2, 3, 1, 4, 5).reshape(s * e, self.K, j, a, a)

    def __call__(self, step: StepInputs) -> InfluenceStep:
        """From the influencees' gates, cell states and inputs, every agent's policy logits
        and actions."""
        cond_log_all = self.counterfactual_log_policies(step.policy_gates, step.policy_c, step.others)
        j = cond_log_all.shape[2]
        taken = self.layout.to_games(step.actions)
        influencer_log = F.log_softmax(self.layout.to_games(step.logits)[:, : self.K, None, :].double(), -1)
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
        head = self.net.moa_head

        def log_predictions(gates: Tensor, c: Tensor, all_actions: Tensor) -> Tensor:
            cf_h = self.net.moa_core.counterfactual_h(gates, all_actions, "all", 0, c)  # [M, E, ã, H]
            logits = counterfactual_logits(cf_h, all_actions[:, :, 0], head.w, head.b)  # [M, E, ã, (N-1) * A]
            logits = logits.view(*logits.shape[:3], head.others, head.num_actions)
            return F.log_softmax(logits, -1).transpose(2, 3)
        return in_game_chunks(log_predictions, (gates, c, all_actions),
                              gate_bytes(gates.shape[0], head.num_actions, gates))

    def __call__(self, step: StepInputs) -> InfluenceStep:
        """From each agent's MOA gates, MOA cell state (before the step) and action input,
        its policy logits, and which others it sees."""
        cond_log_all = self.counterfactual_log_predictions(step.moa_gates, step.moa_c, step.all_actions)
        others = cond_log_all.shape[2]
        own_log = F.log_softmax(step.logits.double(), -1)[:, :, None, :]  # p(ã | s^k), [M, E, 1, A]
        own_action = step.all_actions[:, :, :1].expand(-1, -1, others)
        divergence = causal_influence_reward(cond_log_all, own_log, own_action, divergence=self.divergence)  # [M, E, N-1]
        pairs = self.layout.to_games(torch.where(step.visible, divergence, torch.zeros_like(divergence)))  # [B, N, N-1]
        reward = pairs.sum(-1).clamp(-MOA_REWARD_CLIP, MOA_REWARD_CLIP)
        return InfluenceStep(reward, pairs, pairs)


class CommunicationInfluence:
    """c^k_t = Σ_{j≠k} D[p(a^j_t | m^k_{t−1}, s^j_t) ‖ Σ_m̃ p(a^j_t | m̃, s^j_t) p(m̃ | s^k_{t−1})]
    (paper section 5): the influence of speaker k's symbol of the previous step on every
    listener's action of this step, from the listeners' own policies under every symbol m̃ in
    k's slot, marginalised over k's communication policy when it spoke. It belongs to the
    symbol m^k_{t−1}: the trainer credits it to the step that said it. At an episode's first
    step the symbols heard are silence, spoken with certainty, and the influence is exactly 0.
    """

    def __init__(self, net: AgentNetworks, layout: Layout, divergence: str, device: torch.device) -> None:
        self.net, self.layout, self.divergence = net, layout, divergence
        n = layout.agents
        others = [[i for i in range(n) if i != j] for j in range(n)]
        self.others = torch.tensor(others, device=device)  # [N, N-1]: listener j's slots 1.. hold these speakers
        # pairs[k, jj] (speaker k on its jj-th other, listener j) is listener j's slot of k, minus 1
        flat = [others[j].index(k) + j * (n - 1) for k in range(n) for j in others[k]]
        self.to_speaker = torch.tensor(flat, device=device)

    def counterfactual_log_policies(self, gates: Tensor, c: Tensor, heard: Tensor) -> Tensor:
        """log p(a^j | m̃ in slot s, s^j), float64 [M, E, N-1 (slot s = 1..N-1), V(m̃), A(a^j)],
        from every copy's gates [M, E, 4H] of this step, its cell state before the step and the
        symbols it heard int [M, E, N] (own first)."""
        head, out = self.net.head, []
        for slot in range(1, self.layout.agents):
            def log_policies(gates: Tensor, c: Tensor, heard: Tensor, slot: int = slot) -> Tensor:
                cf_h = self.net.core.counterfactual_message_h(gates, heard, slot, c)  # [M, E, V, H]
                return F.log_softmax(counterfactual_logits(cf_h, heard[:, :, slot], head.pi_w, head.pi_b), -1)
            out.append(in_game_chunks(log_policies, (gates, c, heard),
                                      gate_bytes(gates.shape[0], self.net.vocabulary, gates)))
        return torch.stack(out, 2)

    def __call__(self, step: StepInputs) -> InfluenceStep:
        """From every copy's gates, cell state (before the step), the symbols it heard, its
        own communication log-policy when it spoke, and every agent's action."""
        n, lay = self.layout.agents, self.layout
        cond_log_all = lay.to_games(self.counterfactual_log_policies(step.policy_gates, step.policy_c, step.heard))
        spoken = lay.to_games(step.spoken_logp)  # [B, N, V]: speaker k's log π_m at t−1
        speaker_log = spoken[:, self.others]  # [B, N (listener j), N-1 (slot), V]
        symbol = lay.to_games(step.heard[:, :, 1:])  # [B, N, N-1]: the symbol in each of j's slots
        listener_action = lay.to_games(step.actions)[:, :, None].expand(-1, -1, n - 1)
        by_listener = causal_influence_reward(cond_log_all, speaker_log, symbol, divergence=self.divergence,
                                              influencee_action=listener_action)  # [B, j, slot]
        pairs = by_listener.flatten(1)[:, self.to_speaker].view(-1, n, n - 1)  # [B, k, jj]
        nonnegative = pairs
        if self.divergence == "pmi":
            kl = causal_influence_reward(cond_log_all, speaker_log, symbol, divergence="kl")
            nonnegative = kl.flatten(1)[:, self.to_speaker].view(-1, n, n - 1)
        return InfluenceStep(pairs.sum(-1), pairs, nonnegative)
