"""Egocentric observations, colours, visibility and the others' actions (spec section 8).

Expected views are rebuilt here from the spec alone: pixel (i, j) of an agent at p with forward
vector d and right-hand vector s shows the cell p + (7 - i) d + (j - 7) s, black off the map.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssdlib.envs import make_env
from ssdlib.envs import palette
from ssdlib.envs.geometry import FIRE, STAY

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
FORWARD = {UP: (-1, 0), RIGHT: (0, 1), DOWN: (1, 0), LEFT: (0, -1)}
RIGHT_HAND = {UP: (0, 1), RIGHT: (1, 0), DOWN: (0, -1), LEFT: (-1, 0)}

# The colour table of spec section 8, written out literally.
FLOOR = (0, 0, 0)
WALL = (180, 180, 180)
APPLE = (0, 255, 0)
WASTE = (99, 156, 194)
RIVER = (113, 75, 24)
STREAM = (113, 75, 24)
AGENT_RGB = [
    (0, 0, 255), (2, 81, 154), (204, 0, 204), (216, 30, 54), (254, 151, 0),
    (100, 255, 255), (99, 99, 255), (250, 204, 255), (238, 223, 16),
]

BOX13 = "\n".join(["@" * 13] + ["@" + "P" * 11 + "@"] * 11 + ["@" * 13]) + "\n"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The games' tensors are small: intra-op threads only add latency (a lot of it on a
    loaded 2-core machine). Restored after this module."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def place(env, cells, facings) -> None:
    b, w = env.num_envs, env.width
    env.state.pos = torch.tensor([r * w + c for r, c in cells], dtype=torch.long).expand(b, -1).clone()
    env.state.orient = torch.tensor(facings, dtype=torch.long).expand(b, -1).clone()


def act(env, actions):
    return env.step(torch.tensor(actions, dtype=torch.long).expand(env.num_envs, -1).clone())


def pixel_of(p: tuple[int, int], facing: int, cell: tuple[int, int]) -> tuple[int, int]:
    """Where `cell` appears in the view of an agent at p facing `facing` (may be off the view)."""
    dr, dc = cell[0] - p[0], cell[1] - p[1]
    d, s = FORWARD[facing], RIGHT_HAND[facing]
    ahead = dr * d[0] + dc * d[1]
    side = dr * s[0] + dc * s[1]
    return 7 - ahead, 7 + side


def expected_view(full: np.ndarray, p: tuple[int, int], facing: int) -> np.ndarray:
    """[15, 15, 3] view built from a full rendered map [H, W, 3] by the spec's formula."""
    h, w = full.shape[:2]
    d, s = FORWARD[facing], RIGHT_HAND[facing]
    out = np.zeros((15, 15, 3), dtype=np.uint8)
    for i in range(15):
        for j in range(15):
            r = p[0] + (7 - i) * d[0] + (j - 7) * s[0]
            c = p[1] + (7 - i) * d[1] + (j - 7) * s[1]
            if 0 <= r < h and 0 <= c < w:
                out[i, j] = full[r, c]
    return out


def rgb_at(obs, game: int, agent: int, i: int, j: int) -> tuple[int, ...]:
    return tuple(obs.rgb()[game, agent, i, j].tolist())


# ---------------------------------------------------------------------------- rotation
@pytest.mark.parametrize("facing", [UP, RIGHT, DOWN, LEFT])
def test_forward_is_up_and_right_is_right(facing: int) -> None:
    env = make_env("harvest", num_envs=1, num_agents=3, map=BOX13, seed=0)
    env.reset()
    p = (6, 6)
    d, s = FORWARD[facing], RIGHT_HAND[facing]
    ahead2 = (p[0] + 2 * d[0], p[1] + 2 * d[1])
    right3 = (p[0] + 3 * s[0], p[1] + 3 * s[1])
    left1 = (p[0] - s[0], p[1] - s[1])
    behind4 = (p[0] - 4 * d[0], p[1] - 4 * d[1])
    place(env, [p, right3, behind4], [facing, UP, UP])
    apples = torch.zeros_like(env.state.apples)
    apples[0, ahead2[0] * env.width + ahead2[1]] = True
    apples[0, left1[0] * env.width + left1[1]] = True
    env.state.apples = apples
    obs = env.observe()
    view = obs.image[0, 0]
    assert view[7, 7].item() == palette.AGENT + 0
    assert view[5, 7].item() == palette.APPLE  # two ahead -> two pixels above the centre
    assert view[7, 10].item() == palette.AGENT + 1  # three to the right -> three pixels right
    assert view[7, 6].item() == palette.APPLE  # one to the left
    assert view[11, 7].item() == palette.AGENT + 2  # four behind -> four pixels below
    # the border wall 6 cells ahead of (6,6) is on pixel row 1 in every facing ...
    assert view[1, 7].item() == palette.WALL and view[0, 7].item() == palette.FLOOR  # ... then outside
    assert view[7, 1].item() == palette.WALL and view[7, 13].item() == palette.WALL
    assert view[13, 7].item() == palette.WALL
    # the whole view against the spec's formula applied to the rendered map
    full = env.render(0)
    assert np.array_equal(obs.rgb()[0, 0].numpy(), expected_view(full, p, facing))


