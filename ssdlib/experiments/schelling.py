"""Figure 10: empirical Schelling diagrams of Cleanup and Harvest, from scripted policies.

A Schelling diagram (Schelling 1973; Perolat et al. 2017; Hughes et al. 2018) plots the mean
return of one agent that cooperates, and of one that defects, against how many of the other
N − 1 agents cooperate. The paper's Figure 10 reproduces Hughes et al.'s diagrams, made from
their trained policies; ours are made from scripted policies, which are cheap and whose rules
can be read in full:

- Cleanup. A *defector* only collects apples (the nearest apple; with no apple on the map it
  walks to the orchard and waits). A *cooperator* keeps the river clean: while cleaning it
  walks to the nearest waste, turns to face it and fires the cleaning beam; once the waste
  density has fallen to CLEAN_UNTIL it collects apples like a defector, until the density has
  climbed back to CLEAN_FROM. (A cooperator that only cleaned would earn nothing ever, so
  every mix would pay it zero: the diagram would say nothing about the dilemma.)
- Harvest. A *defector* eats the nearest apple, every apple. A *cooperator* harvests
  sustainably: it eats an apple only if at least SUSTAINABLE_NEIGHBOURS other apples stay in
  that apple's regrowth neighbourhood (so the cell can grow back), and walks around the
  apples it spares (stepping on an apple eats it).
- Nobody ever fires the penalty beam, so the diagrams show the dilemma of the resource alone.

The policies read the full game state (`env.state`), not the agents' egocentric views, and
act in every game of a batched env at once: distances to the targets come from a multi-source
breadth-first search run as repeated min-relaxation over the 4-neighbourhood of the flat
grid (`distance_fields`); an agent steps to a free neighbouring cell that is one step nearer.

The experiment (`play_mixes`) plays `games` games for every number of cooperators 0..N in
one batched env, one episode each. In each game the cooperators' agent slots are drawn at
random (and the env places agents on random spawn points), so no slot or start is favoured.
`schelling_table` gives, for x = 0..N−1 other cooperators, the mean return of a cooperator
(games with x + 1 cooperators, each game's cooperators averaged) and of a defector (games with
x cooperators), with a Student-t confidence interval over games (CONFIDENCE = 99.5%, the
book's error bars); `dilemma_criteria` states which of the Schelling-diagram criteria hold.

    python -m ssdlib.experiments.schelling --out results/tables/schelling/schelling.csv
    python -m ssdlib.experiments.schelling harvest --games 8 --horizon 200

With its defaults (GAMES_PER_MIX games per mix, seed SEED, 1000-step episodes, CPU) the
command writes the table that the book's chapter saves on the cpu preset, number for number.
"""

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import metrics
from ..envs import GridGame, make_env
from ..envs.beams import ray_coverage
from ..envs.geometry import BEAM_LENGTH, CLEAN, FORWARD, STAY, TURN_CCW, TURN_CW, beam_offsets, move_table
from ..envs.harvest import neighbourhood_offsets
from ..runs import atomic_write

GAMES = ("cleanup", "harvest")
NUM_AGENTS = 5  # the paper's N
ROLES = ("cooperator", "defector")
GAMES_PER_MIX = 32  # games played for each number of cooperators
SEED = 0
CONFIDENCE = 0.995  # the book's error bars: a 99.5% Student-t interval
CLEAN_UNTIL = 0.1  # Cleanup: a cleaning cooperator goes harvesting at or below this waste density
CLEAN_FROM = 0.25  # Cleanup: a harvesting cooperator goes back to clean at or above this density
SUSTAINABLE_NEIGHBOURS = 3  # Harvest: other apples a cooperator leaves around an apple it eats
COLUMNS = ("game", "cooperators_others", "role", "mean_return", "ci_low", "ci_high", "games")


# ---------------------------------------------------------------------------- grid geometry
def neighbour_table(height: int, width: int) -> torch.Tensor:
    """Flat cell [H*W, 4] of each cell's neighbour UP, RIGHT, DOWN, LEFT (the facing order).

    Off the map a neighbour is the cell itself: the maps are enclosed by walls, so only wall
    cells, where no agent stands, have such neighbours.
    """
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    r = rows.reshape(-1, 1) + FORWARD[None, :, 0]
    c = cols.reshape(-1, 1) + FORWARD[None, :, 1]
    inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
    return torch.where(inside, r * width + c, (rows * width + cols).reshape(-1, 1))


