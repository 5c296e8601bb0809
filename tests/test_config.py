"""Configs: every packaged config loads, Table 1 of the paper is transcribed exactly, and
malformed configs are errors that name the offending field."""

import textwrap

import pytest

from ssdlib.envs import ENVIRONMENTS
from ssdlib.training.conditions.config import (
    Config,
    config_from_dict,
    config_names,
    load_config,
)
from ssdlib.training.conditions.presets import PRESETS, get_preset

# The paper's supplementary Table 1 (basic influence), column by column:
# (entropy reg., lr init, lr end, influencers, beta, C in 1e6 steps, divergence, influencee reward);
# None where the table has "-".
TABLE_1 = {
    "cleanup_a3c": (0.00176, 0.00126, 0.000012, None, None, None, None, None),
    "cleanup_visible": (0.00176, 0.00126, 0.000012, 3, 0.0, None, None, None),
    "cleanup_influence": (0.000248, 0.00107, 0.000042, 1, 0.146, 140, "jsd", True),
    "harvest_a3c": (0.000687, 0.00136, 0.000028, None, None, None, None, None),
    "harvest_visible": (0.00184, 0.00215, 0.000013, 3, 0.0, None, None, None),
    "harvest_influence": (0.00025, 0.00107, 0.000042, 3, 0.224, 140, "pmi", False),
}


def test_packaged_config_names():
    names = config_names()
    assert set(TABLE_1) <= set(names)
    assert {"box_trapped_a3c", "box_trapped_influence", "cleanup_prosocial", "harvest_prosocial",
            "cleanup_inequity_aversion", "harvest_inequity_aversion", "cleanup_ppo"} <= set(names)


@pytest.mark.parametrize("name", config_names())
def test_every_packaged_config_loads(name):
    config = load_config(name)
    assert isinstance(config, Config)
    assert config.name == name
    assert config.env in ENVIRONMENTS
    assert config.env == name.split("_")[0] or name.startswith("box_trapped") and config.env == "box_trapped"
    assert config.optim.gamma == 0.99  # the paper's discount
    assert config.to_dict()["name"] == name
    # a config round-trips through its dict form
    assert config_from_dict(config.to_dict()) == config


@pytest.mark.parametrize("name", sorted(TABLE_1))
def test_table_1(name):
    entropy, lr_init, lr_end, influencers, beta, curriculum, divergence, influencee_reward = TABLE_1[name]
    c = load_config(name)
    assert c.num_agents == 5
    assert c.optim.algorithm == "a2c"  # the paper trains with A3C
    assert c.optim.entropy_coef == pytest.approx(entropy, rel=1e-12)
    assert c.optim.lr_init == pytest.approx(lr_init, rel=1e-12)
    assert c.optim.lr_end == pytest.approx(lr_end, rel=1e-12)
    if influencers is None:  # A3C baseline: no action inputs, extrinsic reward only
        assert not c.model.action_inputs
        assert c.model.influencers == 0
        assert c.reward.scheme == "extrinsic"
    else:
        assert c.model.action_inputs
        assert c.model.influencers == influencers
    if beta == 0.0:  # visible-actions baseline: the influence architecture, no influence reward
        assert c.reward.scheme == "extrinsic"
        assert c.reward.influence_weight == 0.0
    if divergence is not None:
        assert c.reward.scheme == "influence"
        assert c.reward.extrinsic_weight == 1.0
        assert c.reward.influence_weight == pytest.approx(beta, rel=1e-12)
        assert c.reward.curriculum_steps == pytest.approx(curriculum * 1e6, rel=1e-12)
        assert c.reward.divergence == divergence
        assert c.reward.influencee_reward is influencee_reward


def test_other_baselines():
    for env in ("cleanup", "harvest"):
        prosocial = load_config(f"{env}_prosocial")
        assert prosocial.reward.scheme == "prosocial"
        assert prosocial.reward.prosocial_eta == pytest.approx(0.85)  # the paper's best eta
        assert load_config(f"{env}_inequity_aversion").reward.scheme == "inequity_aversion"
    assert load_config("cleanup_ppo").optim.algorithm == "ppo"
    boxed = load_config("box_trapped_influence")
    assert boxed.num_agents == 2 and boxed.model.influencers == 1 and boxed.reward.scheme == "influence"


