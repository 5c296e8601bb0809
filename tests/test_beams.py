"""Beams: geometry, walls, absorption, rewards, cleaning and processing order (spec section 5).

FIRE geometry uses Harvest on an inline 13x13 box (the spec's example map). Cleaning uses an
inline Cleanup map: a 13x13 test area of clean river (cols 0..12) beside a sealed reservoir of
121 waste cells (cols 12..24), so the waste density stays >= 0.4 and nothing spawns.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssdlib.envs import make_env
from ssdlib.envs import palette
from ssdlib.envs.geometry import CLEAN, FIRE, MOVE_DOWN, STAY

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


YELLOW = (255, 255, 0)
CYAN = (100, 255, 255)
BLACK = (0, 0, 0)
WALL_RGB = (180, 180, 180)
AGENT_RGB = [
    (0, 0, 255), (2, 81, 154), (204, 0, 204), (216, 30, 54), (254, 151, 0),
    (100, 255, 255), (99, 99, 255), (250, 204, 255), (238, 223, 16),
]

BOX13 = "\n".join(["@" * 13] + ["@" + "P" * 11 + "@"] * 11 + ["@" * 13]) + "\n"
CLEANUP_BOX = "\n".join(
    ["@" * 25]
    + ["@" + "P" * 11 + "@" + "H" * 11 + "@"]
    + ["@" + "R" * 11 + "@" + "H" * 11 + "@"] * 10
    + ["@" * 25]
) + "\n"


def fire_env(num_agents: int = 1, num_envs: int = 1, game_map: str = BOX13, seed: int = 0):
    env = make_env("harvest", num_envs=num_envs, num_agents=num_agents, map=game_map, seed=seed)
    env.reset()
    return env


def clean_env(num_agents: int = 1, num_envs: int = 1, seed: int = 0):
    env = make_env("cleanup", num_envs=num_envs, num_agents=num_agents, map=CLEANUP_BOX, seed=seed)
    env.reset()
    return env


def place(env, cells, facings) -> None:
    b, w = env.num_envs, env.width
    env.state.pos = torch.tensor([r * w + c for r, c in cells], dtype=torch.long).expand(b, -1).clone()
    env.state.orient = torch.tensor(facings, dtype=torch.long).expand(b, -1).clone()


def set_waste(env, cells, keep_reservoir: bool = True) -> None:
    """Waste exactly on `cells` of the test area (plus the reservoir) in every game."""
    waste = torch.zeros_like(env.state.waste)
    if keep_reservoir:
        waste[:, : env.height * env.width] = torch.from_numpy(env.map.mask("H").ravel())
    for r, c in cells:
        waste[:, r * env.width + c] = True
    env.state.waste = waste


def act(env, actions):
    return env.step(torch.tensor(actions, dtype=torch.long).expand(env.num_envs, -1).clone())


def beam_cells(env, game: int = 0, kind: int | None = None) -> set[tuple[int, int]]:
    beams = env.state.beams[game, : env.height * env.width].view(env.height, env.width)
    mask = beams > 0 if kind is None else beams == kind
    return {tuple(x) for x in mask.nonzero().tolist()}


def waste_at(env, r: int, c: int, game: int = 0) -> bool:
    return bool(env.state.waste[game, r * env.width + c])


def rotate(cells, times: int, centre=(6, 6)):
    """Rotate cells clockwise by 90 degrees `times` times around `centre` ((dr,dc) -> (dc,-dr))."""
    out = set()
    for r, c in cells:
        dr, dc = r - centre[0], c - centre[1]
        for _ in range(times):
            dr, dc = dc, -dr
        out.add((centre[0] + dr, centre[1] + dc))
    return out


# The spec's worked example: (6,6) facing UP covers column 6 rows 5..1 and columns 5, 7 rows 6..2.
SPEC_UP = {(r, 6) for r in range(1, 6)} | {(r, c) for r in range(2, 7) for c in (5, 7)}


def test_rotation_helper_matches_spec_right_facing() -> None:
    right = {(6, c) for c in range(7, 12)} | {(r, c) for r in (5, 7) for c in range(6, 11)}
    assert rotate(SPEC_UP, 1) == right


# ---------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("facing", [UP, RIGHT, DOWN, LEFT])
def test_spec_example_fire_geometry(facing: int) -> None:
    env = fire_env()
    place(env, [(6, 6)], [facing])
    obs, rewards, _, info = act(env, [FIRE])
    expected = rotate(SPEC_UP, facing)
    assert len(expected) == 15
    assert beam_cells(env, kind=palette.PENALTY_BEAM) == expected
    assert beam_cells(env) == expected
    rgb = env.render(0)
    for r in range(13):
        for c in range(13):
            if (r, c) in expected:
                assert tuple(rgb[r, c]) == YELLOW
            elif (r, c) == (6, 6):
                assert tuple(rgb[r, c]) == AGENT_RGB[0]
            elif r in (0, 12) or c in (0, 12):
                assert tuple(rgb[r, c]) == WALL_RGB
            else:
                assert tuple(rgb[r, c]) == BLACK
    # the firer's own view: forward is up, so the beam always looks like the UP case
    view = obs.rgb()[0, 0]
    view_beam = {(i, j) for i in range(15) for j in range(15) if tuple(view[i, j].tolist()) == YELLOW}
    assert view_beam == {(7 + r - 6, 7 + c - 6) for r, c in SPEC_UP}
    assert rewards.tolist() == [[-1.0]]
    assert info["fire"].tolist() == [[1]] and info["hits"].tolist() == [[0]]


@pytest.mark.parametrize("facing", [UP, RIGHT, DOWN, LEFT])
def test_spec_example_clean_geometry(facing: int) -> None:
    env = clean_env()
    place(env, [(6, 6)], [facing])
    _, rewards, _, info = act(env, [CLEAN])
    expected = rotate(SPEC_UP, facing)
    assert beam_cells(env, kind=palette.CLEAN_BEAM) == expected
    assert beam_cells(env) == expected
    rgb = env.render(0)
    for r, c in expected:
        assert tuple(rgb[r, c]) == CYAN
    assert rewards.tolist() == [[0.0]]
    assert info["clean"].tolist() == [[1]] and info["fire"].tolist() == [[0]]
    assert info["cleaned"].tolist() == [[0]]


def test_beams_stop_before_border_walls() -> None:
    env = fire_env()
    place(env, [(2, 6)], [UP])
    act(env, [FIRE])
    assert beam_cells(env) == {(1, 6), (2, 5), (1, 5), (2, 7), (1, 7)}
    # in a corner facing LEFT: the centre ray and the ray towards row 0 start in a wall
    place(env, [(1, 1)], [LEFT])
    act(env, [FIRE])
    assert beam_cells(env) == {(2, 1)}
    place(env, [(11, 9)], [RIGHT])
    act(env, [FIRE])
    assert beam_cells(env) == {(11, 10), (11, 11), (10, 9), (10, 10), (10, 11)}


def test_beams_stop_before_inner_walls() -> None:
    rows = ["@" * 13] + ["@" + "P" * 11 + "@"] * 11 + ["@" * 13]
    rows[6] = "@PPP@PPPPPPP@"  # wall at (6,4)
    rows[5] = "@PPPPPPPPP@P@"  # wall at (5,10)
    env = fire_env(game_map="\n".join(rows) + "\n")
    place(env, [(6, 6)], [LEFT])
    act(env, [FIRE])
    expected = {(6, 5)} | {(r, c) for r in (5, 7) for c in range(2, 7)}
    assert beam_cells(env) == expected
    place(env, [(6, 6)], [RIGHT])
    act(env, [FIRE])
    expected = {(6, c) for c in range(7, 12)} | {(5, c) for c in range(6, 10)} | {(7, c) for c in range(6, 11)}
    assert beam_cells(env) == expected


# ---------------------------------------------------------------------------- agents absorb beams
def test_agents_absorb_penalty_rays() -> None:
    env = fire_env(num_agents=3)
    place(env, [(6, 6), (3, 6), (6, 7)], [UP, LEFT, DOWN])  # 1 on the centre ray, 2 level on a side ray
    _, rewards, _, info = act(env, [FIRE, STAY, STAY])
    expected = {(5, 6), (4, 6), (3, 6), (6, 7)} | {(r, 5) for r in range(2, 7)}
    assert beam_cells(env) == expected
    rgb = env.render(0)
    assert tuple(rgb[3, 6]) == AGENT_RGB[1] and tuple(rgb[6, 7]) == AGENT_RGB[2]  # drawn over beams
    assert tuple(rgb[4, 6]) == YELLOW
    for cell in [(2, 6), (1, 6), (5, 7), (4, 7), (2, 7)]:  # behind the hit agents: uncovered
        assert tuple(rgb[cell]) == BLACK
    assert rewards.tolist() == [[-1.0, -50.0, -50.0]]
    assert info["hits"].tolist() == [[0, 1, 1]]
    assert info["fire"].tolist() == [[1, 0, 0]]


def test_penalty_stacks_from_two_firers_and_mutual_fire() -> None:
    env = fire_env(num_agents=4)
    # 0 and 1 fire at 2 along row 6; 3 fires (upwards) at nobody
    place(env, [(6, 2), (6, 10), (6, 6), (11, 11)], [RIGHT, LEFT, UP, UP])
    _, rewards, _, info = act(env, [FIRE, FIRE, STAY, FIRE])
    assert rewards.tolist() == [[-1.0, -1.0, -100.0, -1.0]]
    assert info["hits"].tolist() == [[0, 0, 2, 0]]
    assert info["fire"].tolist() == [[1, 1, 0, 1]]
    # the target fires too: its own cost adds to the hits
    place(env, [(6, 2), (6, 10), (6, 6), (11, 11)], [RIGHT, LEFT, UP, UP])
    _, rewards, _, info = act(env, [FIRE, FIRE, FIRE, STAY])
    assert rewards.tolist() == [[-1.0, -1.0, -101.0, 0.0]]
    # two agents facing each other both fire: each pays 1 and takes 50
    place(env, [(6, 4), (6, 8), (1, 1), (11, 11)], [RIGHT, LEFT, UP, UP])
    _, rewards, _, info = act(env, [FIRE, FIRE, STAY, STAY])
    assert rewards.tolist() == [[-51.0, -51.0, 0.0, 0.0]]
    assert info["hits"].tolist() == [[1, 1, 0, 0]]


def test_hit_has_no_other_effect() -> None:
    env = fire_env(num_agents=2)
    place(env, [(6, 6), (4, 6)], [UP, DOWN])
    act(env, [FIRE, STAY])
    assert env.state.pos[0].tolist() == [6 * 13 + 6, 4 * 13 + 6]
    # the hit agent acts normally in the next step
    act(env, [STAY, MOVE_DOWN])  # facing DOWN, back is (-1, 0)
    assert env.state.pos[0, 1].item() == 3 * 13 + 6


def test_clean_costs_nothing_and_hits_for_free() -> None:
    env = clean_env(num_agents=2)
    place(env, [(6, 6), (4, 6)], [UP, DOWN])
    _, rewards, _, info = act(env, [CLEAN, CLEAN])  # each cleaning beam hits the other agent
    assert rewards.tolist() == [[0.0, 0.0]]
    assert info["hits"].tolist() == [[0, 0]]
    assert info["clean"].tolist() == [[1, 1]]
    assert info["fire"].tolist() == [[0, 0]]
    assert (6, 6) in beam_cells(env) and (4, 6) in beam_cells(env)
    # each centre ray stops at the other agent: nothing behind them is covered
    assert (3, 6) not in beam_cells(env) and (7, 6) not in beam_cells(env)


# ---------------------------------------------------------------------------- cleaning
def test_clean_one_waste_cell_per_ray() -> None:
    env = clean_env()
    place(env, [(8, 6)], [UP])
    waste = [(6, 6), (4, 6), (7, 5), (5, 5)]  # two on the centre ray, two on the left ray
    set_waste(env, waste)
    before = env.num_waste().item()
    _, rewards, _, info = act(env, [CLEAN])
    assert not waste_at(env, 6, 6) and waste_at(env, 4, 6)
    assert not waste_at(env, 7, 5) and waste_at(env, 5, 5)
    assert info["cleaned"].tolist() == [[2]]
    assert env.num_waste().item() == before - 2
    assert rewards.tolist() == [[0.0]]
    expected = {(7, 6), (6, 6), (8, 5), (7, 5)} | {(r, 7) for r in range(4, 9)}
    assert beam_cells(env, kind=palette.CLEAN_BEAM) == expected
    rgb = env.render(0)
    assert tuple(rgb[6, 6]) == CYAN and tuple(rgb[4, 6]) == (99, 156, 194)  # cleaned cell shows the beam
    # the next step: the cleaned cell is river again
    act(env, [STAY])
    assert tuple(env.render(0)[6, 6]) == (113, 75, 24)


def test_waste_under_an_agent_is_cleaned_and_stops_the_ray() -> None:
    env = clean_env(num_agents=3)
    place(env, [(8, 6), (6, 6), (7, 7)], [UP, LEFT, RIGHT])
    set_waste(env, [(6, 6), (5, 6), (6, 7)])  # 1 stands on waste; 2 (no waste) shields (6,7)
    _, _, _, info = act(env, [CLEAN, STAY, STAY])
    assert not waste_at(env, 6, 6)
    assert waste_at(env, 5, 6)
    assert waste_at(env, 6, 7)
    assert info["cleaned"].tolist() == [[1, 0, 0]]
    assert info["hits"].tolist() == [[0, 0, 0]]
    assert beam_cells(env) == {(7, 6), (6, 6), (8, 7), (7, 7)} | {(r, 5) for r in range(4, 9)}
    rgb = env.render(0)
    assert tuple(rgb[6, 6]) == AGENT_RGB[1] and tuple(rgb[7, 7]) == AGENT_RGB[2]


def test_fire_does_not_change_the_map() -> None:
    env = clean_env(num_agents=1)
    place(env, [(8, 6)], [UP])
    set_waste(env, [(6, 6), (7, 5), (5, 7)])
    apples = torch.zeros_like(env.state.apples)
    for r, c in [(7, 6), (4, 6), (6, 5)]:
        apples[:, r * env.width + c] = True
    env.state.apples = apples
    waste_before, apples_before = env.state.waste.clone(), env.state.apples.clone()
    _, rewards, _, info = act(env, [FIRE])
    hw = env.height * env.width
    assert torch.equal(env.state.waste[:, :hw], waste_before[:, :hw])
    assert torch.equal(env.state.apples[:, :hw], apples_before[:, :hw])
    assert info["cleaned"].tolist() == [[0]]
    assert beam_cells(env) == {(r, 6) for r in range(3, 8)} | {(r, c) for r in range(4, 9) for c in (5, 7)}
    assert rewards.tolist() == [[-1.0]]


# ---------------------------------------------------------------------------- beam order
def order_scenario(num_envs: int, seed: int):
    """Two cleaners whose side rays share row 5: A at (4,2) facing RIGHT sweeps row 5 cols 2..6
    with its right ray; B at (6,4) facing RIGHT sweeps row 5 cols 4..8 with its left ray. Waste
    at (5,5) and (5,7). A first: A cleans (5,5), B cleans (5,7). B first: B cleans (5,5) and
    A finds nothing left."""
    env = clean_env(num_agents=2, num_envs=num_envs, seed=seed)
    place(env, [(4, 2), (6, 4)], [RIGHT, RIGHT])
    set_waste(env, [(5, 5), (5, 7)])
    _, _, _, info = act(env, [CLEAN, CLEAN])
    return env, info["cleaned"]


def test_beam_order_changes_how_much_gets_cleaned() -> None:
    total_a_first = 0
    total_games = 0
    for seed in (0, 1, 2, 3):
        env, cleaned = order_scenario(500, seed)
        total = cleaned.sum(1)
        a_first = total == 2
        assert set(total.tolist()) == {1, 2}, "both processing orders occur for every seed"
        assert (cleaned[a_first] == torch.tensor([1, 1])).all()
        assert (cleaned[~a_first] == torch.tensor([0, 1])).all()
        w = env.width
        assert not env.state.waste[:, 5 * w + 5].any()
        assert torch.equal(env.state.waste[:, 5 * w + 7], ~a_first)
        total_a_first += int(a_first.sum())
        total_games += len(total)
    sd = math.sqrt(total_games * 0.25)
    assert abs(total_a_first - total_games / 2) <= 5 * sd


# ---------------------------------------------------------------------------- drawing and info
def test_beams_last_one_step_and_colours() -> None:
    env = clean_env(num_agents=2)
    place(env, [(8, 3), (8, 9)], [UP, UP])
    obs, _, _, _ = act(env, [FIRE, CLEAN])
    pen = beam_cells(env, kind=palette.PENALTY_BEAM)
    cln = beam_cells(env, kind=palette.CLEAN_BEAM)
    assert pen == {(r + 2, c - 3) for r, c in SPEC_UP}
    assert cln == {(r + 2, c + 3) for r, c in SPEC_UP}
    rgb = env.render(0)
    assert all(tuple(rgb[cell]) == YELLOW for cell in pen)
    assert all(tuple(rgb[cell]) == CYAN for cell in cln)
    view = obs.rgb()[0, 0]
    assert tuple(view[6, 7].tolist()) == YELLOW  # just ahead of the firer
    assert tuple(view[7, 7].tolist()) == AGENT_RGB[0]  # the firer over its own side rays' start
    obs, _, _, _ = act(env, [STAY, STAY])
    assert not env.state.beams[:, : env.height * env.width].any()  # the last two columns are sentinels
    rgb = env.render(0)
    assert not (rgb == np.array(YELLOW, dtype=np.uint8)).all(-1).any()
    assert not obs.image.eq(palette.PENALTY_BEAM).any() and not obs.image.eq(palette.CLEAN_BEAM).any()


def test_info_counts_in_a_mixed_step() -> None:
    env = clean_env(num_agents=4, num_envs=3)
    # 0 cleans upwards over two waste cells on separate rays; 1 fires at 2; 3 cleans at 2 as well
    place(env, [(9, 2), (5, 9), (2, 9), (2, 4)], [UP, UP, DOWN, RIGHT])
    set_waste(env, [(8, 2), (7, 1), (6, 1)])
    _, rewards, done, info = act(env, [CLEAN, FIRE, STAY, CLEAN])
    assert info["clean"].tolist() == [[1, 0, 0, 1]] * 3
    assert info["fire"].tolist() == [[0, 1, 0, 0]] * 3
    assert info["hits"].tolist() == [[0, 0, 1, 0]] * 3
    assert info["cleaned"].tolist() == [[2, 0, 0, 0]] * 3
    assert info["apples"].tolist() == [[0, 0, 0, 0]] * 3
    assert rewards.tolist() == [[0.0, -1.0, -50.0, 0.0]] * 3
    for key in ("apples", "fire", "hits", "clean", "cleaned"):
        assert info[key].dtype == torch.int64 and info[key].shape == (3, 4)
    assert not done.any()


def test_beams_use_positions_after_this_steps_moves() -> None:
    """Order of a step: moves, then apples, then beams (spec section 3)."""
    env = fire_env(num_agents=3)
    # 0 fires upwards from (6,6); 1 steps from (3,8) into the right-hand ray at (3,7), onto an
    # apple; 2 steps from (4,5), on the left-hand ray, out of the beam to (4,4)
    place(env, [(6, 6), (3, 8), (4, 5)], [UP, LEFT, LEFT])
    apples = torch.zeros_like(env.state.apples)
    apples[:, 3 * 13 + 7] = True
    env.state.apples = apples
    _, rewards, _, info = act(env, [FIRE, 2, 2])  # 2 = MOVE_UP (forward)
    assert env.state.pos[0].tolist() == [6 * 13 + 6, 3 * 13 + 7, 4 * 13 + 4]
    assert info["hits"].tolist() == [[0, 1, 0]]
    assert info["apples"].tolist() == [[0, 1, 0]]
    assert rewards.tolist() == [[-1.0, -49.0, 0.0]]
    assert (4, 5) in beam_cells(env) and (2, 7) not in beam_cells(env)