def offset_table(height: int, width: int, offsets: torch.Tensor) -> torch.Tensor:
    """Flat cell [H*W, K] at each of `offsets` [K, 2] (row, col) from every cell; H*W (the
    env's OUT cell, see `ssdlib.envs.grid`) where that falls off the map."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    r = rows.reshape(-1, 1) + offsets[None, :, 0]
    c = cols.reshape(-1, 1) + offsets[None, :, 1]
    inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
    return torch.where(inside, r * width + c, height * width)


def move_actions(num_actions: int) -> torch.Tensor:
    """Action [4 facings, 4 directions] that moves an agent with that facing one cell in that
    absolute direction (UP, RIGHT, DOWN, LEFT): moves are egocentric (spec section 2), so the
    move table is inverted once here."""
    table = move_table(num_actions)[:, :4]  # [4 facings, 4 move actions, 2]
    match = (table[:, None, :, :] == FORWARD[None, :, None, :]).all(-1)  # [facing, direction, action]
    return match.float().argmax(-1)


def distance_fields(targets: torch.Tensor, passable: torch.Tensor) -> torch.Tensor:
    """Steps [..., H, W] from every cell to its nearest target, walking through passable cells
    (inf where no target can be reached, and on cells that are not passable).

    A multi-source breadth-first search, vectorised: start at 0 on the targets and relax every
    cell to one more than its nearest 4-neighbour until nothing changes (as many rounds as the
    longest distance). targets, passable: bool [..., H, W]. Shifted slices stand for the
    neighbours (nothing lies beyond the grid's edge).
    """
    inf = torch.tensor(math.inf, device=targets.device)
    dist = torch.where(targets & passable, 0.0, inf)
    while True:
        nearest = dist.clone()
        torch.minimum(nearest[..., 1:, :], dist[..., :-1, :], out=nearest[..., 1:, :])
        torch.minimum(nearest[..., :-1, :], dist[..., 1:, :], out=nearest[..., :-1, :])
        torch.minimum(nearest[..., :, 1:], dist[..., :, :-1], out=nearest[..., :, 1:])
        torch.minimum(nearest[..., :, :-1], dist[..., :, 1:], out=nearest[..., :, :-1])
        relaxed = torch.where(passable, nearest + 1, inf).minimum(dist)
        if torch.equal(relaxed, dist):
            return dist
        dist = relaxed


# ---------------------------------------------------------------------------- policies
class ScriptedPolicy:
    """The cooperators and defectors of one game type, in every game of a batched env.

    `cooperators`: bool [B, N], which agent of each game cooperates (the others defect). Call
    `act()` once per step, before `env.step`; `reset()` before a new episode.
    """

    def __init__(self, env: GridGame, cooperators: torch.Tensor, seed: int = SEED,
                 clean_until: float = CLEAN_UNTIL, clean_from: float = CLEAN_FROM,
                 sustainable_neighbours: int = SUSTAINABLE_NEIGHBOURS) -> None:
        if env.name not in GAMES:
            raise ValueError(f"scripted policies play {list(GAMES)}, not {env.name!r}")
        shape = (env.num_envs, env.num_agents)
        if not (isinstance(cooperators, torch.Tensor) and cooperators.dtype == torch.bool
                and tuple(cooperators.shape) == shape):
            got = (f"a {cooperators.dtype} tensor of shape {tuple(cooperators.shape)}"
                   if isinstance(cooperators, torch.Tensor) else type(cooperators).__name__)
            raise ValueError(f"cooperators must be a bool tensor of shape {shape}, got {got}")
        if not 0.0 <= clean_until < clean_from <= 1.0:
            raise ValueError(f"need 0 <= clean_until < clean_from <= 1, got clean_until={clean_until}, "
                             f"clean_from={clean_from}")
        if (isinstance(sustainable_neighbours, bool) or not isinstance(sustainable_neighbours, int)
                or sustainable_neighbours < 0):
            raise ValueError(f"sustainable_neighbours must be an int >= 0, got {sustainable_neighbours!r}")
        self.env = env
        dev = env.device
        self.cooperators = cooperators.to(dev)
        self.clean_until, self.clean_from = clean_until, clean_from
        self.sustainable_neighbours = sustainable_neighbours
        h, w = env.height, env.width
        self.cells = h * w
        self._neighbours = neighbour_table(h, w).to(dev)
        wall = torch.ones(self.cells + 1, dtype=torch.bool)  # index H*W: the env's OUT cell
        wall[: self.cells] = torch.from_numpy(env.map.mask("@").ravel())
        self._wall = wall.to(dev)
        self._open = ~self._wall[: self.cells]  # [H*W] cells an agent can stand on
        self._move = move_actions(env.num_actions).to(dev)
        if env.name == "cleanup":
            beam = offset_table(h, w, beam_offsets().flatten(1, 2).view(-1, 2))  # [H*W, 4 facings * 15]
            self._beam = beam.view(self.cells, 4, -1).to(dev)
            self._orchard = torch.from_numpy(env.map.mask("B").ravel()).to(dev)
        else:
            self._regrowth = offset_table(h, w, neighbourhood_offsets(env.neighbourhood)).to(dev)
        self._generator = torch.Generator(device=dev).manual_seed(seed)
        self.reset()

    def reset(self) -> None:
        """Back to the start of an episode: Cleanup's cooperators start by cleaning (the
        river starts polluted)."""
        self.cleaning = self.cooperators.clone()

    def act(self) -> torch.Tensor:
        """The actions [B, N] of every agent for the env's current state."""
        if self.env.name == "cleanup":
            return self._act_cleanup()
        return self._act_harvest()

    # ------------------------------------------------------------------ Cleanup
    def _act_cleanup(self) -> torch.Tensor:
        """Defectors and harvesting cooperators collect apples; cleaning cooperators clean.

        Cleaning is decided for all cooperators of a game together, with hysteresis on the
        waste density (`_update_cleaning`), so they do not dither between river and orchard.
        """
        s = self.env.state
        self._update_cleaning(self.env.waste_density())
        apples = s.apples[:, : self.cells]
        no_apple = ~apples.any(1, keepdim=True)
        harvest_targets = apples | (no_apple & self._orchard)  # no apple: go and wait in the orchard
        targets = torch.stack([harvest_targets, s.waste[:, : self.cells]], 1)  # [B, 2, H*W]
        dist = self._distances(targets, self._open.expand_as(targets))
        actions = self._walk(dist, self.cleaning.long())
        clean_action = self._clean_or_turn()
        return torch.where(self.cleaning & (clean_action >= 0), clean_action, actions)

    def _update_cleaning(self, density: torch.Tensor) -> None:
        """A cooperator cleans from the moment the waste density reaches `clean_from` until
        it falls to `clean_until`: a band, so that a few waste cells more or less do not send
        it back and forth across the map."""
        start = (density >= self.clean_from)[:, None]
        keep = (density > self.clean_until)[:, None]
        self.cleaning = self.cooperators & (start | (self.cleaning & keep))

    def _clean_or_turn(self) -> torch.Tensor:
        """CLEAN when the beam in the agent's facing would clean some waste; else a turn
        towards the facing that cleans the most (the nearest turn on ties); -1 when no facing
        reaches any waste.

        A beam's rays stop at walls, agents and the first waste cell (`ray_coverage`), as in
        the game, so "would clean" is exactly what CLEAN would do this step.
        """
        s = self.env.state
        b, n = s.pos.shape
        cells = self._beam[s.pos]  # [B, N, 4 facings, 3 * BEAM_LENGTH]
        flat = cells.view(b, -1)
        occupied = torch.zeros_like(s.waste).scatter_(1, s.pos, True)
        waste = s.waste.gather(1, flat).view(b, n, 4, 3, BEAM_LENGTH)
        agents = occupied.gather(1, flat).view(b, n, 4, 3, BEAM_LENGTH)
        covered = ray_coverage(self._wall[cells].view(b, n, 4, 3, BEAM_LENGTH), agents | waste)
        cleaned = (covered & waste).sum((-1, -2))  # [B, N, 4] waste cells a CLEAN facing that way removes
        ahead = cleaned.gather(-1, s.orient[..., None]).squeeze(-1)
        turns = (torch.arange(4, device=s.pos.device) - s.orient[..., None]) % 4  # clockwise quarter turns
        cost = torch.minimum(turns, 4 - turns)
        best = torch.where(cleaned > 0, 4 * cleaned - cost, -1).argmax(-1)  # [B, N]
        turn = torch.where((best - s.orient) % 4 == 3, TURN_CCW, TURN_CW)
        action = torch.where(ahead > 0, CLEAN, turn)
        return torch.where(cleaned.amax(-1) > 0, action, -1)

    # ------------------------------------------------------------------ Harvest
    def _act_harvest(self) -> torch.Tensor:
        """Defectors walk to the nearest apple through anything; cooperators to the nearest
        apple they may eat (`sustainable_apples`), around the apples they spare."""
        apples = self.env.state.apples[:, : self.cells]
        edible = self.sustainable_apples(self.env.state.apples)
        targets = torch.stack([apples, edible], 1)  # [B, 2, H*W]
        passable = torch.stack([self._open.expand_as(apples), self._open & ~(apples & ~edible)], 1)
        dist = self._distances(targets, passable)
        return self._walk(dist, self.cooperators.long())

    def sustainable_apples(self, apples: torch.Tensor) -> torch.Tensor:
        """Apples [B, H*W] a cooperator may eat: those with at least `sustainable_neighbours`
        other apples in their regrowth neighbourhood. An apple cell regrows with a probability
        set by the apples around it and never with none (spec section 6), so an apple eaten
        with none left around it kills its cell for the rest of the episode.

        apples: the env's apple grid [B, H*W+2] (its OUT cell holds no apple).
        """
        around = apples[:, self._regrowth].sum(-1) - apples[:, : self.cells].long()
        return apples[:, : self.cells] & (around >= self.sustainable_neighbours)

    # ------------------------------------------------------------------ walking
    def _distances(self, targets: torch.Tensor, passable: torch.Tensor) -> torch.Tensor:
        """`distance_fields` of flat grids [B, F, H*W], flat again."""
        grid = (*targets.shape[:-1], self.env.height, self.env.width)
        return distance_fields(targets.reshape(grid), passable.reshape(grid)).flatten(-2)

    def _walk(self, dist: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
        """A move one cell nearer to the agent's targets, along distance field `field` [B, N]
        of `dist` [B, F, H*W]; STAY on a target, when no target is reachable, or when every
        nearer neighbouring cell holds another agent.

        Equally near cells are chosen between at random, so that agents that meet do not
        block each other for good.
        """
        s = self.env.state
        b, n = s.pos.shape
        flat = dist.view(b, -1)
        base = field * self.cells
        here = flat.gather(1, base + s.pos)  # [B, N]
        steps = self._neighbours[s.pos]  # [B, N, 4] neighbour cells, by direction
        ahead = flat.gather(1, (base[..., None] + steps).view(b, -1)).view(b, n, 4)
        occupied = torch.zeros_like(s.apples).scatter_(1, s.pos, True)
        free = ~occupied.gather(1, steps.view(b, -1)).view(b, n, 4)
        nearer = free & (ahead < here[..., None])
        noise = torch.rand(b, n, 4, generator=self._generator, device=s.pos.device)
        direction = torch.where(nearer, noise, -1.0).argmax(-1)
        move = self._move[s.orient, direction]
        return torch.where(nearer.any(-1), move, STAY)


# ---------------------------------------------------------------------------- the experiment
def cooperator_mask(num_games: int, num_agents: int, games: int, generator: torch.Generator) -> torch.Tensor:
    """bool [num_games, num_agents]: game i has i // games cooperators, in agent slots drawn
    uniformly at random per game, so that no slot (and no spawn order) is favoured."""
    count = torch.arange(num_games) // games
    rank = torch.rand(num_games, num_agents, generator=generator).argsort(1).argsort(1)
    return rank < count[:, None]


@torch.no_grad()
def play_mixes(game: str, games: int = GAMES_PER_MIX, seed: int = SEED, device: str = "cpu",
               **options) -> pd.DataFrame:
    """`games` games for every number of cooperators 0..N (N = NUM_AGENTS), one episode each,
    all in one batched env. One row per game:

    game, cooperators (in the game), index (of the game among those with as many
    cooperators), cooperator_return and defector_return (the mean return of the game's
    cooperators and of its defectors; NaN where it has none), average_return (over all N
    agents), cleaned (waste cells cleaned), apples (apples on the map, mean over the episode),
    waste (waste cells, mean over the episode; 0 in Harvest). `options` go to `make_env`
    (e.g. `horizon`).
    """
    if game not in GAMES:
        raise ValueError(f"unknown game {game!r}; Schelling diagrams are made for {list(GAMES)}")
    if isinstance(games, bool) or not isinstance(games, int) or games < 2:
        raise ValueError(f"games must be an int >= 2 (a confidence interval needs two games), got {games!r}")
    n = NUM_AGENTS
    env = make_env(game, num_envs=(n + 1) * games, num_agents=n, device=device, seed=seed, **options)
    generator = torch.Generator().manual_seed(seed)
    cooperators = cooperator_mask(env.num_envs, n, games, generator).to(env.device)
    policy = ScriptedPolicy(env, cooperators, seed=seed)
    returns = torch.zeros(env.num_envs, n, device=env.device)
    cleaned = torch.zeros(env.num_envs, device=env.device)
    apples = torch.zeros(env.num_envs, device=env.device)
    waste = torch.zeros(env.num_envs, device=env.device)
    for _ in range(env.horizon):  # the env resets every game after the last step
        apples += env.num_apples()
        waste += env.num_waste()
        _, rewards, _, info = env.step(policy.act())
        returns += rewards
        cleaned += info["cleaned"].sum(1)
    coop = cooperators.float()
    count = coop.sum(1)
    coop_return = ((returns * coop).sum(1) / count).cpu().numpy()  # 0 / 0: NaN where none
    defect_return = ((returns * (1 - coop)).sum(1) / (n - count)).cpu().numpy()
    return pd.DataFrame({
        "game": game,
        "cooperators": count.long().cpu().numpy(),
        "index": np.arange(env.num_envs) % games,
        "cooperator_return": coop_return,
        "defector_return": defect_return,
        "average_return": returns.mean(1).cpu().numpy(),
        "cleaned": cleaned.cpu().numpy(),
        "apples": (apples / env.horizon).cpu().numpy(),
        "waste": (waste / env.horizon).cpu().numpy(),
    })


def mean_ci(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence bounds over independent games (ddof = 1)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"a confidence interval needs >= 2 values in one dimension, got shape {values.shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    mean = float(values.mean())
    half = metrics.student_t_ppf(0.5 * (1 + confidence), len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def role_table(per_game: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """The Schelling diagram's points: per game type, number x of other cooperators and role,
    the mean return of one agent in that role and its confidence interval over games.

    A cooperator with x other cooperators plays in a game with x + 1 cooperators, a defector
    in one with x; each game counts once (its agents of that role averaged).
    """
    rows = []
    for game, frame in per_game.groupby("game", sort=False):
        agents = int(frame.cooperators.max())
        for others in range(agents):
            for role, cooperators in zip(ROLES, (others + 1, others)):
                values = frame.loc[frame.cooperators == cooperators, f"{role}_return"].to_numpy()
                mean, low, high = mean_ci(values, confidence)
                rows.append((game, others, role, mean, low, high, len(values)))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def average_table(per_game: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per game type and number of cooperators 0..N: the mean return per agent (the
    collective return / N) and its confidence interval over games."""
    rows = []
    for (game, cooperators), frame in per_game.groupby(["game", "cooperators"], sort=False):
        mean, low, high = mean_ci(frame.average_return.to_numpy(), confidence)
        rows.append((game, int(cooperators), mean, low, high, len(frame)))
    return pd.DataFrame(rows, columns=["game", "cooperators", "mean_return", "ci_low", "ci_high", "games"])


def schelling_table(game: str, games: int = GAMES_PER_MIX, seed: int = SEED, device: str = "cpu",
                    confidence: float = CONFIDENCE, **options) -> pd.DataFrame:
    """The Schelling diagram of `game` (`role_table` of `play_mixes`): columns game,
    cooperators_others, role, mean_return, ci_low, ci_high, games."""
    return role_table(play_mixes(game, games, seed, device, **options), confidence)


def dilemma_criteria(table: pd.DataFrame) -> pd.DataFrame:
    """Which Schelling-diagram criteria hold, per game, from a `role_table`.

    With C(x), D(x) a cooperator's and a defector's mean return when x of the other N − 1
    agents cooperate: (1) mutual cooperation beats mutual defection, C(N−1) > D(0); (2) mutual
    cooperation beats being exploited, C(N−1) > C(0); (3) fear, D(0) > C(0); (4) greed,
    D(N−1) > C(N−1); (5) defection pays at every x, D(x) > C(x) for x = 0..N−1. Hughes et al.
    call a game a social dilemma when (1), (2) and (3) or (4) hold; the stricter reading asks
    (1) and (5). Columns: game, criterion, formula, values (the compared means), holds (the
    means compare so), clear (the confidence intervals do not overlap either).
    """
    rows = []
    for game, frame in table.groupby("game", sort=False):
        c = frame[frame.role == "cooperator"].set_index("cooperators_others")
        d = frame[frame.role == "defector"].set_index("cooperators_others")
        top = int(c.index.max())
        checks = {
            "mutual cooperation beats mutual defection": ("C(N−1) > D(0)", [(c.loc[top], d.loc[0])]),
            "mutual cooperation beats being exploited": ("C(N−1) > C(0)", [(c.loc[top], c.loc[0])]),
            "fear": ("D(0) > C(0)", [(d.loc[0], c.loc[0])]),
            "greed": ("D(N−1) > C(N−1)", [(d.loc[top], c.loc[top])]),
            "defection pays at every x": ("D(x) > C(x), x = 0..N−1", [(d.loc[x], c.loc[x]) for x in c.index]),
        }
        for name, (formula, pairs) in checks.items():
            values = "; ".join(f"{a.mean_return:.1f} vs {b.mean_return:.1f}" for a, b in pairs)
            holds = all(a.mean_return > b.mean_return for a, b in pairs)
            clear = all(a.ci_low > b.ci_high for a, b in pairs)
            rows.append((game, name, formula, values, holds, clear))
    return pd.DataFrame(rows, columns=["game", "criterion", "formula", "values", "holds", "clear"])


def is_social_dilemma(criteria: pd.DataFrame, game: str) -> dict[str, bool]:
    """Both verdicts for `game` from `dilemma_criteria`'s means: Hughes et al.'s definition
    ((1), (2) and fear or greed) and the strict one ((1) and defection paying at every x)."""
    holds = criteria[criteria.game == game].set_index("criterion").holds
    if holds.empty:
        raise ValueError(f"no criteria for game {game!r}; have {sorted(criteria.game.unique())}")
    mutual = holds["mutual cooperation beats mutual defection"]
    return {
        "hughes": bool(mutual and holds["mutual cooperation beats being exploited"] and (holds["fear"] or holds["greed"])),
        "strict": bool(mutual and holds["defection pays at every x"]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ssdlib.experiments.schelling",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("games", nargs="*", metavar="GAME", help=f"games: {', '.join(GAMES)}; none: both")
    parser.add_argument("--games", dest="num_games", type=int, default=GAMES_PER_MIX, metavar="N",
                        help="games per number of cooperators")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--horizon", type=int, default=None, help="steps per episode; default: the game's own (1000)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="CSV file for the table; default: standard output")
    args = parser.parse_args(argv)
    unknown = [g for g in args.games if g not in GAMES]
    if unknown:
        parser.error(f"unknown game(s) {unknown}; choose from {list(GAMES)}")
    options = {} if args.horizon is None else {"horizon": args.horizon}
    try:
        table = pd.concat([schelling_table(g, args.num_games, args.seed, args.device, **options)
                           for g in args.games or GAMES], ignore_index=True)
    except ValueError as error:
        parser.error(str(error))
    if args.out is None:
        table.to_csv(sys.stdout)
    else:
        atomic_write(args.out, lambda tmp: table.to_csv(tmp))
        os.chmod(args.out, 0o644)  # mkstemp's files are private; tables are for readers


if __name__ == "__main__":
    main()
