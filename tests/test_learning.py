"""End-to-end learning: on a tiny Harvest map one agent learns quickly to stop paying for
FIRE (-1 each, no one to hit) and to walk to the apples, so its return clearly rises."""

import numpy as np

from ssdlib.training.conditions.config import config_from_dict
from ssdlib.training.conditions.presets import Preset
from ssdlib.training.trainer import Trainer

MAP = """
@@@@@@@@@
@P      @
@       @
@    AAA@
@    AAA@
@    AAA@
@@@@@@@@@
"""


def test_return_rises_on_tiny_harvest():
    config = config_from_dict({
        "name": "tiny_harvest_learning",
        "env": "harvest",
        "num_agents": 1,
        "env_options": {"map": MAP, "horizon": 50},
        "optim": {"lr_init": 0.01, "lr_end": 0.01, "entropy_coef": 0.01, "rollout_length": 25, "gamma": 0.95},
    })
    trainer = Trainer(config, Preset("learning", total_steps=10**9, num_envs=8, horizon=50), seeds=[0])
    for _ in range(40):  # 20 episodes of 50 steps in each of 8 games
        trainer.train_iteration()
    rows = trainer.episodes
    assert len(rows) == 20 and [r["episode"] for r in rows] == list(range(20))
    returns = np.array([r["return_0"] for r in rows])
    apples = np.array([r["apples_0"] for r in rows])
    fire = np.array([r["fire_0"] for r in rows])
    np.testing.assert_allclose(returns, apples - fire)  # one agent: no beams hit anyone
    first, last = returns[:3].mean(), returns[-5:].mean()
    # a near-uniform policy fires 1/8 of the time (about -6 per episode); a trained one does not
    assert first < -1.0
    assert last > first + 3.0, f"return did not rise: {returns.round(2)}"
    assert last > 1.0
    assert fire[-5:].mean() < 0.5 * fire[:3].mean()
    assert apples[-5:].mean() > apples[:3].mean() + 0.25
