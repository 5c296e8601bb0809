"""Replaying a trained run without learning: load it from its folder, play fresh games.

Evaluations (Box Trapped's Figure 12) and recorded episodes (the explorer, moments of high
influence) both need the run's policies acting on games other than its training games.
"""

import copy
import json
from pathlib import Path

import torch

from ..envs import make_env
from ..experiments.config import config_from_dict
from ..experiments.presets import Preset
from .checkpoint import load_trainer_state
from .trainer import Trainer


def load_trainer(run_dir: str | Path, device: str | torch.device = "cpu") -> Trainer:
    """The Trainer of a run folder (its config.json: config, preset and seeds) with the
    weights, optimiser, env and RNG states of its checkpoint.pt, on `device`."""
    run_dir = Path(run_dir)
    config_path, checkpoint_path = run_dir / "config.json", run_dir / "checkpoint.pt"
    for path in (config_path, checkpoint_path):
        if not path.is_file():
            raise FileNotFoundError(f"no file {str(path)!r}: is {str(run_dir)!r} a trained run folder?")
    resolved = json.loads(config_path.read_text())
    trainer = Trainer(config_from_dict(resolved["config"]), Preset(**resolved["preset"]), resolved["seeds"], device)
    load_trainer_state(trainer, torch.load(checkpoint_path, map_location=trainer.device, weights_only=False))
    return trainer


def replay_view(trainer: Trainer, games_per_seed: int, seed: int) -> Trainer:
    """A shallow copy of `trainer` sharing its network (so its `act` is the trainer's own),
    with its own env of S * games_per_seed fresh games, fresh LSTM states and its own
    sampling generator. The trainer itself is left untouched."""
    view = copy.copy(trainer)
    options = dict(trainer.config.env_options)
    if trainer.preset.horizon is not None:
        options["horizon"] = trainer.preset.horizon
    view.E = games_per_seed
    view.env = make_env(trainer.config.env, num_envs=trainer.S * games_per_seed, num_agents=trainer.N,
                        device=trainer.device, seed=seed, **options)
    view.generator = torch.Generator(device=trainer.device).manual_seed(seed)
    view.obs = view.env.reset()
    view.state = trainer.net.initial_state(games_per_seed)
    return view
