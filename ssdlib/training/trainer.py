"""Synchronous actor-critic training of independent agents on the batched env, on one device.

One `Trainer` trains one condition for S seeds at once: the env holds S * E games (E per
seed) and the network S * N independent copies (one per seed and agent). Models are laid out
[M, E, ...] with M = S * N; the env [B, N, ...] with B = S * E; `to_models` / `to_games`
convert. Everything stays on the device; the Python loops run over time steps only.

Per env step (paper section 4): the influencers (agents 0..K-1) act first; the influencees
see the influencers' actions of this step as input and act second; each influencer's
influence reward is computed from the influencees' counterfactual policies under every
action it could have taken (no gradient flows through it).

Per update: A2C (the synchronous form of the paper's A3C: one gradient step per rollout,
n-step/GAE returns, entropy bonus) or PPO (what the reference code uses: clipped ratio,
several epochs over minibatches of whole game sequences). Learning rates anneal linearly
from lr_init to lr_end; gradients are clipped per agent, since each agent is its own learner.
"""

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from .. import metrics
from ..agents import AgentNetworks, LSTMState
from ..envs import make_env
from ..experiments.config import Config
from ..experiments.presets import Preset
from ..influence import causal_influence_reward, curriculum_weight
from . import rewards as reward_schemes
from .advantages import gae

EPISODE_EVENTS = ("apples", "fire", "hits", "clean", "cleaned")


def run_seed(seeds: list[int]) -> int:
    """One integer seed for the env and sampling of a run from its list of seeds."""
    value = 0
    for s in seeds:
        value = (value * 1_000_003 + int(s) + 1) % 2**62
    return value


@dataclass
class Rollout:
    """T steps of experience, [T, M, E, ...], and the LSTM state before the first step."""

    images: Tensor
    conditioning: Tensor | None
    actions: Tensor
    logp: Tensor
    values: Tensor
    rewards: Tensor
    dones: Tensor
    start_state: LSTMState
    last_value: Tensor


