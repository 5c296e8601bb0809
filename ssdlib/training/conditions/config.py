"""Training configurations: one TOML file per experimental condition, strictly validated.

A config names the game, the agents' architecture, the reward scheme and the optimiser
settings (the paper's Table 1 for Cleanup and Harvest). A preset (`presets.py`) scales the
number of steps and games. Unknown fields, wrong types and out-of-range values are errors that
name the field, never silently ignored.
"""

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...envs import ENVIRONMENTS, OPTIONS
from ...influence import DIVERGENCES

CONFIG_DIR = Path(__file__).parent / "configs"
REWARD_SCHEMES = ("extrinsic", "influence", "prosocial", "inequity_aversion")
INFLUENCE_SOURCES = ("centralised", "moa", "communication")
ALGORITHMS = ("a2c", "ppo")


@dataclass(frozen=True)
class ModelConfig:
    """action_inputs: the LSTM sees the other agents' actions (one-hot). influencers: agents
    0..K-1 act first and the others (influencees) see their actions of the same step. moa:
    each agent also has a model of the other agents (paper section 6). vocabulary,
    message_embedding: with a vocabulary (>= 2 symbols) the agents communicate (section 5):
    every agent's previous symbol, embedded, is input to every agent, and a communication
    head chooses the next symbol (Table 2)."""

    action_inputs: bool = False
    influencers: int = 0
    moa: bool = False
    vocabulary: int = 0
    message_embedding: int = 0


@dataclass(frozen=True)
class RewardConfig:
    """r^k = α e^k + β w(t) c^k (influence), e^k + η Σ_{i≠k} e^i (prosocial), or inequity
    aversion (Hughes et al. 2018) with disadvantageous weight ia_alpha, advantageous
    ia_beta and smoothing ia_lambda. influence_source: where the counterfactual policies of
    c^k come from: "centralised" (the influencees' own policies, section 4), "moa" (the
    influencer's own model of the other agents, section 6) or "communication" (the listeners'
    policies under every symbol the speaker could have said, section 5). With communication
    the environment policy trains on e^k alone and the communication policy on the scheme's
    reward (α e^k + β w(t) c^k, or e^k)."""

    scheme: str = "extrinsic"
    influence_source: str = "centralised"
    extrinsic_weight: float = 1.0
    influence_weight: float = 0.0
    divergence: str = "kl"
    influencee_reward: bool = False
    curriculum_steps: float = 0.0  # env steps at the paper's scale (5e8); presets rescale it
    prosocial_eta: float = 0.0
    ia_alpha: float = 0.0
    ia_beta: float = 0.0
    ia_lambda: float = 0.95


@dataclass(frozen=True)
class OptimConfig:
    algorithm: str = "a2c"
    lr_init: float = 1e-3
    lr_end: float = 1e-5
    entropy_coef: float = 1e-3
    value_coef: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 1.0
    max_grad_norm: float = 40.0
    rollout_length: int = 100
    ppo_epochs: int = 10
    ppo_minibatches: int = 4
    ppo_clip: float = 0.3
    moa_loss_weight: float = 0.0
    moa_only_visible: bool = False
    comm_loss_weight: float = 0.0
    comm_entropy_coef: float = 0.0


