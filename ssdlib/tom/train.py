"""Train one row of the paper's table, for several seeds at once, resumably.

    python -m ssdlib.tom.train tom_second_order_good --preset cpu --seeds 0,1,2,3,4 --out results/runs/tom_second_order_good/cpu

Independent PPO learners (one network per seed and agent, `networks.ToMNetworks`) with the
parts the config switches on per team: the belief bottleneck with its CLUB penalty (first
order) and the second-order predictor with its ToM reward. Each seed plays its own games with
its own generators, so what a seed draws does not depend on the seeds beside it (its numbers
match a run of that seed alone to float rounding: batched matrix products of another size
round differently). Everything that
changes while training is in `TrainingState`, which a checkpoint stores as tensors and plain
containers (`torch.load(weights_only=True)` reads it); rerunning the command after an
interruption resumes from it bit for bit.

One iteration (`collect`, then `update`), as CleanRL's ppo.py lays it out:
1. every seed's games play one 25-step episode; at each step every agent acts on its
   observation, and agents with second-order beliefs are scored on the state their step led to
   (`beliefs.tom_reward`);
2. rewards r = r_ext + λ r_tom; advantages and returns by GAE over the episode;
3. `epochs` passes over each seed's steps in `minibatches` shuffled minibatches; in each, q(z|b)
   takes one step on the detached (b, z) pairs, then the agents take one step on
   L = L_π + c_V L_V - c_H H + α L_b + β Î_CLUB + α₂ L_B, each term only where its team has it.
"""

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ..envs.physical_deception import HORIZON, DeceptionObservation, ParticleState, PhysicalDeception
from ..hardware import resolve_device
from ..runs import atomic_write, git_commit, provenance, write_json, write_metrics
from ..train import parse_seeds
from . import beliefs, club, ppo
from .config import Config, load_config
from .networks import AgentOutputs, ToMNetworks, agent_inputs
from .presets import PRESETS, Preset, get_preset
from .seeding import generator, stream_seed

CHECKPOINT_FORMAT = 1
NUM_AGENTS = 3  # adversary_0, agent_0, agent_1 (simple_adversary_v3's default N = 2)
TEAMS = {"adversary": [0], "good": [1, 2]}  # agent indices of each team
LOSSES = ("policy", "value", "entropy", "approx_kl", "clip_fraction", "belief", "second_order", "club", "q_nll")


def agent_flags(config: Config, part: str) -> list[bool]:
    """Per agent (adversary first): whether its team has `part` ("first_order" or "second_order")."""
    return [getattr(config.team("adversary" if agent == 0 else "good"), part) for agent in range(NUM_AGENTS)]


def team_mask(config: Config, part: str, seeds: int, device: torch.device) -> Tensor:
    """float [seeds * NUM_AGENTS]: 1 for the models whose team has `part` switched on."""
    return torch.tensor([float(flag) for flag in agent_flags(config, part)] * seeds, device=device)


def sample_actions(logits: Tensor, uniform: Tensor) -> Tensor:
    """Categorical samples by inverting the CDF with the given uniforms (each seed draws its
    own): a = #{k : Σ_{k' <= k} π(k') < u}. logits [M, B, A], uniform [M, B] -> int64 [M, B]."""
    cdf = logits.softmax(-1).cumsum(-1)
    return (cdf < uniform[..., None]).sum(-1).clamp(max=logits.shape[-1] - 1)


