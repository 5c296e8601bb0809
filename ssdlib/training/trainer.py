"""Synchronous actor-critic training of independent agents on the batched env, on one device.

One `Trainer` trains one condition for S seeds at once: the env holds S * E games (E per
seed), the network S * N independent copies (one per seed and agent); `Layout` converts
between the two. All that changes while training is one `TrainingState`. The Python loops
run over time steps only.

Per env step (`act`, then `collect`):
1. Every agent's policy acts on its view and the others' previous actions. With influencers
   (paper section 4), agents 0..K-1 act first and the influencees act on their actions of
   this same step.
   With communication (section 5), every agent also hears every agent's symbol of the
   previous step and says a symbol with its communication head.
2. With an MOA (section 6), each agent's model of the others steps on its view and every
   agent's action of this step, to predict the others' next actions.
3. The influence source, when the condition has one, gives each agent's influence c^k (float64).
4. The env steps; the reward scheme turns extrinsic reward and influence into the reward
   each agent trains on; the step is stored as a `Transition`. With communication the
   environment policy trains on the extrinsic reward and the communication policy on the
   scheme's reward, whose influence term for a symbol is known one step later.

Per update: A2C (the synchronous form of the paper's A3C: one gradient step per rollout,
n-step/GAE returns, entropy bonus; it learns from the outputs computed while acting, whose
autograd graph `collect` keeps, since the weights that acted are the ones it differentiates)
or PPO (what the reference code uses: clipped ratio, several epochs over minibatches of whole
game sequences, each re-evaluated), plus the MOA's cross-entropy and the communication head's
own actor-critic loss.
Learning rates anneal linearly from lr_init to lr_end; gradients are clipped per agent,
since each agent is its own learner.
"""

import time
from dataclasses import replace
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from ..agents import AgentNetworks, Memory
from ..agents.blocks import LSTMState
from ..envs import make_env
from ..envs.grid import GridGame, Observation
from ..hardware import resolve_device
from ..influence import curriculum_weight
from .advantages import gae
from .capture import CapturedEnv, CapturedStep
from .conditions.config import Config
from .conditions.presets import Preset
from .episode_stats import EpisodeStats
from .influence_sources import CentralisedInfluence, CommunicationInfluence, InfluenceStep, MOAInfluence, StepInputs
from .layout import Layout
from .losses import actor_critic_loss, moa_loss
from .rewards import make_reward_scheme
from .state import TrainingState


def stack(column: list[Tensor | None] | tuple[Tensor | None, ...]) -> Tensor | None:
    """Per-step tensors stacked on a new leading time dim; None for a field no step has."""
    return None if not column or column[0] is None else torch.stack(list(column))


def run_seed(seeds: list[int]) -> int:
    """One integer seed for the env and sampling of a run from its list of seeds."""
    value = 0
    for s in seeds:
        value = (value * 1_000_003 + int(s) + 1) % 2**62
    return value


class Transition(NamedTuple):
    """One env step of every model, [M, E, ...] (stacked over a rollout: [T, M, E, ...])."""

    images: Tensor  # uint8 [.., 15, 15], the view acted on
    others: Tensor | None  # int [.., N-1], the others' actions the policy saw (None: no such input)
    actions: Tensor  # int, the action taken
    logp: Tensor  # log π(a_t | ·) when acting
    value: Tensor  # V(s_t) when acting
    reward: Tensor  # the reward trained on (after the reward scheme)
    done: Tensor  # bool, the episode ended with this step
    all_actions: Tensor | None  # int [.., N], every agent's action of this step, own first (MOA input)
    visible: Tensor | None  # bool [.., N-1], which others were in view (MOA)
    heard: Tensor | None = None  # int [.., N], every agent's symbol of the previous step, own first
    message: Tensor | None = None  # int, the symbol said
    message_logp: Tensor | None = None  # log π_m(m_t | ·) when speaking
    message_value: Tensor | None = None  # V_m(s_t)
    message_reward: Tensor | None = None  # what the communication policy trains on


class Rollout(NamedTuple):
    steps: Transition  # [T, M, E, ...]
    start: Memory  # the recurrent memory before the first step
    last_value: Tensor  # V of the observation after the last step, [M, E]
    last_message_value: Tensor | None = None  # V_m of that observation (communication)
    evaluation: "Evaluation | None" = None  # the networks' outputs with their autograd graph, kept while acting (A2C)