class Trainer:
    def __init__(self, config: Config, preset: Preset, seeds: list[int], device: str | torch.device = "cpu") -> None:
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be a non-empty list of distinct ints, got {seeds}")
        self.config, self.preset, self.seeds = config, preset, list(seeds)
        self.device = torch.device(device)
        self.S, self.N, self.E = len(seeds), config.num_agents, preset.num_envs
        self.M = self.S * self.N
        options = dict(config.env_options)
        if preset.horizon is not None:
            options["horizon"] = preset.horizon
        seed = run_seed(seeds)
        self.env = make_env(config.env, num_envs=self.S * self.E, num_agents=self.N, device=device, seed=seed, **options)
        self.K = config.model.influencers
        inputs = self.N - 1 if config.model.action_inputs else 0
        init_seeds = [s * 100 + n for s in seeds for n in range(self.N)]
        self.net = AgentNetworks(self.env.num_actions, inputs, init_seeds).to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.optim.lr_init, eps=1e-5)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        is_influencer = (torch.arange(self.M) % self.N) < self.K
        self._is_influencer = is_influencer.to(self.device)[:, None]
        self._influencee_models = torch.nonzero(~is_influencer).squeeze(1).to(self.device)  # seed-major
        self.curriculum_steps = config.reward.curriculum_steps * preset.scale
        self.env_steps = 0  # per seed: E games x steps
        self.episodes: list[dict] = []
        self.wall_time = 0.0
        self.obs = self.env.reset()
        self.state = self.net.initial_state(self.E)
        self._new_episode()

    # ------------------------------------------------------------------ layout
    def to_models(self, x: Tensor) -> Tensor:
        """[B, N, ...] (env layout) -> [M, E, ...] (model layout)."""
        rest = x.shape[2:]
        return x.reshape(self.S, self.E, self.N, *rest).transpose(1, 2).reshape(self.M, self.E, *rest)

    def to_games(self, y: Tensor) -> Tensor:
        """[M, E, ...] (model layout) -> [B, N, ...] (env layout)."""
        rest = y.shape[2:]
        return y.reshape(self.S, self.N, self.E, *rest).transpose(1, 2).reshape(self.S * self.E, self.N, *rest)

    # ------------------------------------------------------------------ acting
    def _sample(self, logits: Tensor) -> Tensor:
        """Categorical samples by the Gumbel-max trick, from the trainer's own generator."""
        u = torch.rand(logits.shape, generator=self.generator, device=self.device).clamp_(1e-20, 1.0)
        return (logits - torch.log(-torch.log(u))).argmax(-1)

    @torch.no_grad()
    def act(self, obs, state: LSTMState) -> dict:
        """Actions of all agents for one env step, influencers first; when the condition
        uses influence, also its reward c [B, N] and the pairs it sums, [B, K, J]
        (influencer k on influencee K + j)."""
        images = self.to_models(obs.image)
        features = self.net.encode(images)
        conditioning = obs.actions.clone() if self.net.action_inputs else None
        gates = self.net.gates(features, None if conditioning is None else self.to_models(conditioning), state)
        new_state = self.net.cell(gates, state.c)
        logits, value = self.net.heads(new_state.h)
        actions = self._sample(logits)
        if self.K > 0:
            # influencees see the influencers' actions of this step (influencers' rows unchanged)
            conditioning[:, self.K :, : self.K] = self.to_games(actions)[:, None, : self.K]
            gates = self.net.gates(features, self.to_models(conditioning), state)
            new_state = self.net.cell(gates, state.c)
            logits, value = self.net.heads(new_state.h)
            actions = torch.where(self._is_influencer, actions, self._sample(logits))
        logp_all = F.log_softmax(logits, -1)
        out = {
            "images": images,
            "actions": actions,
            "logp": logp_all.gather(-1, actions[..., None]).squeeze(-1),
            "value": value,
            "state": new_state,
            "conditioning": None if conditioning is None else self.to_models(conditioning),
        }
        if self.config.reward.scheme == "influence":
            pairs = self._influence(gates, state, out["conditioning"], logp_all, actions)
            out["influence_pairs"], out["influence"] = pairs, self._influence_per_agent(pairs)
        return out

    def _influence(self, gates: Tensor, state: LSTMState, conditioning: Tensor, logp_all: Tensor, actions: Tensor) -> Tensor:
        """Influence of each influencer k on each influencee j,
        D[p(a^j | a^k, s^j) || Σ_ã p(a^j | ã, s^j) p(ã | s^k)], [B, K, J]: the terms of the
        basic influence reward c^k = Σ_j (paper Eq. 1/3)."""
        e, a = logp_all.shape[1:]
        j = self.N - self.K
        models = self._influencee_models  # only influencees' counterfactual policies are needed
        gates, c, conditioning = gates[models], state.c[models], conditioning[models]
        counterfactual = []
        for k in range(self.K):  # influencer slot k holds agent k in every influencee's input
            cf_gates = self.net.counterfactual_gates(gates, conditioning, k, models)  # [S*J, E, A, 4H]
            cf_h = self.net.cell(cf_gates, c[:, :, None]).h
            cf_logits = self.net.policy_logits(cf_h.reshape(len(models), e * a, -1), models)
            counterfactual.append(F.log_softmax(cf_logits.view(len(models), e, a, a), -1))
        # [S*J, E, K, A(ã), A(a^j)] -> [B, K, J, A, A]
        cf = torch.stack(counterfactual, 2).reshape(self.S, j, e, self.K, a, a)
        cond_log_all = cf.permute(0, 2, 3, 1, 4, 5).reshape(self.S * e, self.K, j, a, a)
        taken = self.to_games(actions)
        c = causal_influence_reward(
            cond_log_all,
            self.to_games(logp_all)[:, : self.K, None, :],
            taken[:, : self.K, None].expand(-1, -1, j),
            divergence=self.config.reward.divergence,
            influencee_action=taken[:, None, self.K :].expand(-1, self.K, -1),
        )  # [B, K, J]
        return c

    def _influence_per_agent(self, pairs: Tensor) -> Tensor:
        """Influence reward per agent [B, N] from the pairs [B, K, J]: influencers get the
        influence they exert (c^k = Σ_j); with `influencee_reward`, influencees also get the
        influence they receive."""
        influence = pairs.new_zeros(pairs.shape[0], self.N)
        influence[:, : self.K] = pairs.sum(2)
        if self.config.reward.influencee_reward:
            influence[:, self.K :] = pairs.sum(1)
        return influence

    def shaped_reward(self, extrinsic: Tensor, influence: Tensor | None) -> Tensor:
        """The reward each agent trains on, [B, N], under the condition's scheme."""
        r = self.config.reward
        if r.scheme == "influence":
            beta = r.influence_weight * curriculum_weight(self.env_steps, self.curriculum_steps)
            return reward_schemes.influence_shaped_reward(extrinsic, influence, r.extrinsic_weight, beta)
        if r.scheme == "prosocial":
            return reward_schemes.prosocial_reward(extrinsic, r.prosocial_eta)
        if r.scheme == "inequity_aversion":
            self.smoothed = reward_schemes.smooth_rewards(self.smoothed, extrinsic, self.config.optim.gamma, r.ia_lambda)
            return reward_schemes.inequity_aversion_reward(extrinsic, self.smoothed, r.ia_alpha, r.ia_beta)
        return extrinsic

    # ------------------------------------------------------------------ rollout
    def collect(self) -> Rollout:
        """Step all games T times under the current policies."""
        t_len = self.config.optim.rollout_length
        start_state = LSTMState(self.state.h.clone(), self.state.c.clone())
        steps = []
        for _ in range(t_len):
            out = self.act(self.obs, self.state)
            self.obs, extrinsic, done, info = self.env.step(self.to_games(out["actions"]))
            self.env_steps += self.E
            reward = self.shaped_reward(extrinsic, out.get("influence"))
            self._record(extrinsic, info, out.get("influence"), out["actions"])
            done_models = self.to_models(done[:, None].expand(-1, self.N))
            live = (~done_models).float()[..., None]
            self.state = LSTMState(out["state"].h * live, out["state"].c * live)
            steps.append((out["images"], out["conditioning"], out["actions"], out["logp"], out["value"], self.to_models(reward), done_models))
            if self.env.t == 0:  # all games reached the horizon and reset (known on the host)
                self._finish_episode()
        with torch.no_grad():
            last_value = self.act(self.obs, self.state)["value"]
        columns = [None if col[0] is None else torch.stack(col) for col in zip(*steps)]
        return Rollout(*columns, start_state=start_state, last_value=last_value)

    # ------------------------------------------------------------------ learning
    def evaluate(self, batch: Rollout, games: Tensor | slice = slice(None)) -> tuple[Tensor, Tensor]:
        """Re-run the recurrent network over the rollout (with gradients): logits
        [T, M, E', A] and values [T, M, E'] for the games selected by `games`."""
        images = batch.images[:, :, games]
        t_len, m, e = images.shape[:3]
        features = self.net.encode(images.transpose(0, 1).reshape(m, t_len * e, *images.shape[3:]))
        features = features.view(m, t_len, e, -1)
        state = LSTMState(batch.start_state.h[:, games], batch.start_state.c[:, games])
        logits, values = [], []
        for t in range(t_len):
            cond = None if batch.conditioning is None else batch.conditioning[t][:, games]
            step_logits, value, state = self.net.step(features[:, t], cond, state)
            live = (~batch.dones[t][:, games]).float()[..., None]
            state = LSTMState(state.h * live, state.c * live)
            logits.append(step_logits)
            values.append(value)
        return torch.stack(logits), torch.stack(values)

    def _learning_rate(self) -> float:
        o = self.config.optim
        progress = min(self.env_steps / self.preset.total_steps, 1.0)
        return o.lr_init + (o.lr_end - o.lr_init) * progress

    def _loss(self, batch: Rollout, advantages: Tensor, returns: Tensor, games: Tensor | slice) -> Tensor:
        """Actor-critic loss, averaged over steps and games per model and summed over models
        (so each agent's gradient is its own). PPO clips the probability ratio."""
        o = self.config.optim
        logits, values = self.evaluate(batch, games)
        logp_all = F.log_softmax(logits, -1)
        logp = logp_all.gather(-1, batch.actions[:, :, games, None]).squeeze(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        adv = advantages[:, :, games]
        if o.algorithm == "ppo":
            ratio = (logp - batch.logp[:, :, games]).exp()
            policy_loss = -torch.minimum(ratio * adv, ratio.clamp(1 - o.ppo_clip, 1 + o.ppo_clip) * adv)
        else:
            policy_loss = -logp * adv
        value_loss = 0.5 * (returns[:, :, games] - values) ** 2
        per_step = policy_loss + o.value_coef * value_loss - o.entropy_coef * entropy
        return per_step.mean(dim=(0, 2)).sum()

    def _clip_and_step(self) -> None:
        """Clip each agent's gradient norm separately, then one optimiser step."""
        params = [p for p in self.net.parameters() if p.grad is not None]
        sq = sum(p.grad.reshape(self.M, -1).pow(2).sum(1) for p in params)
        scale = (self.config.optim.max_grad_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
        for p in params:
            p.grad.mul_(scale.view(-1, *([1] * (p.dim() - 1))))
        self.optimizer.step()

    def update(self, batch: Rollout) -> dict:
        """One A2C step, or PPO epochs over minibatches of games."""
        o = self.config.optim
        for group in self.optimizer.param_groups:
            group["lr"] = self._learning_rate()
        advantages, returns = gae(batch.rewards, batch.values, batch.dones, batch.last_value, o.gamma, o.gae_lambda)
        if o.algorithm == "a2c":
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._loss(batch, advantages, returns, slice(None))
            loss.backward()
            self._clip_and_step()
            return {"loss": loss.item()}
        chunks = max(1, min(o.ppo_minibatches, self.E))
        for _ in range(o.ppo_epochs):
            order = torch.randperm(self.E, generator=self.generator, device=self.device)
            for games in order.chunk(chunks):
                self.optimizer.zero_grad(set_to_none=True)
                loss = self._loss(batch, advantages, returns, games)
                loss.backward()
                self._clip_and_step()
        return {"loss": loss.item()}

    def train_iteration(self) -> None:
        """Collect one rollout and learn from it."""
        start = time.perf_counter()
        self.update(self.collect())
        self.wall_time += time.perf_counter() - start

    # ------------------------------------------------------------------ episode metrics
    def _new_episode(self) -> None:
        shape = (self.S * self.E, self.N)
        self.smoothed = torch.zeros(shape, device=self.device)
        self._returns = torch.zeros(shape, device=self.device)
        self._influence_sum = torch.zeros(shape, device=self.device)
        self._events = {key: torch.zeros(shape, device=self.device) for key in EPISODE_EVENTS}
        b = shape[0]
        self._open_step = torch.full((b,), -1, device=self.device)
        self._t = 0

    def _record(self, extrinsic: Tensor, info: dict, influence: Tensor | None, actions: Tensor) -> None:
        self._returns += extrinsic
        for key in EPISODE_EVENTS:
            self._events[key] += info[key]
        if influence is not None:
            self._influence_sum += influence
        if "open" in info:
            opened = info["open"][:, 0].bool() & (self._open_step < 0)
            self._open_step = torch.where(opened, self._t, self._open_step)
        self._t += 1

    def _finish_episode(self) -> None:
        """Append one row per seed: means over that seed's games of the episode's figures."""
        def per_game(x: Tensor) -> np.ndarray:
            return x.reshape(self.S, self.E, *x.shape[1:]).cpu().numpy().astype(np.float64)

        returns = per_game(self._returns)  # [S, E, N]
        collective = metrics.collective_reward(returns)
        equality = metrics.equality(returns)
        events = {key: per_game(value) for key, value in self._events.items()}
        influence = per_game(self._influence_sum)
        opened = per_game(self._open_step)
        index = sum(1 for row in self.episodes if row["seed"] == self.seeds[0])
        for s, seed in enumerate(self.seeds):
            row = {
                "seed": seed,
                "episode": index,
                "env_steps": self.env_steps,
                "wall_time": self.wall_time,
                "collective_reward": collective[s].mean(),
                "equality": equality[s].mean(),
                "collective_times_equality": (collective[s] * equality[s]).mean(),
            }
            for k in range(self.N):
                row[f"return_{k}"] = returns[s, :, k].mean()
                row[f"influence_{k}"] = influence[s, :, k].mean()
                for key in EPISODE_EVENTS:
                    row[f"{key}_{k}"] = events[key][s, :, k].mean()
            if self.config.env == "box_trapped":
                row["open_rate"] = (opened[s] >= 0).mean()
                row["open_step_mean"] = opened[s][opened[s] >= 0].mean() if (opened[s] >= 0).any() else np.nan
            self.episodes.append(row)
        self._new_episode()
