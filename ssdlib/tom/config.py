"""Configs of the Theory-of-Mind experiments: one TOML file per row of the paper's table.

Every setting is written out in each file (no hidden defaults): the paper reports none of its
hyper-parameters, so these files are where our choices are recorded (the chapter lists them).
A config switches the belief bottleneck ("first order") and the ToM reward ("second order")
per team, as the paper's table does. Unknown fields, wrong types and out-of-range values are
errors that name the field.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..training.conditions.config import read_config_toml

CONFIG_DIR = Path(__file__).parent / "configs"
PREFIX = "tom_"  # every config of this package is named tom_*; the book's results API dispatches on it


@dataclass(frozen=True)
class TeamConfig:
    """first_order: the team's agents act through the belief bottleneck (a belief b over the
    landmarks, supervised by the true target, beside a residual z kept independent of b by the
    CLUB penalty). second_order: they also predict the other agents' beliefs and are rewarded
    with the negative prediction error (the ToM reward)."""

    first_order: bool
    second_order: bool


@dataclass(frozen=True)
class ModelConfig:
    """Layer widths: trunk and critic MLPs (hidden x 2, tanh), the residual z, and the CLUB
    variational network q(z|b) (club_hidden x 2, ReLU)."""

    hidden: int
    residual_dim: int
    club_hidden: int


@dataclass(frozen=True)
class LossConfig:
    """Weights of the terms added to PPO's loss (α first-order belief cross-entropy, α₂
    second-order MSE, β CLUB estimate) and of the ToM reward (λ)."""

    belief_weight: float
    second_order_weight: float
    club_weight: float
    tom_reward_weight: float


@dataclass(frozen=True)
class PPOConfig:
    lr: float
    anneal_lr: bool
    club_lr: float
    gamma: float
    gae_lambda: float
    clip: float
    epochs: int
    minibatches: int
    entropy_coef: float
    value_coef: float
    max_grad_norm: float


@dataclass(frozen=True)
class Config:
    name: str
    description: str
    good: TeamConfig
    adversary: TeamConfig
    model: ModelConfig
    loss: LossConfig
    ppo: PPOConfig

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def team(self, name: str) -> TeamConfig:
        return self.good if name == "good" else self.adversary


def _build(cls: type, data: Any, where: str) -> Any:
    """Instantiate dataclass `cls` from `data`, field by field: every field present, no
    unknown field, every value of its field's type."""
    if not isinstance(data, dict):
        raise ValueError(f"config field {where or 'the config'!r} must be a table, got {data!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}

    def named(name: str) -> str:
        return f"{where}.{name}".lstrip(".")

    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown config field(s) {[named(u) for u in unknown]}; "
                         f"{where or 'the config'} has {sorted(known)}")
    missing = [named(m) for m in known if m not in data]
    if missing:
        raise ValueError(f"config is missing field(s) {missing}")
    values = {}
    for name, value in data.items():
        kind = known[name].type
        if dataclasses.is_dataclass(kind):
            values[name] = _build(kind, value, named(name))
            continue
        expected = {float: (int, float), int: (int,), bool: (bool,), str: (str,)}[kind]
        if isinstance(value, bool) and kind is not bool or not isinstance(value, expected):
            raise ValueError(f"config field {named(name)!r} must be {kind.__name__}, got {value!r}")
        values[name] = float(value) if kind is float else value
    return cls(**values)


def _check(config: Config) -> Config:
    """Ranges and cross-field rules, each error naming the field and its value."""
    def bad(path: str, value: Any, why: str) -> ValueError:
        return ValueError(f"config field {path!r} = {value!r}: {why}")

    if not config.name.startswith(PREFIX):
        raise bad("name", config.name, f"must start with {PREFIX!r}")
    for team in ("good", "adversary"):
        if config.team(team).second_order and not (config.good.first_order and config.adversary.first_order):
            raise bad(f"{team}.second_order", True, "second-order beliefs predict the other agents' first-order "
                      "beliefs: set good.first_order and adversary.first_order to true")
    m, loss, p = config.model, config.loss, config.ppo
    for name in ("hidden", "residual_dim", "club_hidden"):
        if getattr(m, name) < 1:
            raise bad(f"model.{name}", getattr(m, name), "must be >= 1")
    for name in ("belief_weight", "second_order_weight", "club_weight", "tom_reward_weight"):
        if getattr(loss, name) < 0:
            raise bad(f"loss.{name}", getattr(loss, name), "must be >= 0")
    for name in ("lr", "club_lr", "max_grad_norm"):
        if getattr(p, name) <= 0:
            raise bad(f"ppo.{name}", getattr(p, name), "must be > 0")
    for name in ("entropy_coef", "value_coef"):
        if getattr(p, name) < 0:
            raise bad(f"ppo.{name}", getattr(p, name), "must be >= 0")
    for name in ("gamma", "gae_lambda"):
        if not 0 <= getattr(p, name) <= 1:
            raise bad(f"ppo.{name}", getattr(p, name), "must be in [0, 1]")
    if not 0 < p.clip < 1:
        raise bad("ppo.clip", p.clip, "must be in (0, 1)")
    for name in ("epochs", "minibatches"):
        if getattr(p, name) < 1:
            raise bad(f"ppo.{name}", getattr(p, name), "must be >= 1")
    return config


def config_from_dict(data: dict[str, Any]) -> Config:
    return _check(_build(Config, data, ""))


def config_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def load_config(name_or_path: str | Path) -> Config:
    """A packaged config by name (see `config_names`) or a TOML file path."""
    return config_from_dict(read_config_toml(name_or_path, CONFIG_DIR))