class Evaluation(NamedTuple):
    """The networks re-run over a rollout with gradients, [T, M, E', ...]."""

    logits: Tensor  # policy logits [.., A]
    values: Tensor
    moa_logits: Tensor | None  # the MOA's logits of the others' next actions [.., N-1, A]
    message_logits: Tensor | None = None  # communication policy logits [.., V]
    message_values: Tensor | None = None


class Acting(NamedTuple):
    """What `act` computes for one step, model layout."""

    transition: Transition  # reward and done still unknown (zeros); no autograd graph
    memory: Memory  # after the step
    influence: InfluenceStep | None
    graph: Evaluation | None = None  # with `keep_graph`: this step's outputs with their graph ([M, E, ...])


class Trainer:
    def __init__(self, config: Config, preset: Preset, seeds: list[int], device: str | torch.device = "cpu",
                 net: AgentNetworks | None = None, env_seed: int | None = None, capture: bool = False) -> None:
        """`net`: play with these networks instead of new ones (replays share a trained run's);
        `env_seed`: seed the games and the sampling with it instead of the seed list's;
        `capture`: collect with the acting step and the games' step each replayed as one CUDA
        graph (`CapturedStep`, `CapturedEnv`; eagerly through the same buffers off CUDA), A2C
        then re-evaluating the rollout."""
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be a non-empty list of distinct ints, got {seeds}")
        self.config, self.preset, self.seeds = config, preset, list(seeds)
        self.device = resolve_device(device)
        n = config.num_agents
        self.layout = Layout(len(seeds), n, preset.num_envs)
        options = dict(config.env_options)
        if preset.horizon is not None:
            options["horizon"] = preset.horizon
        seed = run_seed(seeds) if env_seed is None else env_seed
        env = make_env(config.env, num_envs=self.layout.seeds * self.layout.games, num_agents=n, device=device,
                       seed=seed, **options)
        self.K = config.model.influencers
        if net is None:
            init_seeds = [s * 100 + agent for s in seeds for agent in range(n)]
            net = AgentNetworks(env.num_actions, n, config.model.action_inputs, config.model.moa, init_seeds,
                                config.model.vocabulary, config.model.message_embedding).to(self.device)
        optimizer = torch.optim.Adam(net.parameters(), lr=config.optim.lr_init, eps=1e-5)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        self._influencer_models = self.layout.agent_rows(slice(0, self.K), self.device)
        eye = torch.eye(n, dtype=torch.bool)
        others = torch.arange(n).expand(n, -1)[~eye].view(n, n - 1)
        self._own_first = torch.cat([torch.arange(n)[:, None], others], 1).to(self.device)  # [N, N]
        self.influence_source = self._influence_source(config, net)
        self.curriculum_steps = config.reward.curriculum_steps * preset.scale
        reward = make_reward_scheme(config.reward, config.optim.gamma)
        shape = (self.layout.seeds * self.layout.games, n)
        reward.start_episode(shape, self.device)
        stats = EpisodeStats(self.layout, self.device, config.env == "box_trapped")
        self.state = TrainingState(net, optimizer, generator, env, env.reset(), net.initial_memory(self.layout.games),
                                   reward, stats)
        self.state.listening_init = self.listening()
        self.capture = capture
        self._captured_act = CapturedStep(self.act, [generator]) if capture else None
        self._stepper = CapturedEnv(env) if capture else env  # what `collect` steps the games with

    def _influence_source(self, config: Config, net: AgentNetworks
                          ) -> CentralisedInfluence | MOAInfluence | CommunicationInfluence | None:
        r = config.reward
        if r.scheme != "influence":
            return None
        if r.influence_source == "moa":
            return MOAInfluence(net, self.layout, r.divergence)
        if r.influence_source == "communication":
            return CommunicationInfluence(net, self.layout, r.divergence, self.device)
        return CentralisedInfluence(net, self.layout, self.K, r.divergence, r.influencee_reward, self.device)

    # ------------------------------------------------------------------ shortcuts
    @property
    def net(self) -> AgentNetworks:
        return self.state.net

    @property
    def env(self) -> GridGame:
        return self.state.env

    @property
    def S(self) -> int:
        return self.layout.seeds

    @property
    def N(self) -> int:
        return self.layout.agents

    @property
    def E(self) -> int:
        return self.layout.games

    @property
    def env_steps(self) -> int:
        return self.state.env_steps

    @property
    def episodes(self) -> list[dict]:
        return self.state.episodes

    def to_models(self, x: Tensor) -> Tensor:
        return self.layout.to_models(x)

    def to_games(self, y: Tensor) -> Tensor:
        return self.layout.to_games(y)

    def replay(self, games_per_seed: int, seed: int) -> "Trainer":
        """A trainer that plays `games_per_seed` fresh games per seed with this trainer's
        networks (shared, not copied), its own games and sampling seeded by `seed`."""
        return Trainer(self.config, replace(self.preset, num_envs=games_per_seed), self.seeds, self.device,
                       net=self.net, env_seed=seed)

    # ------------------------------------------------------------------ acting
    def _sample(self, logits: Tensor, models: Tensor | slice | None = None) -> Tensor:
        """Categorical samples by the Gumbel-max trick, from the trainer's own generator. With
        `models`, `logits` [M', E, A] are those copies' only; the uniforms are drawn for all M
        copies all the same (the generator advances as for a full draw) and theirs are used."""
        shape = logits.shape if models is None else (self.layout.models, *logits.shape[1:])
        u = torch.rand(shape, generator=self.state.generator, device=self.device).clamp_(1e-20, 1.0)
        if models is not None:
            u = u[models]
        return (logits - torch.log(-torch.log(u))).argmax(-1)

    def _influencers_act(self, features: Tensor, others: Tensor, memory: Memory) -> Tensor:
        """The influencers' actions of this step, int [S*K, E] (models seed-major): they act
        first, on their views and the others' previous actions (`others`, int [M, E, N-1]).
        Only their copies are run, without autograd: the influencees' outputs of this pass
        would be discarded, and the outputs kept are those of the pass that follows."""
        net, rows = self.net, self._influencer_models
        with torch.no_grad():
            state = LSTMState(memory.policy.h[rows], memory.policy.c[rows])
            heard = None if memory.heard is None else memory.heard[rows]
            gates = net.core.gates(features[rows], net.policy_inputs(others[rows]), state, heard, rows)
            logits = net.head.logits(net.core.cell(gates, state.c).h, rows)
        return self._sample(logits, rows)

    def act(self, obs: Observation, memory: Memory, with_influence: bool = True, keep_graph: bool = False) -> Acting:
        """Every agent's action for one env step (influencers first), and with
        `with_influence` the condition's influence reward. With `keep_graph` the networks'
        outputs keep their autograd graph (through `memory`'s, back to the rollout's start),
        so that A2C learns from them without re-running the rollout (`Rollout.evaluation`)."""
        with torch.set_grad_enabled(keep_graph):
            return self._act(obs, memory, with_influence, keep_graph)

    def _act(self, obs: Observation, memory: Memory, with_influence: bool, keep_graph: bool) -> Acting:
        net, layout = self.net, self.layout
        images = layout.to_models(obs.image)
        conv = net.conv(images)
        features = net.core.features(conv)
        seen = obs.actions.clone() if net.others_inputs else None  # [B, N, N-1]: the others' previous actions
        first = None
        if self.K > 0:
            # influencers act first; influencees see their actions of this step in slots 0..K-1
            first = self._influencers_act(features, layout.to_models(seen), memory).view(self.S, self.K, -1)
            seen[:, self.K:, : self.K] = first.permute(0, 2, 1).reshape(-1, 1, self.K)
        others = None if seen is None else layout.to_models(seen)
        gates = net.core.gates(features, net.policy_inputs(others), memory.policy, memory.heard)
        policy = net.core.cell(gates, memory.policy.c)
        logits, value = net.head(policy.h)
        actions = self._sample(logits)
        if first is not None:  # the influencers' rows of this pass are the same policies': their actions stand
            actions.view(self.S, self.N, -1)[:, : self.K] = first
        said = message_logits = message_logp = message_value = heard_next = spoken_next = None
        if net.communicates:
            message_logits, message_value = net.comm_head(policy.h)
            said = self._sample(message_logits)
            spoken_next = F.log_softmax(message_logits.detach().double(), -1)
            message_logp = spoken_next.gather(-1, said[..., None]).squeeze(-1).float()
            heard_next = layout.to_models(layout.to_games(said)[:, self._own_first])  # [M, E, N]
        all_actions = visible = moa_gates = moa = None
        if net.has_moa:
            all_actions = layout.to_models(layout.to_games(actions)[:, self._own_first])  # [M, E, N]
            visible = layout.to_models(obs.visible)
            moa_gates = net.moa_core.gates(net.moa_core.features(conv), {"all": all_actions}, memory.moa)
            moa = net.moa_core.cell(moa_gates, memory.moa.c)
        influence = None
        if with_influence and self.influence_source is not None:
            with torch.no_grad():  # counterfactuals are measured, never differentiated
                influence = self.influence_source(StepInputs(gates, memory.policy.c, others, logits, actions, moa_gates,
                                                             None if moa is None else memory.moa.c, all_actions,
                                                             visible, memory.heard, memory.spoken_logp))
        graph = None
        if keep_graph:
            graph = Evaluation(logits, value, None if moa is None else net.moa_head(moa.h), message_logits, message_value)
        logp = F.log_softmax(logits.detach(), -1).gather(-1, actions[..., None]).squeeze(-1)
        value, message_value = value.detach(), None if message_value is None else message_value.detach()
        zeros = torch.zeros_like(value)
        transition = Transition(images, others, actions, logp, value, zeros, zeros.bool(), all_actions, visible,
                                memory.heard, said, message_logp, message_value, None if said is None else zeros)
        return Acting(transition, Memory(policy, moa, heard_next, spoken_next), influence, graph)

    @torch.no_grad()
    def play(self) -> tuple[Acting, Tensor, Tensor, dict]:
        """One env step without learning (replays): act, step the games, carry the memory
        on. Returns what `act` computed and the env's extrinsic reward, done and info."""
        st = self.state
        out = self.act(st.obs, st.memory)
        st.obs, extrinsic, done, info = st.env.step(self.layout.to_games(out.transition.actions))
        st.memory = out.memory.masked((~self._done_per_model(done)).float()[..., None])
        return out, extrinsic, done, info

    def _done_per_model(self, done: Tensor) -> Tensor:
        """Episode ends per game [B] -> per model and game [M, E]."""
        return self.layout.to_models(done[:, None].expand(-1, self.layout.agents))

    def influence_scale(self) -> float:
        """β w(t): the influence weight times the curriculum weight at this point of training."""
        return self.config.reward.influence_weight * curriculum_weight(self.state.env_steps, self.curriculum_steps)

    # ------------------------------------------------------------------ rollout
    @property
    def keeps_graph(self) -> bool:
        """A2C takes one gradient step per rollout with the weights that acted, so the outputs
        computed while acting are those of a re-evaluation: `collect` keeps their graph
        (not when acting is captured: a CUDA graph keeps no autograd graph)."""
        return self.config.optim.algorithm == "a2c" and not self.capture

    def collect(self) -> Rollout:
        """Step all games T times under the current policies."""
        st, layout = self.state, self.layout
        communicates, keep_graph = self.net.communicates, self.keeps_graph
        start = st.memory.clone()
        steps, extrinsics, message_influence, graphs = [], [], [], []
        for t in range(self.config.optim.rollout_length):
            if self._captured_act is not None:
                out = self._captured_act(st.obs, st.memory)
            else:
                out = self.act(st.obs, st.memory, keep_graph=keep_graph)
            graphs.append(out.graph)
            if communicates and t > 0:  # this step's influence is that of the symbols of step t − 1,
                message_influence.append((out.influence, self.influence_scale()))  # at that step's β w
            # actions are argmax indices of the policy's logits: in range, so no range check
            # (it would read the device every step)
            st.obs, extrinsic, done, info = self._stepper.step(layout.to_games(out.transition.actions), check_range=False)
            st.env_steps += layout.games
            influence = out.influence
            if communicates:  # π_e trains on e
                reward = extrinsic
                extrinsics.append(extrinsic)
            else:
                reward = st.reward(extrinsic, None if influence is None else influence.reward, self.influence_scale())
            st.stats.record_step(extrinsic, info, influence)
            done_models = self._done_per_model(done)
            steps.append(out.transition._replace(reward=layout.to_models(reward), done=done_models))
            # all games reach the horizon and reset together, which the host knows: before
            # then no game ended, and masking would multiply every state by 1
            st.memory = out.memory
            if st.env.t == 0:
                st.memory = out.memory.masked((~done_models).float()[..., None])
                self._finish_episode()
        st.memory = st.memory.detached()  # the next rollout's graph starts here
        last = self.act(st.obs, st.memory, with_influence=communicates)  # with communication: the last symbols' influence
        if communicates:
            message_influence.append((last.influence, self.influence_scale()))
            steps = [step._replace(message_reward=layout.to_models(self.message_reward(e, *influence)))
                     for step, e, influence in zip(steps, extrinsics, message_influence)]
        stacked = Transition(*(stack(column) for column in zip(*steps)))
        evaluation = Evaluation(*(stack(column) for column in zip(*graphs))) if keep_graph else None
        return Rollout(stacked, start, last.transition.value, last.transition.message_value, evaluation)

    def message_reward(self, extrinsic: Tensor, influence: InfluenceStep | None, scale: float) -> Tensor:
        """The communication policy's reward for the symbols of one step, [B, N]: the scheme's
        reward of that step's extrinsic reward and the influence of its symbols on the next
        step's actions (α e + β w(t) c; the baseline: e)."""
        return self.state.reward(extrinsic, None if influence is None else influence.reward, scale)

    # ------------------------------------------------------------------ learning
    def evaluate(self, batch: Rollout, games: Tensor | slice = slice(None)) -> Evaluation:
        """Re-run the recurrent networks over the rollout (with gradients), for the games
        `games`: policy logits [T, M, E', A], values [T, M, E'], with an MOA its logits of the
        others' next actions [T, M, E', N-1, A], with communication the communication head's
        logits [T, M, E', V] and values."""
        net, steps = self.net, batch.steps
        images = steps.images[:, :, games]
        t_len, m, e = images.shape[:3]
        conv = net.conv(images.transpose(0, 1).reshape(m, t_len * e, *images.shape[3:]))
        features = net.core.features(conv).view(m, t_len, e, -1)
        moa_features = net.moa_core.features(conv).view(m, t_len, e, -1) if net.has_moa else None
        memory = batch.start.select(games)
        policy, moa = memory.policy, memory.moa
        logits, values, moa_logits, message_logits, message_values = [], [], [], [], []
        for t in range(t_len):
            others = None if steps.others is None else steps.others[t][:, games]
            heard = None if steps.heard is None else steps.heard[t][:, games]
            step_logits, value, policy = net.policy_step(features[:, t], others, policy, heard)
            if net.communicates:
                said_logits, said_value = net.comm_head(policy.h)
                message_logits.append(said_logits)
                message_values.append(said_value)
            live = (~steps.done[t][:, games]).float()[..., None]
            policy = policy.masked(live)
            logits.append(step_logits)
            values.append(value)
            if moa is not None:
                _, predicted, moa = net.moa_step(moa_features[:, t], steps.all_actions[t][:, games], moa)
                moa = moa.masked(live)
                moa_logits.append(predicted)
        return Evaluation(torch.stack(logits), torch.stack(values), stack(moa_logits), stack(message_logits),
                          stack(message_values))

    def _learning_rate(self) -> float:
        o = self.config.optim
        progress = min(self.state.env_steps / self.preset.total_steps, 1.0)
        return o.lr_init + (o.lr_end - o.lr_init) * progress

    def loss(self, batch: Rollout, advantages: Tensor, returns: Tensor, games: Tensor | slice,
             message_targets: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The actor-critic loss plus, with an MOA, its weighted cross-entropy on the others'
        actions of the next step (steps whose episode ended, the rollout's last step and,
        with `moa_only_visible`, others out of view are masked), plus, with communication,
        the communication head's weighted actor-critic loss on its own advantages and returns
        (`message_targets`)."""
        o, steps = self.config.optim, batch.steps
        if batch.evaluation is not None:
            if not (isinstance(games, slice) and games == slice(None)):
                raise ValueError(f"a rollout's kept graph covers all its games, not games {games}: "
                                 "drop it (`batch._replace(evaluation=None)`) to re-evaluate a minibatch")
            evaluation = batch.evaluation
        else:
            evaluation = self.evaluate(batch, games)
        logits, values, moa_logits, message_logits, message_values = evaluation
        total, terms = actor_critic_loss(logits, values, steps.actions[:, :, games], steps.logp[:, :, games],
                                         advantages[:, :, games], returns[:, :, games], o.algorithm,
                                         o.value_coef, o.entropy_coef, o.ppo_clip)
        if message_logits is not None:
            message_advantages, message_returns = message_targets
            comm_total, comm_terms = actor_critic_loss(
                message_logits, message_values, steps.message[:, :, games], steps.message_logp[:, :, games],
                message_advantages[:, :, games], message_returns[:, :, games], o.algorithm, o.value_coef,
                o.comm_entropy_coef, o.ppo_clip)
            total = total + o.comm_loss_weight * comm_total
            terms |= {f"comm_{name}": value for name, value in comm_terms.items()}
        if moa_logits is not None:
            targets = steps.all_actions[1:, :, games, 1:]  # the others' actions at t + 1
            mask = ~steps.done[:-1, :, games, None].expand_as(targets)
            if o.moa_only_visible:
                mask = mask & steps.visible[:-1, :, games]
            moa_total, moa_terms = moa_loss(moa_logits[:-1], targets, mask)
            total = total + o.moa_loss_weight * moa_total
            terms |= moa_terms
        return total, terms

    def _clip_and_step(self) -> None:
        """Clip each agent's gradient norm separately, then one optimiser step."""
        params = [p for p in self.net.parameters() if p.grad is not None]
        sq = sum(p.grad.reshape(self.layout.models, -1).pow(2).sum(1) for p in params)
        scale = (self.config.optim.max_grad_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
        for p in params:
            p.grad.mul_(scale.view(-1, *([1] * (p.dim() - 1))))
        self.state.optimizer.step()

    def targets(self, batch: Rollout) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """GAE advantages and returns of the environment policy, and with communication those
        of the communication policy."""
        o, steps = self.config.optim, batch.steps
        advantages, returns = gae(steps.reward, steps.value, steps.done, batch.last_value, o.gamma, o.gae_lambda)
        message_targets = None
        if steps.message is not None:
            message_targets = gae(steps.message_reward, steps.message_value, steps.done, batch.last_message_value,
                                  o.gamma, o.gae_lambda)
        return advantages, returns, message_targets

    def update(self, batch: Rollout) -> dict[str, Tensor]:
        """One A2C step, or PPO epochs over minibatches of games; returns the last step's
        loss terms per model (also recorded for the episode's metrics)."""
        o, st = self.config.optim, self.state
        for group in st.optimizer.param_groups:
            group["lr"] = self._learning_rate()
        advantages, returns, message_targets = self.targets(batch)
        if o.algorithm == "a2c":
            minibatches = [[slice(None)]]
        else:
            chunks = max(1, min(o.ppo_minibatches, self.layout.games))
            minibatches = (torch.randperm(self.layout.games, generator=st.generator, device=self.device).chunk(chunks)
                           for _ in range(o.ppo_epochs))
        for epoch in minibatches:
            for games in epoch:
                st.optimizer.zero_grad(set_to_none=True)
                loss, terms = self.loss(batch, advantages, returns, games, message_targets)
                loss.backward()
                self._clip_and_step()
                st.stats.record_update(terms)
        return terms

    def train_iteration(self) -> None:
        """Collect one rollout and learn from it."""
        start = time.perf_counter()
        self.update(self.collect())
        self.state.wall_time += time.perf_counter() - start

    # ------------------------------------------------------------------ diagnostics
    def listening(self) -> Tensor | None:
        """Per seed [S]: how much the agents that see others' actions depend on them
        (`RecurrentCore.listening`): the influencees on the influencers' slots, or with no
        influencers every agent on every other agent's slot; with communication, every agent
        on the other speakers' symbols (`message_listening`). None without such inputs."""
        n = self.layout.agents
        if self.net.communicates:
            return self.net.core.message_listening(list(range(1, n))).view(self.layout.seeds, n).mean(1)
        if not self.net.others_inputs:
            return None
        slots = list(range(self.K)) if self.K > 0 else list(range(n - 1))
        per_model = self.net.core.listening("others", slots).view(self.layout.seeds, n)
        return per_model[:, self.K:].mean(1)

    def _finish_episode(self) -> None:
        st = self.state
        index = sum(1 for row in st.episodes if row["seed"] == self.seeds[0])
        st.episodes.extend(st.stats.finish(index, self.seeds, st.env_steps, st.wall_time,
                                           self.listening(), st.listening_init))
        st.reward.start_episode((self.layout.seeds * self.layout.games, self.layout.agents), self.device)
