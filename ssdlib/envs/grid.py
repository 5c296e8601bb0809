"""The batched grid game: B games of one map stepped at once as torch tensors.

State is small and explicit (`GridState`). Every per-game grid is stored flat with two extra
cells at the end: OUT (= H*W) stands for every cell outside the map (a wall for rays, floor
for views) and DUMP (= H*W + 1) receives the writes of masked-out scatters. With those two
cells, a step is a fixed sequence of gathers, scatters and elementwise ops: no Python loop
over games or cells, and no host-device synchronisation apart from the action check.

One step (spec section 3): turns and moves with conflict resolution, apple consumption,
beams in a random order, spawning, then observations and rewards. Games reset themselves
when they reach the horizon and report it in `done`.
"""

import dataclasses
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
import torch

from . import palette
from .actions import check_actions
from .beams import ray_coverage
from .geometry import (
    ACTION_NAMES, BEAM_LENGTH, CLEAN, FIRE, STAY, TURN_CCW, TURN_CW, VIEW_RADIUS, VIEW_SIZE,
    beam_offsets, move_table, view_offsets,
)
from .maps import GridMap
from .movement import resolve_moves

PENALTY_REWARD = -50.0
FIRE_COST = -1.0


@dataclass
class GridState:
    """Everything that changes during an episode, for B games of N agents.

    pos: int64 [B, N] flat cell (row * W + col); orient: int64 [B, N] facing (0 UP .. 3 LEFT);
    apples, waste: bool [B, H*W+2]; beams: uint8 [B, H*W+2] palette index of the beam drawn
    in the last step (0 none); last_actions: int64 [B, N]; box_open: bool [B] and regrow:
    int8 [B, H*W+2] steps until an eaten apple is back (Box Trapped only, else None).
    """

    pos: torch.Tensor
    orient: torch.Tensor
    apples: torch.Tensor
    waste: torch.Tensor
    beams: torch.Tensor
    last_actions: torch.Tensor
    box_open: torch.Tensor | None = None
    regrow: torch.Tensor | None = None

    def tensors(self) -> list[torch.Tensor]:
        return [t for f in fields(self) if (t := getattr(self, f.name)) is not None]

    def by_name(self) -> dict[str, torch.Tensor | None]:
        """The fields by name, the tensors themselves (`dataclasses.asdict` deep-copies them)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Observation(NamedTuple):
    """Per-agent observations of B games.

    image: uint8 [B, N, 15, 15] palette indices of the egocentric view (forward is up);
    `rgb()` gives the RGB image. actions: int64 [B, N, N-1] the other agents' actions of the
    step just taken (STAY after a reset), in agent-id order without the observer.
    visible: bool [B, N, N-1] whether each other agent is inside the observer's 15x15 window.
    """

    image: torch.Tensor
    actions: torch.Tensor
    visible: torch.Tensor

    def rgb(self) -> torch.Tensor:
        """uint8 [B, N, 15, 15, 3]."""
        return palette.to_rgb(self.image)


def paint(image: torch.Tensor, mask: torch.Tensor, colour: int | torch.Tensor) -> torch.Tensor:
    """Palette image uint8 with `colour` where `mask` (bool): image + mask (colour - image),
    which wraps modulo 256 to exactly `colour` or `image`. On this CPU torch.where on uint8
    took 280 us at [64, 452], each uint8 op here 5 us."""
    return image + mask.view(torch.uint8) * (colour - image)


class GridGame:
    """Base class of Cleanup, Harvest and Box Trapped; subclasses add their own dynamics."""

    name: str = "grid"
    num_actions: int = 8
    default_horizon: int = 1000
    default_map: str = ""
    has_fire: bool = True
    has_clean: bool = False

    def __init__(
        self,
        grid_map: GridMap,
        num_envs: int,
        num_agents: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        horizon: int | None = None,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if isinstance(num_agents, bool) or not isinstance(num_agents, int) or num_agents < 1:
            raise ValueError(f"num_agents must be a positive int, got {num_agents!r}")
        if num_agents > palette.MAX_AGENTS:
            raise ValueError(f"num_agents={num_agents} exceeds the {palette.MAX_AGENTS} agent colours")
        horizon = self.default_horizon if horizon is None else horizon
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive int, got {horizon!r}")
        border = grid_map.rows[0] + grid_map.rows[-1] + "".join(r[0] + r[-1] for r in grid_map.rows)
        if set(border) != {"@"}:
            raise ValueError(f"map {grid_map.name!r} must be enclosed by walls '@'")
        self.map = grid_map
        self.num_envs, self.num_agents, self.horizon = num_envs, num_agents, horizon
        self.device = torch.device(device)
        self.height, self.width = grid_map.height, grid_map.width
        hw = self.height * self.width
        self.OUT, self.DUMP = hw, hw + 1
        self.spawn_points = self._flat_cells(grid_map, "P")
        self._check_spawn_points()

        dev = self.device
        wall = torch.zeros(hw + 2, dtype=torch.bool)
        wall[:hw] = torch.from_numpy(grid_map.mask("@").ravel())
        wall[self.OUT] = True
        self._wall = wall.to(dev)
        base = torch.full((hw + 2,), palette.FLOOR, dtype=torch.uint8)
        base[:hw][torch.from_numpy(grid_map.mask("HRS").ravel())] = palette.RIVER
        base[:hw][torch.from_numpy(grid_map.mask("@").ravel())] = palette.WALL
        self._base_image = base.to(dev)
        # move deltas in flat cells, [4, A]; valid because the map is enclosed by walls
        moves = move_table(self.num_actions)
        self._move_delta = (moves[..., 0] * self.width + moves[..., 1]).to(dev)
        self._ray_cells = self._cell_table(beam_offsets().flatten(1, 2)).to(dev)  # [HW*4, 15]
        self._view_cells = self._cell_table(view_offsets().flatten(1, 2)).to(dev)  # [HW*4, 225]
        eye = torch.eye(num_agents, dtype=torch.bool)
        self._others = torch.arange(num_agents).expand(num_agents, -1)[~eye].view(num_agents, -1).to(dev)
        self._agent_ids = torch.arange(num_agents, device=dev)

        # steps may branch on a value read back from the device only where that read is free
        self.branch_on_host = dev.type == "cpu"
        self._generator = torch.Generator(device=dev)
        self._generator.manual_seed(seed)
        self.t = 0
        self.state = self._initial_state()

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _flat_cells(grid_map: GridMap, chars: str) -> torch.Tensor:
        cells = grid_map.cells(chars)
        return torch.as_tensor(cells[:, 0] * grid_map.width + cells[:, 1], dtype=torch.long)

    def _check_spawn_points(self) -> None:
        if self.num_agents > len(self.spawn_points):
            raise ValueError(
                f"num_agents={self.num_agents} exceeds the {len(self.spawn_points)} spawn points "
                f"of map {self.map.name!r}"
            )

    def _cell_table(self, offsets: torch.Tensor) -> torch.Tensor:
        """Flat cell [H*W*4, K] of `offsets` [4, K, 2] seen from every cell and facing."""
        h, w = self.height, self.width
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        r = rows.reshape(-1, 1, 1) + offsets[None, :, :, 0]  # [HW, 4, K]
        c = cols.reshape(-1, 1, 1) + offsets[None, :, :, 1]
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        return torch.where(inside, r * w + c, self.OUT).reshape(h * w * 4, -1)

    def _rand(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.rand(*shape, generator=self._generator, device=self.device, dtype=dtype)

    def _grid(self, mask: np.ndarray) -> torch.Tensor:
        """A bool [B, H*W+2] grid, True on `mask` [H, W] in every game."""
        flat = torch.zeros(self.height * self.width + 2, dtype=torch.bool)
        flat[: self.height * self.width] = torch.from_numpy(mask.ravel())
        return flat.to(self.device).expand(self.num_envs, -1).clone()

    def _initial_state(self) -> GridState:
        """Agents on distinct random spawn points in id order, random facings (spec 9)."""
        b, n = self.num_envs, self.num_agents
        choice = self._rand(b, len(self.spawn_points)).argsort(1)[:, :n]
        pos = self.spawn_points.to(self.device)[choice]
        orient = torch.randint(0, 4, (b, n), generator=self._generator, device=self.device)
        empty = torch.zeros(b, self.height * self.width + 2, dtype=torch.bool, device=self.device)
        return GridState(
            pos=pos,
            orient=orient,
            apples=empty.clone(),
            waste=empty.clone(),
            beams=torch.zeros_like(empty, dtype=torch.uint8),
            last_actions=torch.full((b, n), STAY, dtype=torch.long, device=self.device),
        )

    # ------------------------------------------------------------------ public API
    def reset(self, seed: int | None = None) -> Observation:
        """Start new episodes in all games (reseeding first if `seed` is given)."""
        if seed is not None:
            self._generator.manual_seed(seed)
        self.t = 0
        self.state = self._initial_state()
        return self.observe()

    def step(self, actions: torch.Tensor, check_range: bool = True
             ) -> tuple[Observation, torch.Tensor, torch.Tensor, dict]:
        """Advance every game by one step.

        actions: integer tensor [B, N] on the env's device; `check_range=False` skips the
        range check, the step's only read of the device (`check_actions`). Returns (obs, rewards float32
        [B, N], done bool [B], info) where info holds per-agent event counts of this step
        (int64 [B, N]): apples eaten, fire and clean used, penalty hits taken, waste cells
        cleaned (and the box opened, in Box Trapped). Games that reach the horizon are reset
        and `obs` is then the first observation of the next episode.
        """
        a = check_actions(actions, self.num_envs, self.num_agents, self.num_actions, self.device, self.name,
                          check_range)
        rewards, info = self.advance(a)
        done = self.count_step()
        return self.observe(), rewards, done, info

    def advance(self, a: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The device part of a step, from checked actions int64 [B, N]: the state's dynamics,
        the rewards float32 [B, N] and the event counts (`step`). Reads nothing back from the
        device unless `branch_on_host`, and neither the step counter nor the host."""
        s = self.state
        info = self._before_moves(a)

        # 1. turns and moves
        turn = (a == TURN_CW).long() - (a == TURN_CCW).long()
        target = s.pos + self._move_delta[s.orient, a]
        wants = (target != s.pos) & ~self._blocked(target)
        target = torch.where(wants, target, s.pos)
        priority = self._rand(*a.shape, dtype=torch.float64)
        moving = resolve_moves(s.pos, target, wants, priority)
        s.pos = torch.where(moving, target, s.pos)
        s.orient = (s.orient + turn) % 4

        # 2. apple consumption
        eaten = s.apples.gather(1, s.pos)
        s.apples.scatter_(1, s.pos, False)
        self._after_eating(eaten)

        # 3. beams
        hits, cleaned = self._cast_beams(a)

        # 4. spawning
        self._spawn()

        # 5. rewards and observations
        fire = (a == FIRE) & self.has_fire
        info.update(
            apples=eaten.long(),
            fire=fire.long(),
            hits=hits,
            clean=((a == CLEAN) & self.has_clean).long(),
            cleaned=cleaned,
        )
        rewards = eaten.float() + FIRE_COST * fire.float() + PENALTY_REWARD * hits.float()
        s.last_actions = a.long()
        return rewards, info

    def count_step(self) -> torch.Tensor:
        """The host part of a step, after `advance`: the step counter, and at the horizon every
        game's reset. Returns done, bool [B] (the same in every game)."""
        self.t += 1
        episode_over = self.t >= self.horizon
        done = torch.full((self.num_envs,), episode_over, dtype=torch.bool, device=self.device)
        if episode_over:
            self.t = 0
            self.state = self._initial_state()
        return done

    def observe(self) -> Observation:
        """Observations of the current state."""
        s = self.state
        b, n = s.pos.shape
        image = self._image()
        cells = self._view_cells.index_select(0, (s.pos * 4 + s.orient).view(-1))  # [B*N, 225]
        view = image.gather(1, cells.view(b, -1)).view(b, n, VIEW_SIZE, VIEW_SIZE)
        row, col = s.pos // self.width, s.pos % self.width
        near = ((row[:, :, None] - row[:, None, :]).abs() <= VIEW_RADIUS) & (
            (col[:, :, None] - col[:, None, :]).abs() <= VIEW_RADIUS
        )
        others = self._others.expand(b, -1, -1)
        return Observation(view, s.last_actions[:, self._others], near.gather(2, others))

    def snapshot(self) -> dict:
        """Everything that decides the games' future: state, step counter and RNG state, as
        tensors and ints (what a checkpoint stores)."""
        return {"state": dataclasses.asdict(self.state), "t": self.t, "generator": self._generator.get_state()}

    def restore(self, snapshot: dict) -> Observation:
        """Continue from a `snapshot` of a game of the same shape; returns the observation."""
        self.state = GridState(**snapshot["state"])
        self.t = int(snapshot["t"])
        self._generator.set_state(snapshot["generator"].cpu())
        return self.observe()

    def render(self, index: int = 0) -> np.ndarray:
        """The full map of game `index` as RGB uint8 [H, W, 3], agents and beams drawn."""
        if not 0 <= index < self.num_envs:
            raise ValueError(f"game index {index} is outside 0..{self.num_envs - 1}")
        hw = self.height * self.width
        image = self._image()[index, :hw].view(self.height, self.width)
        return palette.to_rgb(image).cpu().numpy()

    def num_apples(self) -> torch.Tensor:
        """Apples on the map per game, int64 [B]."""
        return self.state.apples[:, : self.height * self.width].sum(1)

    def num_waste(self) -> torch.Tensor:
        """Waste cells per game, int64 [B] (zeros in games without waste)."""
        return self.state.waste[:, : self.height * self.width].sum(1)

    def state_bytes_per_game(self) -> int:
        """Bytes of episode state per game (the tensors of `GridState`)."""
        total = sum(t.numel() * t.element_size() for t in self.state.tensors())
        return total // self.num_envs

    @property
    def action_names(self) -> tuple[str, ...]:
        return ACTION_NAMES[: self.num_actions]

    # ------------------------------------------------------------------ step parts
    def _blocked(self, target: torch.Tensor) -> torch.Tensor:
        """Whether each target cell [B, N] is a wall."""
        return self._wall[target]

    def _before_moves(self, actions: torch.Tensor) -> dict:
        """Game-specific effects applied before moves; returns extra info entries."""
        return {}

    def _after_eating(self, eaten: torch.Tensor) -> None:
        """Game-specific bookkeeping of the apples eaten this step."""

    def _spawn(self) -> None:
        """Game-specific spawning after beams (spec sections 6 and 7)."""

    def _cast_beams(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cast every CLEAN and FIRE beam; returns penalty rays taken and waste cleaned, [B, N].

        Beams are processed one firer after another in a uniformly random order, each one's
        map changes applied before the next. Only CLEAN changes the map, so FIRE rays are
        independent of the order and are cast for all firers at once.
        """
        s = self.state
        b, n = actions.shape
        hits = torch.zeros(b, n + 1, dtype=torch.long, device=self.device)
        cleaned = torch.zeros(b, n, dtype=torch.long, device=self.device)
        s.beams = torch.zeros_like(s.beams)
        if not (self.has_fire or self.has_clean):
            return hits[:, :n], cleaned
        cells = self._ray_cells.index_select(0, (s.pos * 4 + s.orient).view(-1)).view(b, n, 3, BEAM_LENGTH)
        wall = self._wall.take(cells)
        who = torch.full_like(s.beams, n, dtype=torch.long).scatter_(1, s.pos, self._agent_ids.expand(b, -1))
        who = who.gather(1, cells.view(b, -1)).view(b, n, 3, BEAM_LENGTH)
        agent_here = who < n

        if self.has_clean:
            order = self._rand(b, n).argsort(1)
            cleaning = actions == CLEAN
            if not (self.branch_on_host and self._clean_beams_at_once(cells, wall, agent_here, cleaning, cleaned)):
                self._clean_beams_in_order(cells, wall, agent_here, cleaning, order, cleaned)

        if self.has_fire:
            covered = ray_coverage(wall, agent_here) & (actions == FIRE)[:, :, None, None]
            target = torch.where(covered & agent_here, who, n)
            hits.scatter_add_(1, target.view(b, -1), torch.ones_like(target.view(b, -1)))
            s.beams.scatter_(1, torch.where(covered, cells, self.DUMP).view(b, -1), palette.PENALTY_BEAM)
        return hits[:, :n], cleaned

    def _clean_beams_in_order(self, cells: torch.Tensor, wall: torch.Tensor, agent_here: torch.Tensor,
                              cleaning: torch.Tensor, order: torch.Tensor, cleaned: torch.Tensor) -> None:
        """The CLEAN beams one firer after another in `order` [B, N] (spec 3 and 5), each
        against the waste its predecessors left; adds each firer's cleaned cells to `cleaned`.
        cells, wall, agent_here: [B, N, 3, L] every agent's ray cells and what is on them."""
        s = self.state
        b, n = cleaning.shape
        for rank in range(n):
            k = order[:, rank : rank + 1]  # [B, 1] the agent firing at this rank
            kk = k[:, :, None, None].expand(b, 1, 3, BEAM_LENGTH)
            c = cells.gather(1, kk).view(b, -1)
            waste = s.waste.gather(1, c)
            covered = ray_coverage(
                wall.gather(1, kk).view(b, 3, BEAM_LENGTH),
                agent_here.gather(1, kk).view(b, 3, BEAM_LENGTH) | waste.view(b, 3, BEAM_LENGTH),
            ).view(b, -1) & cleaning.gather(1, k)
            now_clean = covered & waste
            s.waste.scatter_(1, torch.where(now_clean, c, self.DUMP), False)
            cleaned.scatter_add_(1, k, now_clean.sum(1, keepdim=True))
            s.beams.scatter_(1, torch.where(covered, c, self.DUMP), palette.CLEAN_BEAM)

    def _clean_beams_at_once(self, cells: torch.Tensor, wall: torch.Tensor, agent_here: torch.Tensor,
                             cleaning: torch.Tensor, cleaned: torch.Tensor) -> bool:
        """Every CLEAN beam cast against the waste before any of them, applied only where that
        equals `_clean_beams_in_order` in every game; returns whether it was applied.

        The order matters only through a waste cell that one ray cleans (the ray's last
        covered cell) and another cleaning ray covers: cleaned first, it would let the other
        ray through. If no ray's cleaned cell is covered by a second ray, then by induction
        over any order each ray covers and cleans exactly what it does against the initial
        waste. The check is a read on the host, so only `branch_on_host` envs (CPU) try this.
        """
        s = self.state
        b = cells.shape[0]
        c = cells.view(b, -1)
        waste = s.waste.gather(1, c).view(cells.shape)
        covered = ray_coverage(wall, agent_here | waste) & cleaning[:, :, None, None]
        now_clean = (covered & waste).view(b, -1)
        covered = covered.view(b, -1)
        target = torch.where(covered, c, self.DUMP)
        rays_over = torch.zeros(s.waste.shape, dtype=torch.uint8, device=self.device)
        rays_over.scatter_add_(1, target, torch.ones_like(target, dtype=torch.uint8))
        if bool((now_clean & (rays_over.gather(1, c) > 1)).any()):
            return False
        s.waste.scatter_(1, torch.where(now_clean, c, self.DUMP), False)
        cleaned += now_clean.view(cells.shape).sum((2, 3))
        s.beams.scatter_(1, target, palette.CLEAN_BEAM)
        return True

    def _grow_apples(self, cells: torch.Tensor, grow: torch.Tensor) -> None:
        """New apples on the flat `cells` [C] where `grow` [B, C], each of which must be
        empty: added as 0/1 bytes, which on CPU is about 4x faster than `|=` through
        advanced indexing."""
        self.state.apples.view(torch.uint8).index_add_(1, cells, grow.view(torch.uint8))

    def _occupied(self) -> torch.Tensor:
        """bool [B, H*W+2]: cells that hold an agent."""
        s = self.state
        return torch.zeros_like(s.apples).scatter_(1, s.pos, True)

    def _image(self) -> torch.Tensor:
        """Palette image uint8 [B, H*W+2] of the state: map, apples, beams, then agents."""
        s = self.state
        b, n = s.pos.shape
        image = paint(self._base_image.expand(b, -1), s.waste, palette.WASTE)
        image = paint(image, s.apples, palette.APPLE)
        image = self._draw_extra(image)
        image = paint(image, s.beams.bool(), s.beams)
        agents = (palette.AGENT + self._agent_ids).to(torch.uint8).expand(b, -1)
        return image.scatter(1, s.pos, agents)

    def _draw_extra(self, image: torch.Tensor) -> torch.Tensor:
        """Game-specific map features drawn under beams and agents."""
        return image