def test_turn_rotates_the_view_in_the_same_step() -> None:
    env = make_env("harvest", num_envs=1, num_agents=1, map=BOX13, seed=0)
    env.reset()
    place(env, [(6, 6)], [UP])
    apples = torch.zeros_like(env.state.apples)
    apples[0, 6 * 13 + 8] = True  # two cells to the right of an agent facing UP
    env.state.apples = apples
    assert env.observe().image[0, 0, 7, 9].item() == palette.APPLE
    obs, _, _, _ = act(env, [5])  # TURN_CLOCKWISE: now facing RIGHT, the apple is two ahead
    assert obs.image[0, 0, 5, 7].item() == palette.APPLE
    obs, _, _, _ = act(env, [5])  # facing DOWN: the apple is two to the left
    assert obs.image[0, 0, 7, 5].item() == palette.APPLE
    obs, _, _, _ = act(env, [6])  # back to RIGHT
    assert obs.image[0, 0, 5, 7].item() == palette.APPLE


def test_asymmetric_marker_never_mirrored() -> None:
    """An L-shaped marker keeps its handedness in every facing (a rotation, not a flip)."""
    env = make_env("harvest", num_envs=4, num_agents=1, map=BOX13, seed=0)
    env.reset()
    env.state.pos = torch.full((4, 1), 6 * 13 + 6, dtype=torch.long)
    env.state.orient = torch.arange(4).view(4, 1)
    apples = torch.zeros_like(env.state.apples)
    for g in range(4):
        d, s = FORWARD[g], RIGHT_HAND[g]
        # cells one and two ahead, and one ahead + one to the right
        for a, b in [(1, 0), (2, 0), (1, 1)]:
            r, c = 6 + a * d[0] + b * s[0], 6 + a * d[1] + b * s[1]
            apples[g, r * 13 + c] = True
    env.state.apples = apples
    img = env.observe().image
    want = torch.full((15, 15), palette.FLOOR, dtype=torch.uint8)
    want[6, 7] = want[5, 7] = want[6, 8] = palette.APPLE
    want[7, 7] = palette.AGENT
    for g in range(4):
        got = img[g, 0].clone()
        got[got == palette.WALL] = palette.FLOOR  # walls are at the view's edge; compared above
        assert torch.equal(got, want), g