@dataclass
class TrainingState:
    net: ToMNetworks
    q: club.VariationalGaussian
    optimizer: torch.optim.Adam
    q_optimizer: torch.optim.Adam
    games: list[PhysicalDeception]  # one env of num_games games per seed
    sampling: list[torch.Generator]  # one per seed: actions and minibatch order
    iteration: int = 0
    wall_time: float = 0.0
    metrics: list[dict] = field(default_factory=list)

    def checkpoint(self) -> dict:
        """The state as tensors and plain containers. Iterations end with every game reset
        (an iteration is one whole episode), so the games are their fresh state and RNG."""
        return {
            "format": CHECKPOINT_FORMAT,
            "net": self.net.state_dict(),
            "q": self.q.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "q_optimizer": self.q_optimizer.state_dict(),
            "games": [{"state": {k: v for k, v in vars(g.state).items()}, "generator": g._generator.get_state()}
                      for g in self.games],
            "sampling": [g.get_state() for g in self.sampling],
            "iteration": self.iteration,
            "wall_time": self.wall_time,
            "metrics": self.metrics,
        }

    def restore(self, data: dict) -> None:
        """Continue exactly where `checkpoint()` was taken."""
        if data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {data.get('format')!r} is not {CHECKPOINT_FORMAT}; retrain the run")
        self.net.load_state_dict(data["net"])
        self.q.load_state_dict(data["q"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.q_optimizer.load_state_dict(data["q_optimizer"])
        for game, saved in zip(self.games, data["games"], strict=True):
            game.state = ParticleState(**saved["state"])
            game._generator.set_state(saved["generator"].cpu())
            game.t = 0
        for gen, saved in zip(self.sampling, data["sampling"], strict=True):
            gen.set_state(saved.cpu())
        self.iteration, self.wall_time = int(data["iteration"]), float(data["wall_time"])
        self.metrics = list(data["metrics"])


def new_state(config: Config, preset: Preset, seeds: list[int], device: torch.device) -> TrainingState:
    """Fresh networks, optimisers and games for `seeds` (each seed's from its own streams)."""
    games = [PhysicalDeception(preset.num_games, NUM_AGENTS, device=device, seed=stream_seed(s, "games")) for s in seeds]
    num_landmarks, num_actions = games[0].num_landmarks, games[0].num_actions
    net = ToMNetworks(config.model, seeds, agent_flags(config, "first_order"), num_landmarks, num_actions).to(device)
    inits = [generator(s, "init", NUM_AGENTS + a) for s in seeds for a in range(NUM_AGENTS)]
    q = club.VariationalGaussian(inits, num_landmarks, config.model.residual_dim, config.model.club_hidden).to(device)
    sampling = [torch.Generator(device=device).manual_seed(stream_seed(s, "sampling")) for s in seeds]
    return TrainingState(net, q, torch.optim.Adam(net.parameters(), lr=config.ppo.lr, eps=1e-5),
                         torch.optim.Adam(q.parameters(), lr=config.ppo.club_lr), games, sampling)


class Rollout(NamedTuple):
    """One episode of every game in model layout: [T, M, E, ...] (M = seeds x agents, E games)."""

    obs: Tensor  # [T, M, E, 10] the observations acted on
    actions: Tensor  # int64 [T, M, E]
    logp: Tensor  # log π_old(a_t|o_t)
    values: Tensor  # V_old(o_t)
    rewards: Tensor  # extrinsic r_t
    tom: Tensor  # r_tom of step t: the second-order score on o_{t+1}
    belief: Tensor  # [T, M, E, N] b_t
    goal: Tensor  # int64 [M, E] the target of each game's episode
    final_obs: Tensor  # [M, E, 10] the observations the episode ended on


def model_inputs(observations: list[DeceptionObservation]) -> Tensor:
    """[M, E, 10]: every agent's input, seeds major, from each seed's observation."""
    return torch.cat([agent_inputs(obs) for obs in observations])


def tom_rewards(out: AgentOutputs) -> Tensor:
    """r_tom of every model on the observations `out` was computed from, [M, E]."""
    return beliefs.tom_reward(out.second_order, beliefs.others(out.belief, NUM_AGENTS))


@torch.no_grad()
def collect(state: TrainingState) -> Rollout:
    """Play one episode in every game with the current policies (sampling each seed's actions
    with its own generator)."""
    games, net = state.games, state.net
    obs = model_inputs([g.observe() for g in games])
    goal = torch.cat([g.state.goal.expand(NUM_AGENTS, -1) for g in games])  # [M, E]: fixed for the episode
    steps: dict[str, list[Tensor]] = {k: [] for k in ("obs", "actions", "logp", "values", "rewards", "tom", "belief")}
    for t in range(HORIZON):
        out = net(obs)
        if t > 0:
            steps["tom"].append(tom_rewards(out))  # r_tom of the previous step: the state it led to
        uniform = torch.cat([torch.rand(NUM_AGENTS, g.num_envs, generator=gen, device=obs.device)
                             for g, gen in zip(games, state.sampling)])
        actions = sample_actions(out.logits, uniform)
        logp = out.logits.log_softmax(-1).gather(-1, actions[..., None]).squeeze(-1)
        results = [g.step(a.T) for g, a in zip(games, actions.unflatten(0, (len(games), NUM_AGENTS)))]
        rewards = torch.cat([r.T for _, r, _, _ in results])
        for key, value in zip(("obs", "actions", "logp", "values", "rewards", "belief"),
                              (obs, actions, logp, out.value, rewards, out.belief)):
            steps[key].append(value)
        obs = model_inputs([o for o, _, _, _ in results])
    final_obs = model_inputs([info["final_observation"] for _, _, _, info in results])
    steps["tom"].append(tom_rewards(net(final_obs)))
    stacked = {k: torch.stack(v) for k, v in steps.items()}
    return Rollout(goal=goal, final_obs=final_obs, **stacked)


def update(state: TrainingState, config: Config, rollout: Rollout, fraction_done: float) -> dict[str, Tensor]:
    """One PPO update of every model on its rollout; returns each loss term's mean over the
    minibatches, per model ([M])."""
    p, w = config.ppo, config.loss
    net, q = state.net, state.q
    seeds, device = len(state.games), rollout.obs.device
    first, second = team_mask(config, "first_order", seeds, device), team_mask(config, "second_order", seeds, device)

    # rewards, advantages and returns over the episode
    if p.anneal_lr:
        state.optimizer.param_groups[0]["lr"] = p.lr * (1.0 - fraction_done)
    rewards = rollout.rewards + w.tom_reward_weight * second[:, None] * rollout.tom
    advantages, returns = ppo.gae(rewards, rollout.values, p.gamma, p.gae_lambda)

    def flat(x: Tensor) -> Tensor:  # [T, M, E, ...] -> [M, T * E, ...]
        return x.transpose(0, 1).flatten(1, 2)

    data = {"obs": flat(rollout.obs), "actions": flat(rollout.actions), "logp": flat(rollout.logp),
            "advantages": flat(advantages), "returns": flat(returns),
            "goal": rollout.goal[None].expand(HORIZON, -1, -1).transpose(0, 1).flatten(1)}
    samples = data["obs"].shape[1]
    size = samples // p.minibatches
    models = torch.arange(net.bottleneck.shape[0], device=device)[:, None]
    totals = {name: torch.zeros(len(models), device=device) for name in LOSSES}
    for _ in range(p.epochs):
        order = torch.stack([torch.randperm(samples, generator=g, device=device) for g in state.sampling])
        order = order.repeat_interleave(NUM_AGENTS, 0)  # the agents of a seed share its minibatches
        for k in range(p.minibatches):
            index = order[:, k * size:(k + 1) * size]
            batch = {key: value[models, index] for key, value in data.items()}
            out = net(batch["obs"])

            # q(z|b) learns the conditional of the residual on detached pairs (its own optimiser)
            mu, logvar = q(out.belief.detach())
            q_nll = club.q_loss(out.residual.detach(), mu, logvar)
            state.q_optimizer.zero_grad()
            (first * q_nll).sum().backward()
            state.q_optimizer.step()

            # the agents' loss, every term per model
            logp = out.logits.log_softmax(-1).gather(-1, batch["actions"][..., None]).squeeze(-1)
            logratio = logp - batch["logp"]
            terms = {
                "policy": ppo.clipped_policy_loss(logratio, ppo.normalise(batch["advantages"]), p.clip),
                "value": ppo.value_loss(out.value, batch["returns"]),
                "entropy": ppo.entropy(out.logits),
                "belief": beliefs.first_order_loss(out.belief_logits, batch["goal"]),
                "club": club.club_estimate(out.residual, *q.frozen(out.belief)),
                "second_order": beliefs.second_order_loss(out.second_order, beliefs.others(out.belief, NUM_AGENTS)),
            }
            loss = (terms["policy"] + p.value_coef * terms["value"] - p.entropy_coef * terms["entropy"]
                    + first * (w.belief_weight * terms["belief"] + w.club_weight * terms["club"])
                    + second * w.second_order_weight * terms["second_order"])
            state.optimizer.zero_grad()
            loss.sum().backward()
            ppo.clip_grad_norm_per_model(list(net.parameters()), p.max_grad_norm)
            state.optimizer.step()

            with torch.no_grad():
                terms |= {"approx_kl": ppo.approx_kl(logratio), "clip_fraction": ppo.clip_fraction(logratio, p.clip),
                          "q_nll": q_nll}
                for name in LOSSES:
                    totals[name] += terms[name].detach()
    return {name: total / (p.epochs * p.minibatches) for name, total in totals.items()}


def by_agent(x: Tensor) -> Tensor:
    """[M, ...] -> [S, NUM_AGENTS, ...]."""
    return x.unflatten(0, (-1, NUM_AGENTS))


def seed_statistics(rollout: Rollout, losses: dict[str, Tensor], config: Config) -> dict[str, Tensor]:
    """The logged numbers of one iteration, each [S] (one per seed):

    - good_return, adversary_return: undiscounted extrinsic episode return per agent (every good
      agent gets the same reward), mean over the seed's games;
    - good_success, adversary_success: whether the nearest good agent / the adversary ended the
      episode within 2 x 0.08 of the target (the game's unused sparse-reward radius, tom.md 3.7);
    - TEAM_belief_accuracy (argmax b = target), TEAM_belief_target (b's probability on the
      target), TEAM_tom_reward (mean r_tom per step), and TEAM_LOSS for each loss term, means
      over the team's agents; NaN where the team does not have the part they measure.
    """
    final = rollout.final_obs  # a good agent's row: [goal - self, landmarks - self, adversary - self, other - self]
    good_to_goal = by_agent(final[..., :2].norm(dim=-1))[:, 1:].amin(1)  # [S, E]
    adversary_to_goal = by_agent((final[..., 6:8] - final[..., :2]).norm(dim=-1))[:, 1]
    target = rollout.goal[None, ..., None].expand(HORIZON, -1, -1, 1)
    per_model = {
        "return": rollout.rewards.sum(0).mean(-1),
        "tom_reward": rollout.tom.mean((0, 2)),
        "belief_accuracy": (rollout.belief.argmax(-1) == rollout.goal[None]).float().mean((0, 2)),
        "belief_target": rollout.belief.gather(-1, target).squeeze(-1).mean((0, 2)),
        **losses,
    }
    needs = {"tom_reward": "second_order", "second_order": "second_order", "belief_accuracy": "first_order",
             "belief_target": "first_order", "belief": "first_order", "club": "first_order", "q_nll": "first_order"}
    stats = {"good_success": (good_to_goal < 0.16).float().mean(-1),
             "adversary_success": (adversary_to_goal < 0.16).float().mean(-1)}
    for team, agents in TEAMS.items():
        for name, value in per_model.items():
            on = name not in needs or getattr(config.team(team), needs[name])
            stats[f"{team}_{name}"] = by_agent(value)[:, agents].mean(1) if on else torch.full_like(value[::NUM_AGENTS], np.nan)
    return stats


def iteration(state: TrainingState, config: Config, preset: Preset, seeds: list[int]) -> None:
    """Collect one episode per game, update every model on it, log one row per seed."""
    start = time.perf_counter()
    rollout = collect(state)
    losses = update(state, config, rollout, state.iteration / preset.iterations)
    stats = {k: v.cpu().tolist() for k, v in seed_statistics(rollout, losses, config).items()}
    state.iteration += 1
    for i, seed in enumerate(seeds):
        state.metrics.append({"iteration": state.iteration, "env_steps": state.iteration * preset.steps_per_iteration,
                              "seed": seed, **{k: v[i] for k, v in stats.items()}})
    state.wall_time += time.perf_counter() - start


def resolved_config(config_name: str, preset_name: str, seeds: list[int]) -> dict:
    """What a run folder's config.json holds: the config, the preset and the seeds."""
    return {"config": load_config(config_name).to_dict(), "preset": get_preset(preset_name).record(), "seeds": seeds}


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """A checkpoint read with `torch.load(weights_only=True)` (tensors and plain containers only)."""
    return torch.load(path, map_location=device, weights_only=True)


def train(config_name: str, preset_name: str, seeds: list[int], device: str, out: Path, restart: bool = False,
          progress: bool = True, stop_after: int | None = None) -> Path:
    """Train (or resume) a run into `out` and return `out`. `stop_after`: leave after that many
    iterations in all (with a checkpoint, unfinished: for tests of resumption)."""
    resolved = resolved_config(config_name, preset_name, seeds)
    config, preset = load_config(config_name), get_preset(preset_name)
    device = resolve_device(device)
    checkpoint = out / "checkpoint.pt"
    stored = out / "config.json"
    if not restart and stored.is_file() and json.loads(stored.read_text()) != json.loads(json.dumps(resolved)):
        raise ValueError(f"run folder {str(out)!r} holds a different config; use another --out or --restart")
    if restart:
        for name in ("checkpoint.pt", "metrics.parquet", "done", "provenance.json"):
            (out / name).unlink(missing_ok=True)
    write_json(out / "config.json", resolved)
    if (out / "done").is_file():
        return out

    commit = git_commit()  # of the code this process imported
    state = new_state(config, preset, seeds, device)
    if checkpoint.is_file():
        state.restore(load_checkpoint(checkpoint, device))

    def save() -> None:
        steps = state.iteration * preset.steps_per_iteration
        write_metrics(out / "metrics.parquet", state.metrics)
        atomic_write(checkpoint, lambda tmp: torch.save(state.checkpoint(), tmp))
        write_json(out / "provenance.json", provenance(
            device, git_commit=commit, env_steps_per_seed=steps, wall_time_s=state.wall_time,
            env_steps_per_s=steps * len(seeds) / max(state.wall_time, 1e-9)))

    bar = tqdm(total=preset.iterations, initial=state.iteration, unit="it", disable=not progress, dynamic_ncols=True,
               desc=f"{config.name} [{preset.name}] seeds {','.join(map(str, seeds))}")
    last_save = time.monotonic()
    while state.iteration < preset.iterations:
        iteration(state, config, preset, seeds)
        last = state.metrics[-len(seeds):]
        bar.update(1)
        bar.set_postfix(good=f"{np.mean([r['good_return'] for r in last]):.2f}",
                        adversary=f"{np.mean([r['adversary_return'] for r in last]):.2f}")
        if stop_after is not None and state.iteration >= stop_after:
            save()
            bar.close()
            return out
        if time.monotonic() - last_save >= preset.checkpoint_seconds:
            save()
            last_save = time.monotonic()
    bar.close()
    save()
    atomic_write(out / "done", lambda tmp: Path(tmp).write_text("finished\n"))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.tom.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("config", help="a packaged config name (e.g. tom_ppo) or a .toml path")
    parser.add_argument("--preset", default="smoke", help=f"training length and games per seed: {', '.join(PRESETS)}")
    parser.add_argument("--seeds", default="0", help="seeds trained together: a range like 0-4 or a list like 0,2,5")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    parser.add_argument("--out", type=Path, default=None, help="run folder; None: results/runs/CONFIG/PRESET")
    parser.add_argument("--restart", action="store_true", help="discard an existing run in --out")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads; None: torch's choice")
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            sys.exit(f"error: --threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    try:
        seeds = parse_seeds(args.seeds)
        out = args.out or Path("results/runs") / Path(args.config).stem / args.preset
        train(args.config, args.preset, seeds, args.device, out, args.restart, not args.no_progress)
    except ValueError as error:
        sys.exit(f"error: {error}")
    print(out)


if __name__ == "__main__":
    main()