@dataclass(frozen=True)
class Config:
    name: str
    env: str
    num_agents: int = 5
    env_options: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = ModelConfig()
    reward: RewardConfig = RewardConfig()
    optim: OptimConfig = OptimConfig()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass `cls` from `data`, checking names and types field by field."""
    if not isinstance(data, dict):
        raise ValueError(f"config field {where!r} must be a table, got {data!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown config field(s) {[f'{where}.{u}'.lstrip('.') for u in unknown]}")
    values = {}
    for name, value in data.items():
        path = f"{where}.{name}".lstrip(".")
        kind = known[name].type
        if kind in (ModelConfig, RewardConfig, OptimConfig):
            values[name] = _build(kind, value, path)
            continue
        expected = {float: (int, float), int: (int,), bool: (bool,), str: (str,)}.get(kind, (dict,))
        if isinstance(value, bool) and kind is not bool or not isinstance(value, expected):
            raise ValueError(f"config field {path!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
        values[name] = float(value) if kind is float else value
    missing = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING and f.name not in values]
    if missing:
        raise ValueError(f"config is missing field(s) {[f'{where}.{m}'.lstrip('.') for m in missing]}")
    return cls(**values)


def _check(config: Config) -> Config:
    """Cross-field checks, each naming the offending field and value."""
    def bad(path: str, value: Any, why: str) -> ValueError:
        return ValueError(f"config field {path!r} = {value!r}: {why}")

    if config.env not in ENVIRONMENTS:
        raise bad("env", config.env, f"unknown env; choose from {sorted(ENVIRONMENTS)}")
    unknown = set(config.env_options) - OPTIONS[config.env]
    if unknown:
        raise bad("env_options", sorted(unknown), f"unknown option(s); allowed {sorted(OPTIONS[config.env])}")
    n, m, r, o = config.num_agents, config.model, config.reward, config.optim
    if not 1 <= n <= 9:
        raise bad("num_agents", n, "must be 1..9")
    if not 0 <= m.influencers < n:
        raise bad("model.influencers", m.influencers, f"must be 0..{n - 1} (influencees must remain)")
    if r.scheme not in REWARD_SCHEMES:
        raise bad("reward.scheme", r.scheme, f"choose from {list(REWARD_SCHEMES)}")
    if r.divergence not in DIVERGENCES:
        raise bad("reward.divergence", r.divergence, f"choose from {sorted(DIVERGENCES)}")
    if r.influence_source not in INFLUENCE_SOURCES:
        raise bad("reward.influence_source", r.influence_source, f"choose from {list(INFLUENCE_SOURCES)}")
    if m.vocabulary < 0:
        raise bad("model.vocabulary", m.vocabulary, "must be 0 (no communication) or >= 2 symbols")
    if m.vocabulary and r.scheme == "influence" and r.influence_source != "communication":
        raise bad("reward.influence_source", r.influence_source, "agents that communicate take 'communication'")
    centralised = r.scheme == "influence" and r.influence_source == "centralised"
    if centralised and (m.influencers < 1 or not m.action_inputs):
        raise bad("model.influencers", m.influencers, "the centralised influence reward needs influencers >= 1 and action_inputs = true")
    if r.scheme == "influence" and r.influence_source == "moa":
        if not m.moa:
            raise bad("model.moa", m.moa, "the moa influence source needs model.moa = true")
        if r.divergence == "pmi":
            raise bad("reward.divergence", r.divergence, "the moa source needs kl or jsd (pmi needs the influencee's next action)")
    if m.moa:
        if m.influencers != 0:
            raise bad("model.influencers", m.influencers, "agents with an MOA act simultaneously; set influencers = 0")
        if not m.action_inputs:
            raise bad("model.action_inputs", m.action_inputs, "MOA agents condition on the others' previous actions; set true")
        if o.moa_loss_weight <= 0:
            raise bad("optim.moa_loss_weight", o.moa_loss_weight, "must be > 0 when model.moa = true")
    elif o.moa_loss_weight != 0 or o.moa_only_visible:
        raise bad("optim.moa_loss_weight" if o.moa_loss_weight != 0 else "optim.moa_only_visible",
                  o.moa_loss_weight if o.moa_loss_weight != 0 else o.moa_only_visible, "needs model.moa = true")
    if m.vocabulary:
        if m.vocabulary < 2:
            raise bad("model.vocabulary", m.vocabulary, "must be 0 (no communication) or >= 2 symbols")
        if m.message_embedding < 1:
            raise bad("model.message_embedding", m.message_embedding, "must be >= 1 when model.vocabulary > 0")
        if m.influencers != 0 or m.moa:
            raise bad("model.influencers" if m.influencers else "model.moa", m.influencers or m.moa,
                      "communicating agents act simultaneously, without an MOA (paper section 5)")
        if r.scheme not in ("extrinsic", "influence"):
            raise bad("reward.scheme", r.scheme, "communication trains with 'extrinsic' (the baseline) or 'influence'")
        if r.scheme == "influence" and r.divergence == "pmi":
            raise bad("reward.divergence", r.divergence, "communication needs kl or jsd (pmi would score the listeners' "
                      "actions sampled for the rollout's last symbols, which are not the ones played)")
        if o.comm_loss_weight <= 0:
            raise bad("optim.comm_loss_weight", o.comm_loss_weight, "must be > 0 when model.vocabulary > 0")
        if o.comm_entropy_coef < 0:
            raise bad("optim.comm_entropy_coef", o.comm_entropy_coef, "must be >= 0")
    else:
        for path, value in (("model.message_embedding", m.message_embedding), ("optim.comm_loss_weight", o.comm_loss_weight),
                            ("optim.comm_entropy_coef", o.comm_entropy_coef)):
            if value != 0:
                raise bad(path, value, "needs model.vocabulary > 0 (communication)")
        if r.scheme == "influence" and r.influence_source == "communication":
            raise bad("reward.influence_source", r.influence_source, "needs model.vocabulary > 0 (communication)")
    if r.curriculum_steps < 0:
        raise bad("reward.curriculum_steps", r.curriculum_steps, "must be >= 0")
    if not 0 <= r.ia_lambda < 1:
        raise bad("reward.ia_lambda", r.ia_lambda, "must be in [0, 1)")
    if o.algorithm not in ALGORITHMS:
        raise bad("optim.algorithm", o.algorithm, f"choose from {list(ALGORITHMS)}")
    for name in ("lr_init", "lr_end", "max_grad_norm"):
        if getattr(o, name) <= 0:
            raise bad(f"optim.{name}", getattr(o, name), "must be > 0")
    for name in ("entropy_coef", "value_coef"):
        if getattr(o, name) < 0:
            raise bad(f"optim.{name}", getattr(o, name), "must be >= 0")
    for name in ("gamma", "gae_lambda"):
        if not 0 <= getattr(o, name) <= 1:
            raise bad(f"optim.{name}", getattr(o, name), "must be in [0, 1]")
    for name in ("rollout_length", "ppo_epochs", "ppo_minibatches"):
        if getattr(o, name) < 1:
            raise bad(f"optim.{name}", getattr(o, name), "must be >= 1")
    if not 0 < o.ppo_clip < 1:
        raise bad("optim.ppo_clip", o.ppo_clip, "must be in (0, 1)")
    return config


def config_from_dict(data: dict[str, Any]) -> Config:
    return _check(_build(Config, data, ""))


def config_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def read_config_toml(name_or_path: str | Path, config_dir: Path) -> dict[str, Any]:
    """The table of a packaged config (a file stem in `config_dir`) or of a TOML file path;
    an unknown name, a missing file or bad TOML is an error naming it. Shared by every family
    of configs (these conditions, the Theory-of-Mind ones)."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        names = sorted(p.stem for p in config_dir.glob("*.toml"))
        if str(name_or_path) not in names:
            raise ValueError(f"unknown config {str(name_or_path)!r}; packaged configs: {', '.join(names)}")
        path = config_dir / f"{name_or_path}.toml"
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"config file {str(path)!r} is not valid TOML: {error}") from None


def load_config(name_or_path: str | Path) -> Config:
    """A packaged config by name (see `config_names`) or a TOML file path."""
    return config_from_dict(read_config_toml(name_or_path, CONFIG_DIR))