def test_views_match_spec_formula_in_random_play() -> None:
    for name, n, actions in [("cleanup", 9, 9), ("harvest", 9, 8)]:
        env = make_env(name, num_envs=2, num_agents=n, seed=3)
        obs = env.reset()
        gen = torch.Generator().manual_seed(1)
        for t in range(12):
            if t:
                obs, _, _, _ = env.step(torch.randint(0, actions, (2, n), generator=gen))
            for g in range(2):
                full = env.render(g)
                rgb = obs.rgb()[g].numpy()
                for i in range(n):
                    pos = env.state.pos[g, i].item()
                    p = (pos // env.width, pos % env.width)
                    f = env.state.orient[g, i].item()
                    assert np.array_equal(rgb[i], expected_view(full, p, f)), (name, t, g, i)


# ---------------------------------------------------------------------------- colours
def test_colours_of_every_thing() -> None:
    env = make_env("cleanup", num_envs=1, num_agents=9, seed=0)
    obs = env.reset()
    for i in range(9):  # every agent sees itself at the centre in its own colour, from reset on
        assert rgb_at(obs, 0, i, 7, 7) == AGENT_RGB[i]
    # agent 0 at the floor cell (7,8) facing UP: pixel (i, j) shows cell (i, j + 1)
    cells = [(7, 8), (1, 1)] + [(10, c) for c in range(6, 13)]
    place(env, cells, [UP] * 9)
    apples = torch.zeros_like(env.state.apples)
    apples[0, 7 * env.width + 13] = True  # a B cell
    env.state.apples = apples
    obs = env.observe()
    assert env.map.rows[8][3] == "H" and env.map.rows[8][8] == "S" and env.map.rows[7][3] == "R"
    assert rgb_at(obs, 0, 0, 8, 2) == WASTE  # (8,3) H, polluted at reset
    assert rgb_at(obs, 0, 0, 8, 7) == STREAM  # (8,8) S
    assert rgb_at(obs, 0, 0, 7, 2) == RIVER  # (7,3) R
    assert rgb_at(obs, 0, 0, 0, 4) == WALL  # (0,5)
    assert rgb_at(obs, 0, 0, 7, 6) == FLOOR  # (7,7) floor
    assert rgb_at(obs, 0, 0, 7, 12) == APPLE  # (7,13) apple
    # agents 2..8 on row 10, three rows below agent 0: pixel (10, c - 1)
    for k, c in enumerate(range(6, 13)):
        assert rgb_at(obs, 0, 0, 10, c - 1) == AGENT_RGB[2 + k]
    # agent 1 at (1,1): outside the map is black, the wall is grey
    assert rgb_at(obs, 0, 1, 6, 7) == WALL  # (0,1)
    assert rgb_at(obs, 0, 1, 5, 7) == FLOOR  # (-1,1): outside
    assert rgb_at(obs, 0, 1, 0, 0) == FLOOR
    assert rgb_at(obs, 0, 1, 7, 5) == FLOOR  # (1,-1): outside
    assert rgb_at(obs, 0, 1, 7, 6) == WALL  # (1,0)
    assert rgb_at(obs, 0, 1, 7, 8) == RIVER  # (1,2) R
    # the rendered map uses the same colours
    full = env.render(0)
    assert tuple(full[8, 3]) == WASTE and tuple(full[8, 8]) == STREAM and tuple(full[0, 0]) == WALL
    assert tuple(full[7, 13]) == APPLE and tuple(full[7, 7]) == FLOOR


def test_palette_matches_spec_table() -> None:
    want = [FLOOR, WALL, APPLE, (255, 255, 0), (100, 255, 255), WASTE, RIVER] + AGENT_RGB
    assert palette.PALETTE.tolist() == [list(c) for c in want]
    idx = torch.arange(len(want), dtype=torch.uint8)
    assert palette.to_rgb(idx).tolist() == [list(c) for c in want]


def test_observer_and_others_drawn_in_first_observation() -> None:
    env = make_env("harvest", num_envs=1, num_agents=3, map=BOX13, seed=0)
    env.reset()
    place(env, [(6, 6), (6, 8), (2, 2)], [RIGHT, DOWN, LEFT])
    obs = env.observe()  # no step yet
    assert obs.image[0, 0, 5, 7].item() == palette.AGENT + 1  # (6,8) is 2 ahead of agent 0
    i, j = pixel_of((6, 6), RIGHT, (2, 2))
    assert obs.image[0, 0, i, j].item() == palette.AGENT + 2
    for k in range(3):
        assert obs.image[0, k, 7, 7].item() == palette.AGENT + k
    # directly from reset on the reference maps too
    for name in ("cleanup", "harvest"):
        env = make_env(name, num_envs=3, num_agents=5, seed=4)
        obs = env.reset()
        for g in range(3):
            for k in range(5):
                assert rgb_at(obs, g, k, 7, 7) == AGENT_RGB[k]


# ---------------------------------------------------------------------------- visibility and actions
BIG = "\n".join(["@" * 21] + ["@" + "P" * 19 + "@"] * 17 + ["@" * 21]) + "\n"  # 19 x 21


@pytest.mark.parametrize("facing", [UP, RIGHT, DOWN, LEFT])
def test_visibility_window(facing: int) -> None:
    env = make_env("harvest", num_envs=1, num_agents=8, map=BIG, seed=0)
    env.reset()
    p = (9, 10)
    # (dr, dc) = (7,7) (-7,-7) (0,8) (0,-8) (8,-7) (1,7) (-8,0)
    others = [(16, 17), (2, 3), (9, 18), (9, 2), (17, 3), (10, 17), (1, 10)]
    place(env, [p] + others, [facing] + [UP] * 7)
    obs = env.observe()
    assert obs.visible[0, 0].tolist() == [True, True, False, False, False, True, False]
    for k, cell in enumerate(others, start=1):
        i, j = pixel_of(p, facing, cell)
        inside = 0 <= i < 15 and 0 <= j < 15
        assert inside == obs.visible[0, 0, k - 1].item()
        if inside:
            assert obs.image[0, 0, i, j].item() == palette.AGENT + k
    for k in (3, 4, 5, 7):
        assert not (obs.image[0, 0] == palette.AGENT + k).any()
    # symmetric: agent 1 sees agent 0 (dr, dc = -7, -7), agent 3 does not
    assert obs.visible[0, 1, 0].item() and not obs.visible[0, 3, 0].item()


def test_visibility_and_actions_in_random_play() -> None:
    b, n = 3, 6
    env = make_env("cleanup", num_envs=b, num_agents=n, seed=5)
    obs = env.reset()
    assert obs.actions.shape == (b, n, n - 1) and obs.actions.dtype == torch.int64
    assert obs.visible.shape == (b, n, n - 1) and obs.visible.dtype == torch.bool
    assert (obs.actions == STAY).all()
    gen = torch.Generator().manual_seed(2)
    for _ in range(15):
        actions = torch.randint(0, 9, (b, n), generator=gen)
        obs, _, _, _ = env.step(actions)
        r, c = env.state.pos // env.width, env.state.pos % env.width
        for i in range(n):
            others = [j for j in range(n) if j != i]
            assert torch.equal(obs.actions[:, i], actions[:, others])
            near = ((r[:, others] - r[:, i : i + 1]).abs() <= 7) & ((c[:, others] - c[:, i : i + 1]).abs() <= 7)
            assert torch.equal(obs.visible[:, i], near)
            for g in range(b):
                for k, j in enumerate(others):
                    present = (obs.image[g, i] == palette.AGENT + j).any().item()
                    assert present == near[g, k].item()


def test_actions_field_in_id_order_without_observer() -> None:
    env = make_env("harvest", num_envs=2, num_agents=4, seed=0)
    obs = env.reset()
    assert obs.actions.tolist() == [[[STAY] * 3] * 4] * 2
    actions = torch.tensor([[0, 1, 2, 3], [7, 6, 5, 4]])
    obs, _, _, _ = env.step(actions)
    assert obs.actions[0].tolist() == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]
    assert obs.actions[1].tolist() == [[6, 5, 4], [7, 5, 4], [7, 6, 4], [7, 6, 5]]


