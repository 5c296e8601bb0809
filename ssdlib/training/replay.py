"""Replaying a trained run without learning: load it from its folder, play fresh games.

Evaluations (Box Trapped's Figure 12) and recorded episodes (the explorer, moments of high
influence) both need the run's policies acting on games other than its training games.
"""

import json
from pathlib import Path

import torch

from .conditions.config import config_from_dict
from .conditions.presets import Preset
from .state import load_checkpoint
from .trainer import Trainer


def load_trainer(run_dir: str | Path, device: str | torch.device = "cpu") -> Trainer:
    """The Trainer of a run folder (its config.json: config, preset and seeds) with the whole
    training state of its checkpoint.pt, on `device`."""
    run_dir = Path(run_dir)
    config_path, checkpoint_path = run_dir / "config.json", run_dir / "checkpoint.pt"
    for path in (config_path, checkpoint_path):
        if not path.is_file():
            raise FileNotFoundError(f"no file {str(path)!r}: is {str(run_dir)!r} a trained run folder?")
    resolved = json.loads(config_path.read_text())
    trainer = Trainer(config_from_dict(resolved["config"]), Preset(**resolved["preset"]), resolved["seeds"], device)
    trainer.state.restore(load_checkpoint(checkpoint_path, trainer.device))
    return trainer


def replay_view(trainer: Trainer, games_per_seed: int, seed: int) -> Trainer:
    """A trainer sharing `trainer`'s networks (so it acts as the trained agents do) that
    plays S * games_per_seed fresh games, seeded with `seed` (games and action sampling).
    The trainer itself is left untouched."""
    return trainer.replay(games_per_seed, seed)
