"""Movement and movement conflicts (spec sections 2 and 4).

Scenarios are set up by writing positions and facings into `env.state` right after a reset,
on small inline maps whose interior is all spawn points (floor at run time) so that any cell
can hold an agent. Harvest is used as the host game: with no 'A' cells nothing spawns.
"""

from __future__ import annotations

import math

import pytest
import torch

from ssdlib.envs import make_env
from ssdlib.envs.geometry import (
    CLEAN, FIRE, MOVE_DOWN, MOVE_LEFT, MOVE_RIGHT, MOVE_UP, STAY, TURN_CCW, TURN_CW,
)
from ssdlib.envs.movement import resolve_moves

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3



# The displacement table of spec section 2, written out literally: facing -> action -> (dr, dc).
SPEC_MOVES = {
    UP: {MOVE_UP: (-1, 0), MOVE_DOWN: (1, 0), MOVE_LEFT: (0, -1), MOVE_RIGHT: (0, 1)},
    DOWN: {MOVE_UP: (1, 0), MOVE_DOWN: (-1, 0), MOVE_LEFT: (0, 1), MOVE_RIGHT: (0, -1)},
    LEFT: {MOVE_UP: (0, -1), MOVE_DOWN: (0, 1), MOVE_LEFT: (1, 0), MOVE_RIGHT: (-1, 0)},
    RIGHT: {MOVE_UP: (0, 1), MOVE_DOWN: (0, -1), MOVE_LEFT: (-1, 0), MOVE_RIGHT: (1, 0)},
}


def box_map(height: int, width: int, inner: list[str] | None = None) -> str:
    """A wall-enclosed map whose interior is all 'P' (or the given interior rows)."""
    if inner is None:
        inner = ["P" * (width - 2)] * (height - 2)
    rows = ["@" * width] + [f"@{r}@" for r in inner] + ["@" * width]
    return "\n".join(rows) + "\n"


def make(num_agents: int, num_envs: int = 1, size: int = 7, seed: int = 0, game_map: str | None = None):
    env = make_env(
        "harvest", num_envs=num_envs, num_agents=num_agents, seed=seed,
        map=game_map if game_map is not None else box_map(size, size),
    )
    env.reset()
    return env


def place(env, cells: list[tuple[int, int]], facings: list[int]) -> None:
    """Put agent i on cells[i] facing facings[i], in every game."""
    b, w = env.num_envs, env.width
    env.state.pos = torch.tensor([r * w + c for r, c in cells], dtype=torch.long).expand(b, -1).clone()
    env.state.orient = torch.tensor(facings, dtype=torch.long).expand(b, -1).clone()


def act(env, actions: list[int]):
    return env.step(torch.tensor(actions, dtype=torch.long).expand(env.num_envs, -1).clone())


