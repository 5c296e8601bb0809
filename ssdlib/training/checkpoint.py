"""Everything a trainer needs to resume bit for bit: weights, optimiser, env, RNGs, counters."""

import dataclasses

from ..agents import LSTMState
from ..envs import GridState
from .trainer import Trainer


def trainer_state(trainer: Trainer) -> dict:
    env = trainer.env
    return {
        "net": trainer.net.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "generator": trainer.generator.get_state(),
        "env_generator": env._generator.get_state(),
        "env_state": dataclasses.asdict(env.state),
        "env_t": env.t,
        "lstm": tuple(trainer.state),
        "env_steps": trainer.env_steps,
        "wall_time": trainer.wall_time,
        "episodes": trainer.episodes,
        "episode_accumulators": {
            "smoothed": trainer.smoothed, "returns": trainer._returns, "influence": trainer._influence_sum,
            "events": trainer._events, "open_step": trainer._open_step, "t": trainer._t,
        },
    }


def load_trainer_state(trainer: Trainer, state: dict) -> None:
    env = trainer.env
    trainer.net.load_state_dict(state["net"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.generator.set_state(state["generator"].cpu())
    env._generator.set_state(state["env_generator"].cpu())
    env.state = GridState(**state["env_state"])
    env.t = state["env_t"]
    trainer.obs = env.observe()
    trainer.state = LSTMState(*state["lstm"])
    trainer.env_steps = state["env_steps"]
    trainer.wall_time = state["wall_time"]
    trainer.episodes = list(state["episodes"])
    acc = state["episode_accumulators"]
    trainer.smoothed, trainer._returns, trainer._influence_sum = acc["smoothed"], acc["returns"], acc["influence"]
    trainer._events, trainer._open_step, trainer._t = acc["events"], acc["open_step"], acc["t"]
