"""Apples, Harvest regrowth, Cleanup waste and apples, Box Trapped, horizons (spec 1, 3, 6, 7, 9, 10).

Statistical checks run many games of one scenario for a single step and compare counts with
the spec's probabilities within a binomial tolerance (5 standard deviations); seeds are fixed,
so the outcomes are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssdlib.envs import load_map, make_env
from ssdlib.envs.cleanup import apple_spawn_probability
from ssdlib.envs.geometry import MOVE_DOWN, MOVE_LEFT, MOVE_RIGHT, MOVE_UP, OPEN, STAY, TURN_CW
from ssdlib.envs.harvest import neighbourhood_offsets

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


WALL_RGB = (180, 180, 180)
BLACK = (0, 0, 0)


def assert_binomial(count: int, trials: int, p: float, sigmas: float = 4.5) -> None:
    sd = math.sqrt(trials * p * (1 - p))
    assert abs(count - trials * p) <= sigmas * sd + 1, (count, trials * p, p)


def place(env, cells, facings=None) -> None:
    b, w = env.num_envs, env.width
    env.state.pos = torch.tensor([r * w + c for r, c in cells], dtype=torch.long).expand(b, -1).clone()
    if facings is not None:
        env.state.orient = torch.tensor(facings, dtype=torch.long).expand(b, -1).clone()


def act(env, actions):
    return env.step(torch.tensor(actions, dtype=torch.long).expand(env.num_envs, -1).clone())


def flat(env, r: int, c: int) -> int:
    return r * env.width + c


def grid(env, cells) -> torch.Tensor:
    """bool [B, H*W+2], True on `cells` in every game."""
    out = torch.zeros(env.num_envs, env.height * env.width + 2, dtype=torch.bool)
    for r, c in cells:
        out[:, flat(env, r, c)] = True
    return out


def mask_of(env, chars: str) -> torch.Tensor:
    """bool [H*W] of the map cells holding any of `chars`."""
    return torch.from_numpy(env.map.mask(chars).ravel())


def hw(env) -> int:
    return env.height * env.width


# ---------------------------------------------------------------------------- packaged maps
def test_packaged_reference_maps_match_spec_counts() -> None:
    cleanup = load_map("cleanup")
    assert (cleanup.height, cleanup.width) == (25, 18)
    text = "".join(cleanup.rows)
    assert {ch: text.count(ch) for ch in "@HRSBP "} == {
        "@": 82, "H": 56, "R": 63, "S": 12, "B": 103, "P": 10, " ": 124,
    }
    harvest = load_map("harvest")
    assert (harvest.height, harvest.width) == (16, 38)
    text = "".join(harvest.rows)
    assert {ch: text.count(ch) for ch in "@AP "} == {"@": 104, "A": 155, "P": 20, " ": 329}


# ---------------------------------------------------------------------------- apples and rewards
HARVEST_SMALL = "\n".join(["@@@@@@@", "@P A  @", "@  A  @", "@PAAA @", "@@@@@@@"]) + "\n"


def test_apple_consumption_reward_and_removal() -> None:
    env = make_env("harvest", num_envs=2, num_agents=2, map=HARVEST_SMALL, seed=0)
    env.reset()
    assert env.num_apples().tolist() == [5, 5]
    place(env, [(3, 1), (1, 1)], [RIGHT, RIGHT])
    # agent 0 steps onto the apple at (3,2); agent 1 steps to the floor cell (1,2)
    _, rewards, _, info = act(env, [MOVE_UP, MOVE_UP])
    assert rewards.tolist() == [[1.0, 0.0]] * 2
    assert info["apples"].tolist() == [[1, 0]] * 2
    assert not env.state.apples[:, flat(env, 3, 2)].any()
    assert env.num_apples().tolist() == [4, 4]
    # staying on the now empty cell earns nothing; stepping on the next apple earns +1 again
    _, rewards, _, info = act(env, [STAY, STAY])
    assert rewards[:, 0].tolist() == [0.0, 0.0]
    _, rewards, _, info = act(env, [MOVE_UP, MOVE_UP])
    assert rewards.tolist() == [[1.0, 1.0]] * 2  # (3,3) and (1,3) both hold apples
    assert info["apples"].tolist() == [[1, 1]] * 2


def test_cleanup_apple_consumption() -> None:
    env = make_env("cleanup", num_envs=1, num_agents=2, map="mini_cleanup", seed=0)
    env.reset()
    place(env, [(1, 2), (4, 4)], [DOWN, UP])
    env.state.apples = grid(env, [(2, 3), (3, 3)])
    # agent 0 at (1,2) facing DOWN: MOVE_LEFT is (0,+1) -> (1,3); then forward twice over apples
    _, rewards, _, _ = act(env, [MOVE_LEFT, STAY])
    assert rewards.tolist() == [[0.0, 0.0]]
    for cell in [(2, 3), (3, 3)]:
        _, rewards, _, info = act(env, [MOVE_UP, STAY])
        assert rewards.tolist() == [[1.0, 0.0]] and info["apples"].tolist() == [[1, 0]]
        assert not env.state.apples[0, flat(env, *cell)]
    assert env.num_apples().item() == 0  # density 0.5 >= 0.4: nothing grows back


# ---------------------------------------------------------------------------- Harvest regrowth
# 7 x 7: a 5 x 5 field of apple cells around CENTRE, the agent's spawn point in a corner
HARVEST_FIELD = "\n".join(["@" * 7, "@PAAAA@"] + ["@AAAAA@"] * 4 + ["@" * 7]) + "\n"
CENTRE = (3, 3)
SQUARE_RING = [(-1, 0), (0, 1), (1, 0), (0, -1), (-1, -1), (1, 1), (-1, 1), (1, -1)]
P = [0.0, 0.005, 0.02, 0.05]


def regrowth_rate(neighbours, num_envs: int, neighbourhood: str = "square", seed: int = 0):
    """Apples only at CENTRE + neighbours; the fraction of games in which CENTRE regrows."""
    env = make_env("harvest", num_envs=num_envs, num_agents=1, map=HARVEST_FIELD, seed=seed,
                   neighbourhood=neighbourhood)
    env.reset()
    place(env, [(1, 1)], [UP])
    cells = [(CENTRE[0] + dr, CENTRE[1] + dc) for dr, dc in neighbours]
    env.state.apples = grid(env, cells)
    _, rewards, _, _ = act(env, [STAY])
    assert env.state.apples[:, [flat(env, *c) for c in cells]].all(), "apples never disappear by themselves"
    assert not rewards.any()
    return int(env.state.apples[:, flat(env, *CENTRE)].sum())


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8])
def test_harvest_regrowth_probabilities_square(n: int) -> None:
    b = 50000
    count = regrowth_rate(SQUARE_RING[:n], b, seed=n)
    p = P[min(n, 3)]
    if p == 0:
        assert count == 0
    else:
        assert_binomial(count, b, p)


def test_harvest_neighbourhood_offsets() -> None:
    square = {tuple(x) for x in neighbourhood_offsets("square").tolist()}
    disc = {tuple(x) for x in neighbourhood_offsets("disc").tolist()}
    assert square == {(j, k) for j in (-1, 0, 1) for k in (-1, 0, 1)}
    assert len(disc) == 13
    assert disc == {(j, k) for j in range(-2, 3) for k in range(-2, 3) if j * j + k * k <= 4}
    with pytest.raises(ValueError, match="hexagon"):
        neighbourhood_offsets("hexagon")


def test_harvest_square_vs_disc_neighbourhood() -> None:
    b = 20000
    far = [(2, 0), (0, 2), (-2, 0)]  # j^2 + k^2 = 4: in the disc only
    assert regrowth_rate(far, b, "square", seed=1) == 0
    assert_binomial(regrowth_rate(far, b, "disc", seed=2), b, P[3])
    assert_binomial(regrowth_rate(far[:1], b, "disc", seed=3), b, P[1])
    knight = [(2, 1), (1, 2), (-2, -1), (-1, -2)]  # j^2 + k^2 = 5: in neither
    assert regrowth_rate(knight, b, "disc", seed=4) == 0
    assert regrowth_rate(knight, b, "square", seed=5) == 0
    diagonal = [(1, 1), (-1, -1)]  # j^2 + k^2 = 2: in both
    assert_binomial(regrowth_rate(diagonal, b, "square", seed=6), b, P[2])
    assert_binomial(regrowth_rate(diagonal, b, "disc", seed=7), b, P[2])
    # mixed: two diagonal neighbours + two at distance 2 -> 2 in the square, 4 (capped 3) in the disc
    mixed = diagonal + [(2, 0), (0, -2)]
    assert_binomial(regrowth_rate(mixed, b, "square", seed=8), b, P[2])
    assert_binomial(regrowth_rate(mixed, b, "disc", seed=9), b, P[3])


def test_harvest_regrowth_is_synchronous() -> None:
    """Neighbour counts use the map before this step's regrowth: with a single apple, a cell
    two steps away (n = 0 before the step) never grows in the same step as its neighbour."""
    b = 20000
    env = make_env("harvest", num_envs=b, num_agents=1, map=HARVEST_FIELD, seed=3)
    env.reset()
    place(env, [(1, 1)], [UP])
    env.state.apples = grid(env, [CENTRE])
    act(env, [STAY])
    ring2 = [(CENTRE[0] + 2, CENTRE[1] + k) for k in range(-2, 3)]
    assert not env.state.apples[:, [flat(env, *c) for c in ring2]].any()
    # the eight neighbours each had n = 1: each grows with p = 0.005
    ring1 = [flat(env, CENTRE[0] + dr, CENTRE[1] + dc) for dr, dc in SQUARE_RING]
    assert_binomial(int(env.state.apples[:, ring1].sum()), 8 * b, P[1])


def test_no_regrowth_under_an_agent() -> None:
    b = 500
    env = make_env("harvest", num_envs=b, num_agents=1, map=HARVEST_FIELD, seed=4)
    env.reset()
    place(env, [CENTRE], [UP])
    env.state.apples = grid(env, [(CENTRE[0] + dr, CENTRE[1] + dc) for dr, dc in SQUARE_RING])
    for _ in range(30):
        _, rewards, _, _ = act(env, [STAY])
        assert not env.state.apples[:, flat(env, *CENTRE)].any()
        assert not rewards.any()
    # once the agent leaves, the cell regrows in most games (1 - 0.95^30 ~ 0.79)
    act(env, [MOVE_UP])
    for _ in range(29):
        act(env, [STAY])
    assert env.state.apples[:, flat(env, *CENTRE)].float().mean().item() > 0.6


# two patches of apple cells (columns 1..3 and 7..9) separated by three floor columns: farther
# apart than either neighbourhood reaches
TWO_PATCHES = "\n".join(["@" * 11, "@AAA   AAA@", "@AAA   AAA@", "@AAA   AAA@", "@AAAP  AAA@", "@" * 11]) + "\n"


@pytest.mark.parametrize("neighbourhood", ["square", "disc"])
def test_dead_patches_stay_dead(neighbourhood: str) -> None:
    b = 200
    env = make_env("harvest", num_envs=b, num_agents=1, map=TWO_PATCHES, seed=5, neighbourhood=neighbourhood)
    env.reset()
    place(env, [(4, 4)], [UP])
    apples = env.state.apples.clone()
    left = [flat(env, r, c) for r in range(1, 5) for c in range(1, 4)]
    right = [flat(env, r, c) for r in range(1, 5) for c in range(7, 10)]
    apples[:, left] = False  # the left patch is dead
    apples[:, right[:6]] = False  # the right patch is half eaten but alive
    env.state.apples = apples
    for _ in range(60):
        act(env, [STAY])
        assert not env.state.apples[:, left].any(), "a patch with no apples around stays dead"
    assert env.state.apples[:, right[:6]].any(), "the live patch does regrow"
    # a field with no apples at all stays empty for good
    env.state.apples = torch.zeros_like(env.state.apples)
    for _ in range(30):
        act(env, [STAY])
    assert env.num_apples().sum().item() == 0


def test_harvest_reset_apples_on_every_a_cell() -> None:
    env = make_env("harvest", num_envs=3, seed=0)
    env.reset()
    assert env.num_apples().tolist() == [155] * 3
    assert torch.equal(env.state.apples[0, : hw(env)], mask_of(env, "A"))
    assert not env.state.waste[:, : hw(env)].any()


# ---------------------------------------------------------------------------- Cleanup
def test_cleanup_initial_state() -> None:
    env = make_env("cleanup", num_envs=4, seed=0)
    env.reset()
    assert env.potential_waste_area == 119
    assert env.num_waste().tolist() == [56] * 4
    assert torch.equal(env.state.waste[:, : hw(env)], mask_of(env, "H").expand(4, -1))
    assert env.num_apples().tolist() == [0] * 4
    assert env.waste_density()[0].item() == pytest.approx(56 / 119, abs=1e-6)


def test_cleanup_nothing_spawns_above_threshold() -> None:
    env = make_env("cleanup", num_envs=20, seed=1)
    env.reset()
    for _ in range(60):
        act(env, [STAY] * 5)
    assert env.num_waste().tolist() == [56] * 20
    assert env.num_apples().tolist() == [0] * 20
    # at 48 waste cells (density 0.403) nothing spawns either
    h_cells = mask_of(env, "H").nonzero()[:, 0]
    waste = torch.zeros_like(env.state.waste)
    waste[:, h_cells[:48]] = True
    env.state.waste = waste
    for _ in range(60):
        act(env, [STAY] * 5)
    assert env.num_waste().tolist() == [48] * 20
    assert env.num_apples().tolist() == [0] * 20


THRESHOLD_MAP = "\n".join(["@@@@@@@", "@HHRRR@", "@PBBBB@", "@PBBBB@", "@@@@@@@"]) + "\n"


def test_cleanup_density_exactly_at_threshold_spawns_nothing() -> None:
    env = make_env("cleanup", num_envs=200, num_agents=1, map=THRESHOLD_MAP, seed=2)
    env.reset()
    assert env.potential_waste_area == 5
    for _ in range(20):
        act(env, [STAY])
    assert env.num_waste().tolist() == [2] * 200  # 2/5 = 0.4: depleted
    assert env.num_apples().sum().item() == 0
    # one cleaned cell (density 0.2): both spawn again
    waste = env.state.waste.clone()
    waste[:, flat(env, 1, 1)] = False
    env.state.waste = waste
    act(env, [STAY])
    assert (env.num_waste() <= 2).all() and (env.num_waste() == 2).float().mean() > 0.7


def test_apple_spawn_probability_formula() -> None:
    d = torch.tensor([-0.1, 0.0, 0.1, 0.2, 0.3, 0.399, 0.4, 0.47, 1.0])
    got = apple_spawn_probability(d)
    want = [0.05, 0.05, 0.0375, 0.025, 0.0125, 0.05 * (1 - 0.399 / 0.4), 0.0, 0.0, 0.0]
    assert got.tolist() == pytest.approx(want, abs=1e-7)


@pytest.mark.parametrize("num_waste", [0, 24, 40])
def test_cleanup_apple_spawn_rate(num_waste: int) -> None:
    b = 300
    env = make_env("cleanup", num_envs=b, seed=10 + num_waste)
    env.reset()
    h_cells = mask_of(env, "H").nonzero()[:, 0]
    waste = torch.zeros_like(env.state.waste)
    waste[:, h_cells[:num_waste]] = True
    env.state.waste = waste
    act(env, [STAY] * 5)
    density = num_waste / 119
    p = 0.05 * (1 - density / 0.4)
    apple_cells = mask_of(env, "B")
    assert not env.state.apples[:, : hw(env)][:, ~apple_cells].any(), "apples only on B cells"
    count = int(env.state.apples[:, : hw(env)][:, apple_cells].sum())
    assert_binomial(count, b * 103, p)  # no agent stands on a B cell at reset


def test_cleanup_no_apple_under_an_agent() -> None:
    env = make_env("cleanup", num_envs=200, num_agents=2, map="cleanup_prob", seed=3)
    env.reset()
    place(env, [(2, 4), (3, 4)], [UP, UP])  # two of the three B cells are occupied
    for _ in range(40):
        env.state.waste = torch.zeros_like(env.state.waste)  # keep density 0: p = 0.05
        _, rewards, _, _ = act(env, [STAY, STAY])
        assert not env.state.apples[:, [flat(env, 2, 4), flat(env, 3, 4)]].any()
        assert not rewards.any()
    assert env.state.apples[:, flat(env, 4, 4)].float().mean() > 0.6  # the free B cell does grow


def test_cleanup_at_most_one_new_waste_per_step() -> None:
    b = 50
    env = make_env("cleanup", num_envs=b, seed=4)
    env.reset()
    env.state.waste = torch.zeros_like(env.state.waste)
    last = env.num_waste()
    for _ in range(20):
        act(env, [STAY] * 5)
        now = env.num_waste()
        assert torch.equal(now - last, torch.ones(b, dtype=torch.long))  # 119 clean cells: p(none) = 2^-119
        last = now


def test_cleanup_new_waste_is_uniform_over_clean_river_cells() -> None:
    b = 4000
    env = make_env("cleanup", num_envs=b, seed=5)
    env.reset()
    env.state.waste = torch.zeros_like(env.state.waste)
    act(env, [STAY] * 5)
    assert env.num_waste().tolist() == [1] * b
    waste = env.state.waste[:, : hw(env)]
    assert not waste[:, ~mask_of(env, "HR")].any()
    assert_binomial(int(waste[:, mask_of(env, "H")].sum()), b, 56 / 119)
    # and never on an already-polluted cell: with 40 H cells polluted, new waste lands elsewhere
    env.reset()
    h_cells = mask_of(env, "H").nonzero()[:, 0]
    base = torch.zeros_like(env.state.waste)
    base[:, h_cells[:40]] = True
    env.state.waste = base.clone()
    act(env, [STAY] * 5)
    new = env.state.waste[:, : hw(env)] & ~base[:, : hw(env)]
    assert torch.equal(new.sum(1), torch.ones(b, dtype=torch.long))
    assert env.state.waste[:, h_cells[:40]].all()
    assert_binomial(int(new[:, mask_of(env, "H")].sum()), b, 16 / 79)


def test_cleanup_two_river_cells_spawn_rate() -> None:
    """mini_cleanup has 2 river cells: with both clean, P(new waste) = 1 - 0.5^2."""
    b = 4000
    env = make_env("cleanup", num_envs=b, num_agents=2, map="mini_cleanup", seed=6)
    env.reset()
    assert env.potential_waste_area == 2
    place(env, [(1, 2), (4, 4)], [UP, UP])
    env.state.waste = torch.zeros_like(env.state.waste)
    act(env, [STAY, STAY])
    spawned = env.num_waste()
    assert spawned.max().item() <= 1
    assert_binomial(int(spawned.sum()), b, 0.75)
    assert_binomial(int(env.state.waste[:, flat(env, 2, 1)].sum()), b, 0.375)


def test_cleanup_spawning_uses_the_density_after_beams() -> None:
    """48 waste cells (density 0.403, depleted); cleaning one in this step brings the density
    to 47/119 < 0.4 before spawning, so a new waste cell appears in the same step."""
    b = 50
    env = make_env("cleanup", num_envs=b, num_agents=1, seed=11)
    env.reset()
    h_cells = mask_of(env, "H").nonzero()[:, 0]
    waste = torch.zeros_like(env.state.waste)
    waste[:, h_cells[:48]] = True  # row 2's six H cells are among them
    env.state.waste = waste
    assert env.map.rows[2][1:7] == "HHHHHH" and env.map.rows[2][7:9] == "  "
    place(env, [(2, 8)], [LEFT])  # the centre ray reaches (2,7) then the waste at (2,6)
    _, _, _, info = act(env, [8])  # CLEAN
    assert info["cleaned"].tolist() == [[1]] * b
    assert env.num_waste().tolist() == [48] * b


def test_cleanup_waste_climbs_back_to_48_and_stops() -> None:
    b = 20
    env = make_env("cleanup", num_envs=b, seed=7)
    env.reset()
    h_cells = mask_of(env, "H").nonzero()[:, 0]
    waste = torch.zeros_like(env.state.waste)
    waste[:, h_cells[:30]] = True
    env.state.waste = waste
    history = []
    for _ in range(40):
        act(env, [STAY] * 5)
        history.append(env.num_waste())
    history = torch.stack(history)  # [T, B]
    steps = history.diff(dim=0)
    assert ((steps == 0) | (steps == 1)).all()
    assert history[-1].tolist() == [48] * b
    assert history.max().item() == 48
    assert env.waste_density()[0].item() == pytest.approx(48 / 119, abs=1e-6)
    # steady state: apples stop too (density >= 0.4)
    apples_then = env.num_apples().clone()
    for _ in range(20):
        act(env, [STAY] * 5)
    assert env.num_waste().tolist() == [48] * b
    assert torch.equal(env.num_apples(), apples_then)


def test_cleanup_waste_only_on_river_and_under_agents_never_on_stream() -> None:
    b = 400
    env = make_env("cleanup", num_envs=b, num_agents=2, map="mini_cleanup", seed=8)
    env.reset()
    place(env, [(2, 1), (3, 1)], [UP, UP])  # both river cells are occupied
    env.state.waste = torch.zeros_like(env.state.waste)
    act(env, [STAY, STAY])
    under = env.state.waste[:, [flat(env, 2, 1), flat(env, 3, 1)]].any(1)
    assert_binomial(int(under.sum()), b, 0.75)
    assert not env.state.waste[:, flat(env, 4, 1)].any()  # the stream


def test_cleanup_stream_never_gets_waste_full_map() -> None:
    b = 20
    env = make_env("cleanup", num_envs=b, seed=9)
    env.reset()
    env.state.waste = torch.zeros_like(env.state.waste)
    river = mask_of(env, "HR")
    stream = mask_of(env, "S")
    for _ in range(60):
        act(env, [STAY] * 5)
        waste = env.state.waste[:, : hw(env)]
        assert not waste[:, ~river].any()
        assert not waste[:, stream].any()
    assert env.num_waste().tolist() == [48] * b


# ---------------------------------------------------------------------------- Box Trapped
BOX = [(4, 4), (4, 5), (4, 6), (5, 4), (5, 6), (6, 4), (6, 5), (6, 6)]
TRAPPED = (5, 5)


def box_env(num_envs: int = 1, seed: int = 0, **kw):
    env = make_env("box_trapped", num_envs=num_envs, seed=seed, **kw)
    env.reset()
    return env


def test_box_trapped_reset() -> None:
    env = box_env(num_envs=3)
    assert env.num_agents == 2 and env.num_actions == 8 and env.horizon == 100
    assert env.state.pos.tolist() == [[flat(env, 3, 3), flat(env, *TRAPPED)]] * 3
    assert not env.state.box_open.any()
    assert env.num_apples().tolist() == [10] * 3
    rgb = env.render(0)
    for cell in BOX:
        assert tuple(rgb[cell]) == WALL_RGB


@pytest.mark.parametrize("facing", [UP, RIGHT, DOWN, LEFT])
def test_box_walls_block_the_trapped_agent(facing: int) -> None:
    env = box_env(num_envs=4)
    env.state.orient = torch.tensor([[UP, facing]] * 4)
    env.step(torch.tensor([[STAY, a] for a in (MOVE_LEFT, MOVE_RIGHT, MOVE_UP, MOVE_DOWN)]))
    assert env.state.pos[:, 1].tolist() == [flat(env, *TRAPPED)] * 4
    # the trapped agent sees the eight box walls around itself
    obs = env.observe()
    for i, j in [(6, 6), (6, 7), (6, 8), (7, 6), (7, 8), (8, 6), (8, 7), (8, 8)]:
        assert tuple(obs.rgb()[0, 1, i, j].tolist()) == WALL_RGB


def test_box_walls_block_the_opener_from_outside() -> None:
    env = box_env()
    place(env, [(3, 4), TRAPPED], [DOWN, UP])
    act(env, [MOVE_UP, STAY])
    assert env.state.pos[0, 0].item() == flat(env, 3, 4)


def test_open_from_anywhere_removes_all_box_walls() -> None:
    env = box_env(num_envs=2)
    place(env, [(8, 8), TRAPPED], [UP, UP])  # far from the box
    _, rewards, _, info = act(env, [OPEN, STAY])
    assert env.state.box_open.tolist() == [True, True]
    assert info["open"].tolist() == [[1, 0]] * 2
    assert info["fire"].tolist() == [[0, 0]] * 2  # OPEN is not a penalty beam
    assert rewards.tolist() == [[0.0, 0.0]] * 2
    assert not env.state.beams[:, : hw(env)].any()
    rgb = env.render(1)
    for cell in BOX:
        assert tuple(rgb[cell]) == BLACK
    # the trapped agent can now walk out through any former box wall
    place(env, [(8, 8), TRAPPED], [UP, LEFT])
    act(env, [STAY, MOVE_UP])
    assert env.state.pos[:, 1].tolist() == [flat(env, 5, 4)] * 2
    act(env, [STAY, MOVE_UP])
    assert env.state.pos[:, 1].tolist() == [flat(env, 5, 3)] * 2


@pytest.mark.parametrize("facing", [UP, RIGHT, DOWN, LEFT])
def test_open_applies_before_moves_in_the_same_step(facing: int) -> None:
    env = box_env()
    place(env, [(3, 3), TRAPPED], [UP, facing])
    act(env, [OPEN, MOVE_UP])
    d = [(-1, 0), (0, 1), (1, 0), (0, -1)][facing]
    assert env.state.pos[0, 1].item() == flat(env, TRAPPED[0] + d[0], TRAPPED[1] + d[1])


def test_open_by_trapped_agent_or_when_open_does_nothing() -> None:
    env = box_env()
    _, _, _, info = act(env, [STAY, OPEN])
    assert not env.state.box_open.any()
    assert info["open"].tolist() == [[0, 0]]
    place(env, [(3, 3), TRAPPED], [UP, UP])
    act(env, [STAY, MOVE_UP])
    assert env.state.pos[0, 1].item() == flat(env, *TRAPPED)
    assert tuple(env.render(0)[4, 5]) == WALL_RGB
    _, _, _, info = act(env, [OPEN, STAY])
    assert info["open"].tolist() == [[1, 0]]
    _, rewards, _, info = act(env, [OPEN, OPEN])
    assert info["open"].tolist() == [[0, 0]]
    assert env.state.box_open.tolist() == [True]
    assert rewards.tolist() == [[0.0, 0.0]]


def test_box_trapped_apple_regrowth_after_five_steps() -> None:
    env = box_env()
    place(env, [(2, 1), TRAPPED], [UP, UP])
    apple = flat(env, 1, 1)
    _, rewards, _, info = act(env, [MOVE_UP, STAY])  # step t = 1: eat
    assert rewards.tolist() == [[1.0, 0.0]] and info["apples"].tolist() == [[1, 0]]
    assert not env.state.apples[0, apple]
    _, rewards, _, _ = act(env, [MOVE_DOWN, STAY])  # step 2: leave the cell
    history = [bool(env.state.apples[0, apple])]
    for _ in range(4):  # steps 3..6
        act(env, [STAY, STAY])
        history.append(bool(env.state.apples[0, apple]))
    assert history == [False, False, False, False, True], "back at the end of step t + 5"
    assert env.num_apples().item() == 10
    _, rewards, _, _ = act(env, [MOVE_UP, STAY])  # inexhaustible: eat it again
    assert rewards.tolist() == [[1.0, 0.0]]


def test_box_trapped_apple_regrows_under_a_standing_agent() -> None:
    env = box_env()
    place(env, [(2, 1), TRAPPED], [UP, UP])
    act(env, [MOVE_UP, STAY])  # eat in step 1 and keep standing on the cell
    rewards_seen = []
    for _ in range(6):  # steps 2..7
        _, rewards, _, _ = act(env, [STAY, STAY])
        rewards_seen.append(rewards[0, 0].item())
    # back at the end of step 6, eaten in step 7
    assert rewards_seen == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def test_box_trapped_horizon_100_and_reset() -> None:
    env = box_env(num_envs=2)
    place(env, [(1, 1), TRAPPED], [UP, UP])  # stands on an apple cell: eats at step 1
    for t in range(1, 100):
        _, _, done, _ = act(env, [OPEN if t == 1 else TURN_CW, STAY])
        assert not done.any(), t
    assert env.state.box_open.all()
    assert env.num_apples().tolist() == [9, 9]  # eaten in steps 1, 7, ..., 97; back after 102
    obs, _, done, _ = act(env, [STAY, STAY])
    assert done.tolist() == [True, True]
    assert not env.state.box_open.any()
    assert env.state.pos.tolist() == [[flat(env, 3, 3), flat(env, *TRAPPED)]] * 2
    assert env.num_apples().tolist() == [10, 10]
    assert (obs.actions == STAY).all()
    _, _, done, _ = act(env, [STAY, STAY])
    assert not done.any()


# ---------------------------------------------------------------------------- horizons and reset
def test_default_horizons() -> None:
    assert make_env("cleanup", map="mini_cleanup", num_agents=2).horizon == 1000
    assert make_env("harvest", map="mini_harvest", num_agents=2).horizon == 1000
    assert make_env("box_trapped").horizon == 100


def test_done_at_step_1000_with_default_horizon() -> None:
    env = make_env("cleanup", num_envs=2, num_agents=2, map="mini_cleanup", seed=0)
    env.reset()
    gen = torch.Generator().manual_seed(0)
    dones = []
    for _ in range(1001):
        _, _, done, _ = env.step(torch.randint(0, 9, (2, 2), generator=gen))
        dones.append(done.clone())
    dones = torch.stack(dones)
    assert dones[999].tolist() == [True, True]
    assert not dones[:999].any() and not dones[1000].any()


def test_horizon_option_resets_state() -> None:
    env = make_env("cleanup", num_envs=3, seed=1, horizon=5)
    env.reset()
    place(env, [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5)], [UP] * 5)
    env.state.waste = torch.zeros_like(env.state.waste)
    for t in range(4):
        _, _, done, _ = act(env, [STAY] * 5)
        assert not done.any()
    assert env.num_waste().tolist() == [4] * 3
    obs, _, done, _ = act(env, [TURN_CW] * 5)
    assert done.tolist() == [True] * 3
    assert env.num_waste().tolist() == [56] * 3
    assert env.num_apples().tolist() == [0] * 3
    spawn = set(np.flatnonzero(env.map.mask("P").ravel()).tolist())
    for g in range(3):
        pos = env.state.pos[g].tolist()
        assert len(set(pos)) == 5 and set(pos) <= spawn
    assert (obs.actions == STAY).all(), "the others' actions are STAY after a reset"
    assert not env.state.beams[:, : hw(env)].any()
    # a second episode of the same length
    for t in range(4):
        _, _, done, _ = act(env, [STAY] * 5)
        assert not done.any()
    _, _, done, _ = act(env, [STAY] * 5)
    assert done.all()


def test_harvest_horizon_restores_apples() -> None:
    env = make_env("harvest", num_envs=2, num_agents=2, map=HARVEST_SMALL, seed=2, horizon=3)
    env.reset()
    place(env, [(3, 1), (1, 1)], [RIGHT, RIGHT])
    act(env, [MOVE_UP, MOVE_UP])
    act(env, [MOVE_UP, MOVE_UP])
    assert (env.num_apples() < 5).all()
    _, _, done, _ = act(env, [STAY, STAY])
    assert done.all() and env.num_apples().tolist() == [5, 5]


def test_reset_spawn_points_are_uniform_and_distinct() -> None:
    b = 3000
    env = make_env("harvest", num_envs=b, num_agents=2, map="base_map_2", seed=3)
    env.reset()
    pos = env.state.pos
    assert (pos[:, 0] != pos[:, 1]).all()
    first = flat(env, 1, 2)
    assert_binomial(int((pos[:, 0] == first).sum()), b, 0.5)
    for f in range(4):
        assert_binomial(int((env.state.orient[:, 0] == f).sum()), b, 0.25)