def cells_of(env) -> torch.Tensor:
    """(row, col) of every agent, int64 [B, N, 2]."""
    pos = env.state.pos
    return torch.stack([pos // env.width, pos % env.width], dim=-1)


def assert_distinct(env) -> None:
    pos = env.state.pos
    same = pos[:, :, None] == pos[:, None, :]
    n = pos.shape[1]
    assert not (same & ~torch.eye(n, dtype=torch.bool)).any(), "two agents share a cell"


def assert_binomial(count: int, trials: int, p: float, sigmas: float = 5.0) -> None:
    sd = math.sqrt(trials * p * (1 - p))
    assert abs(count - trials * p) <= sigmas * sd + 1, (count, trials, p)


# ---------------------------------------------------------------------------- moves and turns
@pytest.mark.parametrize("facing", [UP, RIGHT, DOWN, LEFT])
@pytest.mark.parametrize("action", [MOVE_LEFT, MOVE_RIGHT, MOVE_UP, MOVE_DOWN])
def test_move_table(facing: int, action: int) -> None:
    env = make(1)
    place(env, [(3, 3)], [facing])
    _, rewards, _, _ = act(env, [action])
    dr, dc = SPEC_MOVES[facing][action]
    assert cells_of(env)[0, 0].tolist() == [3 + dr, 3 + dc]
    assert env.state.orient[0, 0].item() == facing  # moves never turn
    assert rewards[0, 0].item() == 0.0


def test_move_table_batched_all_at_once() -> None:
    """All 16 (facing, move) pairs in 16 games of one batch, each game independent."""
    env = make(1, num_envs=16)
    pairs = [(f, a) for f in (UP, RIGHT, DOWN, LEFT) for a in (MOVE_LEFT, MOVE_RIGHT, MOVE_UP, MOVE_DOWN)]
    env.state.pos = torch.full((16, 1), 3 * env.width + 3, dtype=torch.long)
    env.state.orient = torch.tensor([[f] for f, _ in pairs], dtype=torch.long)
    env.step(torch.tensor([[a] for _, a in pairs], dtype=torch.long))
    got = cells_of(env)[:, 0]
    for g, (f, a) in enumerate(pairs):
        dr, dc = SPEC_MOVES[f][a]
        assert got[g].tolist() == [3 + dr, 3 + dc], (f, a)


@pytest.mark.parametrize("facing", [UP, RIGHT, DOWN, LEFT])
def test_turns_change_orientation_only(facing: int) -> None:
    env = make(1)
    place(env, [(3, 3)], [facing])
    act(env, [TURN_CW])
    assert env.state.orient[0, 0].item() == (facing + 1) % 4
    assert cells_of(env)[0, 0].tolist() == [3, 3]
    place(env, [(3, 3)], [facing])
    act(env, [TURN_CCW])
    assert env.state.orient[0, 0].item() == (facing - 1) % 4
    assert cells_of(env)[0, 0].tolist() == [3, 3]


def test_clockwise_cycle_names() -> None:
    """UP -> RIGHT -> DOWN -> LEFT -> UP clockwise, the reverse counter-clockwise."""
    env = make(1)
    place(env, [(3, 3)], [UP])
    seen = []
    for _ in range(4):
        act(env, [TURN_CW])
        seen.append(env.state.orient[0, 0].item())
    assert seen == [RIGHT, DOWN, LEFT, UP]
    seen = []
    for _ in range(4):
        act(env, [TURN_CCW])
        seen.append(env.state.orient[0, 0].item())
    assert seen == [LEFT, DOWN, RIGHT, UP]


@pytest.mark.parametrize("action", [STAY, FIRE])
def test_non_moves_keep_cell_and_facing(action: int) -> None:
    env = make(1)
    for facing in range(4):
        place(env, [(2, 4)], [facing])
        act(env, [action])
        assert cells_of(env)[0, 0].tolist() == [2, 4]
        assert env.state.orient[0, 0].item() == facing


def test_clean_does_not_move_in_cleanup() -> None:
    env = make_env("cleanup", num_envs=1, num_agents=2, map="mini_cleanup", seed=1)
    env.reset()
    before = env.state.pos.clone(), env.state.orient.clone()
    env.step(torch.tensor([[CLEAN, CLEAN]]))
    assert torch.equal(env.state.pos, before[0]) and torch.equal(env.state.orient, before[1])


# ---------------------------------------------------------------------------- walls
@pytest.mark.parametrize("facing", [UP, RIGHT, DOWN, LEFT])
def test_moves_into_border_walls_are_stays(facing: int) -> None:
    env = make(1)
    for corner in [(1, 1), (1, 5), (5, 1), (5, 5)]:
        for action in (MOVE_LEFT, MOVE_RIGHT, MOVE_UP, MOVE_DOWN):
            place(env, [corner], [facing])
            act(env, [action])
            dr, dc = SPEC_MOVES[facing][action]
            r, c = corner[0] + dr, corner[1] + dc
            inside = 1 <= r <= 5 and 1 <= c <= 5
            expected = [r, c] if inside else list(corner)
            assert cells_of(env)[0, 0].tolist() == expected, (corner, facing, action)
            assert env.state.orient[0, 0].item() == facing


def test_inner_wall_stops_and_blocks_followers() -> None:
    game_map = box_map(5, 7, ["PPPPP", "PP@PP", "PPPPP"])
    env = make(2, game_map=game_map)
    # agent 0 at (2,1) walks right into agent 1's cell; agent 1 bumps into the wall at (2,3)
    place(env, [(2, 1), (2, 2)], [RIGHT, RIGHT])
    act(env, [MOVE_UP, MOVE_UP])
    assert cells_of(env)[0].tolist() == [[2, 1], [2, 2]]
    # from the other side, strafing into the wall
    place(env, [(2, 4), (1, 3)], [UP, RIGHT])
    act(env, [MOVE_LEFT, MOVE_RIGHT])  # (2,4)->(2,3) wall; (1,3) facing RIGHT strafes right -> (2,3) wall
    assert cells_of(env)[0].tolist() == [[2, 4], [1, 3]]


# ---------------------------------------------------------------------------- contests
def test_two_contenders_win_fairly() -> None:
    b = 2000
    env = make(2, num_envs=b, seed=11)
    place(env, [(3, 2), (3, 4)], [RIGHT, LEFT])
    act(env, [MOVE_UP, MOVE_UP])  # both forward into (3,3)
    got = cells_of(env)
    moved0 = (got[:, 0] == torch.tensor([3, 3])).all(-1)
    moved1 = (got[:, 1] == torch.tensor([3, 3])).all(-1)
    assert torch.equal(moved0 ^ moved1, torch.ones(b, dtype=torch.bool)), "exactly one contender moves in"
    stayed0 = (got[:, 0] == torch.tensor([3, 2])).all(-1)
    stayed1 = (got[:, 1] == torch.tensor([3, 4])).all(-1)
    assert torch.equal(stayed0, ~moved0) and torch.equal(stayed1, ~moved1)
    assert_binomial(int(moved0.sum()), b, 0.5)
    assert_distinct(env)


def test_three_contenders_win_fairly() -> None:
    b = 2000
    env = make(3, num_envs=b, seed=12)
    # three different move actions, all aiming at (3,3)
    place(env, [(3, 2), (3, 4), (4, 3)], [UP, DOWN, UP])
    act(env, [MOVE_RIGHT, MOVE_RIGHT, MOVE_UP])  # (3,2)+(0,1); (3,4)+(0,-1) facing DOWN; (4,3)+(-1,0)
    got = cells_of(env)
    winners = (got == torch.tensor([3, 3])).all(-1)  # [B, 3]
    assert torch.equal(winners.sum(1), torch.ones(b, dtype=torch.long))
    for i in range(3):
        assert_binomial(int(winners[:, i].sum()), b, 1 / 3)
    start = torch.tensor([[3, 2], [3, 4], [4, 3]])
    assert ((got == start) | winners[..., None]).all(), "losers stay where they were"


def test_contest_for_cell_of_staying_agent_nobody_moves() -> None:
    b = 200
    env = make(3, num_envs=b, seed=13)
    for blocker_action in (STAY, TURN_CW, FIRE, MOVE_UP):  # MOVE_UP: bumps into the wall above
        # contenders for the blocker's cell (1,3) from (1,2) and (1,4)
        place(env, [(1, 2), (1, 4), (1, 3)], [RIGHT, LEFT, UP])
        act(env, [MOVE_UP, MOVE_UP, blocker_action])
        assert cells_of(env).tolist() == [[[1, 2], [1, 4], [1, 3]]] * b, blocker_action


def test_contest_with_occupant_leaving_cell() -> None:
    """The occupant of the contested cell leaves: one contender follows in, at random."""
    b = 2000
    env = make(3, num_envs=b, seed=14)
    place(env, [(3, 2), (3, 4), (3, 3)], [RIGHT, LEFT, UP])
    act(env, [MOVE_UP, MOVE_UP, MOVE_UP])  # occupant walks up to (2,3)
    got = cells_of(env)
    assert (got[:, 2] == torch.tensor([2, 3])).all()
    winners = (got[:, :2] == torch.tensor([3, 3])).all(-1)
    assert torch.equal(winners.sum(1), torch.ones(b, dtype=torch.long))
    assert_binomial(int(winners[:, 0].sum()), b, 0.5)


# ---------------------------------------------------------------------------- swaps, chains, cycles
def test_no_swaps() -> None:
    env = make(2, num_envs=50, seed=3)
    place(env, [(3, 2), (3, 3)], [RIGHT, LEFT])
    act(env, [MOVE_UP, MOVE_UP])
    assert cells_of(env).tolist() == [[[3, 2], [3, 3]]] * 50
    # vertical swap by forward and back moves
    place(env, [(2, 3), (3, 3)], [DOWN, DOWN])
    act(env, [MOVE_UP, MOVE_DOWN])
    assert cells_of(env).tolist() == [[[2, 3], [3, 3]]] * 50


def test_chain_moves_together() -> None:
    env = make(5, num_envs=10, size=9)
    place(env, [(4, 1), (4, 2), (4, 3), (4, 4), (4, 5)], [RIGHT] * 5)
    act(env, [MOVE_UP] * 5)
    assert cells_of(env).tolist() == [[[4, 2], [4, 3], [4, 4], [4, 5], [4, 6]]] * 10
    # the same eastward move made of different egocentric actions; ids not in line order
    place(env, [(4, 3), (4, 1), (4, 5), (4, 2), (4, 4)], [UP, DOWN, LEFT, RIGHT, LEFT])
    act(env, [MOVE_RIGHT, MOVE_LEFT, MOVE_DOWN, MOVE_UP, MOVE_DOWN])
    assert cells_of(env).tolist() == [[[4, 4], [4, 2], [4, 6], [4, 3], [4, 5]]] * 10


@pytest.mark.parametrize("head_action", [MOVE_UP, STAY, TURN_CCW])
def test_chain_blocked_at_head_stays(head_action: int) -> None:
    env = make(4, num_envs=10)
    line = [(3, 2), (3, 3), (3, 4), (3, 5)]  # head at (3,5): forward is the wall at column 6
    place(env, line, [RIGHT] * 4)
    act(env, [MOVE_UP, MOVE_UP, MOVE_UP, head_action])
    assert cells_of(env).tolist() == [[list(c) for c in line]] * 10


def test_chain_into_contested_cell_moves_all_or_nothing() -> None:
    b = 2000
    env = make(4, num_envs=b, size=9, seed=5)
    # chain 0 -> 1 -> 2 heading right into (4,5), which agent 3 contests from below
    place(env, [(4, 2), (4, 3), (4, 4), (5, 5)], [RIGHT, RIGHT, RIGHT, UP])
    act(env, [MOVE_UP] * 4)
    got = cells_of(env)
    chain_moved = (got[:, 2] == torch.tensor([4, 5])).all(-1)
    rival_moved = (got[:, 3] == torch.tensor([4, 5])).all(-1)
    assert torch.equal(chain_moved ^ rival_moved, torch.ones(b, dtype=torch.bool))
    moved_chain = torch.tensor([[4, 3], [4, 4], [4, 5]])
    still_chain = torch.tensor([[4, 2], [4, 3], [4, 4]])
    assert (got[chain_moved, :3] == moved_chain).all()
    assert (got[~chain_moved, :3] == still_chain).all()
    assert_binomial(int(chain_moved.sum()), b, 0.5)
    assert_distinct(env)


@pytest.mark.parametrize("clockwise", [True, False])
def test_rotating_cycle_all_move(clockwise: bool) -> None:
    env = make(4, num_envs=20, seed=6)
    square = [(2, 2), (2, 3), (3, 3), (3, 2)]  # clockwise order around the 2x2 square
    if clockwise:
        # (2,2) east, (2,3) south, (3,3) west, (3,2) north, all by forward moves
        place(env, square, [RIGHT, DOWN, LEFT, UP])
        act(env, [MOVE_UP] * 4)
        expected = square[1:] + square[:1]
    else:
        # the reverse rotation made of strafes: (2,2) south, (3,2) east, (3,3) north, (2,3) west
        # (2,2) LEFT+MOVE_LEFT (+1,0); (2,3) UP+MOVE_LEFT (0,-1); (3,3) RIGHT+MOVE_LEFT (-1,0);
        # (3,2) DOWN+MOVE_LEFT (0,+1)
        place(env, square, [LEFT, UP, RIGHT, DOWN])
        act(env, [MOVE_LEFT] * 4)
        expected = square[3:] + square[:3]
    assert cells_of(env).tolist() == [[list(c) for c in expected]] * 20


def test_cycle_with_outside_contender_all_or_nothing() -> None:
    b = 2000
    env = make(5, num_envs=b, seed=7)
    square = [(2, 2), (2, 3), (3, 3), (3, 2)]
    # agent 4 at (1,3) contests (2,3), the target of agent 0
    place(env, square + [(1, 3)], [RIGHT, DOWN, LEFT, UP, DOWN])
    act(env, [MOVE_UP] * 5)
    got = cells_of(env)
    cycle_moved = (got[:, 0] == torch.tensor([2, 3])).all(-1)
    outsider_moved = (got[:, 4] == torch.tensor([2, 3])).all(-1)
    assert not outsider_moved.any(), "(2,3)'s occupant cannot leave once (2,2) is blocked"
    rotated = torch.tensor(square[1:] + square[:1])
    assert (got[cycle_moved, :4] == rotated).all()
    assert (got[~cycle_moved, :4] == torch.tensor(square)).all()
    assert (got[:, 4] == torch.tensor([1, 3])).all()
    assert_binomial(int(cycle_moved.sum()), b, 0.5)
    assert_distinct(env)


# ---------------------------------------------------------------------------- the Decision case
def test_decision_contest_winner_stays_when_occupant_cannot_leave() -> None:
    """Contest for Y=(3,3); Y's occupant wants (4,3), held by an agent that stays."""
    b = 1000
    env = make(4, num_envs=b, seed=8)
    place(env, [(3, 2), (2, 3), (3, 3), (4, 3)], [RIGHT, DOWN, DOWN, UP])
    act(env, [MOVE_UP, MOVE_UP, MOVE_UP, STAY])
    assert cells_of(env).tolist() == [[[3, 2], [2, 3], [3, 3], [4, 3]]] * b
    assert_distinct(env)


def test_decision_occupant_loses_its_own_contest() -> None:
    """Y's occupant C contests Z with E. C wins: C leaves and one of A, B follows into Y.
    E wins: C stays and so do A and B (the contest winner for Y does not move in)."""
    b = 2000
    env = make(5, num_envs=b, seed=9)
    # A (3,2) and B (2,3) contest Y (3,3); C at Y goes down to Z (4,3); E at (5,3) goes up to Z
    place(env, [(3, 2), (2, 3), (3, 3), (5, 3), (1, 1)], [RIGHT, DOWN, DOWN, UP, UP])
    act(env, [MOVE_UP, MOVE_UP, MOVE_UP, MOVE_UP, STAY])
    got = cells_of(env)
    assert_distinct(env)
    c_moved = (got[:, 2] == torch.tensor([4, 3])).all(-1)
    e_moved = (got[:, 3] == torch.tensor([4, 3])).all(-1)
    assert torch.equal(c_moved ^ e_moved, torch.ones(b, dtype=torch.bool))
    into_y = (got[:, :2] == torch.tensor([3, 3])).all(-1)  # [B, 2]
    assert torch.equal(into_y.sum(1), c_moved.long())
    assert (got[~c_moved, :3] == torch.tensor([[3, 2], [2, 3], [3, 3]])).all()
    assert_binomial(int(c_moved.sum()), b, 0.5)
    assert_binomial(int(into_y[c_moved, 0].sum()), int(c_moved.sum()), 0.5)


def test_never_share_a_cell_in_crowded_random_play() -> None:
    b, n = 300, 9
    env = make(n, num_envs=b, size=6, seed=10)  # 16 cells for 9 agents
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        before = env.state.pos.clone()
        actions = torch.randint(0, 8, (b, n), generator=gen)
        _, _, done, _ = env.step(actions)
        assert_distinct(env)
        # every agent moved at most one cell (or not at all)
        d = env.state.pos - before
        assert torch.isin(d, torch.tensor([0, 1, -1, env.width, -env.width])).all()
        moved = d != 0
        assert not (moved & (actions > MOVE_DOWN)).any(), "non-move actions never move"
        assert not done.any()


# ---------------------------------------------------------------------------- resolve_moves directly
def rm(pos, target, wants, priority):
    t = lambda x, dt: torch.tensor([x], dtype=dt)  # noqa: E731
    out = resolve_moves(t(pos, torch.long), t(target, torch.long), t(wants, torch.bool), t(priority, torch.float64))
    return out[0].tolist()


def test_resolve_moves_free_cell_and_non_movers() -> None:
    assert rm([0, 5], [1, 5], [True, False], [0.1, 0.2]) == [True, False]
    assert rm([0], [0], [False], [0.3]) == [False]


def test_resolve_moves_contest_highest_priority_wins() -> None:
    assert rm([0, 2], [1, 1], [True, True], [0.9, 0.1]) == [True, False]
    assert rm([0, 2], [1, 1], [True, True], [0.1, 0.9]) == [False, True]
    assert rm([0, 2, 7], [1, 1, 1], [True, True, True], [0.2, 0.3, 0.8]) == [False, False, True]


def test_resolve_moves_contest_for_staying_agents_cell() -> None:
    # cell 1 holds agent 2, which stays: both contenders stay whatever the priorities
    assert rm([0, 2, 1], [1, 1, 1], [True, True, False], [0.9, 0.1, 0.5]) == [False, False, False]


def test_resolve_moves_swap_and_chain_and_cycle() -> None:
    assert rm([0, 1], [1, 0], [True, True], [0.5, 0.6]) == [False, False]  # swap
    assert rm([0, 1, 2], [1, 2, 3], [True, True, True], [0.1, 0.2, 0.3]) == [True, True, True]  # chain
    assert rm([0, 1, 2], [1, 2, 3], [True, True, False], [0.1, 0.2, 0.3]) == [False, False, False]  # blocked head
    assert rm([2, 1, 0], [3, 2, 1], [True, True, True], [0.3, 0.2, 0.1]) == [True, True, True]  # order-free
    assert rm([0, 1, 2], [1, 2, 0], [True, True, True], [0.1, 0.2, 0.3]) == [True, True, True]  # 3-cycle
    assert rm([0, 1, 11, 10], [1, 11, 10, 0], [True] * 4, [0.4, 0.3, 0.2, 0.1]) == [True] * 4  # 2x2


def test_resolve_moves_decision_case() -> None:
    # A (0) and B (2) contest cell 1 held by C, which wants cell 5 held by D (stays)
    assert rm([0, 2, 1, 5], [1, 1, 5, 5], [True, True, True, False], [0.9, 0.1, 0.5, 0.5]) == [False] * 4
    # C loses its own contest for cell 5 against E (from 6): A wins cell 1 but must stay
    out = rm([0, 2, 1, 6], [1, 1, 5, 5], [True, True, True, True], [0.9, 0.1, 0.2, 0.8])
    assert out == [False, False, False, True]
    # C wins its contest: C leaves and A (the higher priority) follows
    out = rm([0, 2, 1, 6], [1, 1, 5, 5], [True, True, True, True], [0.9, 0.1, 0.8, 0.2])
    assert out == [True, False, True, False]


def test_resolve_moves_batched_games_are_independent() -> None:
    pos = torch.tensor([[0, 1], [0, 1], [0, 5]])
    target = torch.tensor([[1, 0], [1, 2], [1, 1]])
    wants = torch.ones(3, 2, dtype=torch.bool)
    priority = torch.tensor([[0.1, 0.2], [0.1, 0.2], [0.7, 0.2]], dtype=torch.float64)
    out = resolve_moves(pos, target, wants, priority)
    assert out.tolist() == [[False, False], [True, True], [True, False]]
    assert out.dtype == torch.bool and out.shape == (3, 2)