# ---------------------------------------------------------------------------- shapes and render
def test_observation_shapes_and_dtypes() -> None:
    env = make_env("cleanup", num_envs=3, num_agents=4, seed=0)
    obs = env.reset()
    assert obs.image.shape == (3, 4, 15, 15) and obs.image.dtype == torch.uint8
    rgb = obs.rgb()
    assert rgb.shape == (3, 4, 15, 15, 3) and rgb.dtype == torch.uint8
    obs, _, _, _ = env.step(torch.full((3, 4), FIRE))
    assert obs.image.shape == (3, 4, 15, 15)


def test_render_shape_and_contents() -> None:
    env = make_env("cleanup", num_envs=3, num_agents=5, seed=6)
    env.reset()
    for g in range(3):
        full = env.render(g)
        assert isinstance(full, np.ndarray)
        assert full.shape == (25, 18, 3) and full.dtype == np.uint8
        for r, row in enumerate(env.map.rows):
            for c, ch in enumerate(row):
                pos = r * env.width + c
                agents = (env.state.pos[g] == pos).nonzero()
                if len(agents):
                    want = AGENT_RGB[agents[0, 0].item()]
                else:
                    want = {"@": WALL, "H": WASTE, "R": RIVER, "S": STREAM}.get(ch, FLOOR)
                assert tuple(full[r, c]) == want, (g, r, c, ch)
    # games differ only where their agents differ
    diff = (env.render(0) != env.render(1)).any(-1)
    a0 = set(env.state.pos[0].tolist())
    a1 = set(env.state.pos[1].tolist())
    assert {r * env.width + c for r, c in zip(*np.nonzero(diff))} <= a0 | a1
    for bad in (-1, 3):
        with pytest.raises(ValueError, match=str(bad)):
            env.render(bad)
    box = make_env("box_trapped")
    box.reset()
    assert box.render().shape == (11, 11, 3)