def test_presets():
    assert set(PRESETS) >= {"smoke", "cpu", "gpu", "paper"}
    assert get_preset("paper").total_steps == 500_000_000
    assert get_preset("paper").scale == 1.0
    assert get_preset("smoke").scale == pytest.approx(1_600 / 5e8)


# ---------------------------------------------------------------------- malformed configs
VALID = """
name = "t"
env = "harvest"
num_agents = 3
"""


def write(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_minimal_config(tmp_path):
    config = load_config(write(tmp_path, VALID))
    assert config.env == "harvest" and config.num_agents == 3 and config.reward.scheme == "extrinsic"


@pytest.mark.parametrize(
    "text, field",
    [
        (VALID + "foo = 1\n", "foo"),
        (VALID + "[reward]\nbetaa = 0.1\n", "reward.betaa"),
        (VALID + "[model]\ninfluencer = 1\n", "model.influencer"),
        (VALID + "[optim]\nlr_init = \"x\"\n", "optim.lr_init"),
        (VALID + "[optim]\nrollout_length = true\n", "optim.rollout_length"),
        (VALID + "[optim]\nrollout_length = 1.5\n", "optim.rollout_length"),
        ('name = "t"\nenv = "harvest"\nnum_agents = true\n', "num_agents"),
        (VALID + "[model]\naction_inputs = 1\n", "model.action_inputs"),
        (VALID + "model = 3\n", "model"),
        ('name = "t"\nnum_agents = 3\n', "env"),
        ('env = "harvest"\n', "name"),
        ('name = "t"\nenv = "chess"\n', "chess"),
        (VALID + "[env_options]\nweather = \"rain\"\n", "weather"),
        (VALID + "[reward]\ndivergence = \"wasserstein\"\n", "reward.divergence"),
        (VALID + "[model]\naction_inputs = true\n[reward]\nscheme = \"influence\"\n", "model.influencers"),
        (VALID + "[model]\naction_inputs = true\ninfluencers = 3\n", "model.influencers"),
        (VALID + "[model]\naction_inputs = true\ninfluencers = 5\n", "model.influencers"),
        (VALID + "[reward]\nscheme = \"selfless\"\n", "reward.scheme"),
        (VALID + "[optim]\nlr_init = -0.001\n", "optim.lr_init"),
        (VALID + "[optim]\nlr_end = 0.0\n", "optim.lr_end"),
        (VALID + "[optim]\nalgorithm = \"sgd\"\n", "optim.algorithm"),
        (VALID + "[optim]\ngamma = 1.5\n", "optim.gamma"),
        (VALID + "[optim]\nentropy_coef = -1.0\n", "optim.entropy_coef"),
        (VALID + "[reward]\ncurriculum_steps = -5.0\n", "reward.curriculum_steps"),
        ('name = "t"\nenv = "harvest"\nnum_agents = 0\n', "num_agents"),
    ],
)
def test_malformed_config_names_the_field(tmp_path, text, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        load_config(write(tmp_path, text))


def test_unknown_env_named_in_dict_config():
    with pytest.raises(ValueError, match="'env'") as error:
        config_from_dict({"name": "t", "env": "chess"})
    assert "chess" in str(error.value)


def test_invalid_toml(tmp_path):
    path = write(tmp_path, 'name = "t"\nenv = \n')
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(path)


def test_missing_file_and_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="no_such.toml"):
        load_config(tmp_path / "no_such.toml")
    with pytest.raises(ValueError, match="cleanup_influenz"):
        load_config("cleanup_influenz")
    with pytest.raises(ValueError, match="humongous"):
        get_preset("humongous")


def test_presets_resolve_per_game_and_record_only_resolved_presets() -> None:
    cpu = get_preset("cpu")
    assert get_preset("cpu", "cleanup").total_steps == 320_000 == get_preset("cpu", "harvest").total_steps
    box = get_preset("cpu", "box_trapped")
    assert box.total_steps == 2_000_000 and box.steps_by_env == () and box.num_envs == cpu.num_envs
    assert box.scale == pytest.approx(2e6 / 5e8)
    assert box.record() == {"name": "cpu", "total_steps": 2_000_000, "num_envs": 32, "horizon": None,
                            "checkpoint_seconds": 60.0}
    with pytest.raises(ValueError, match="'cpu' is not resolved"):
        cpu.record()
    assert get_preset("paper", "box_trapped") == get_preset("paper")  # no overrides: unchanged
