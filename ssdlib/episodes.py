"""Recorded episodes: a trained run's agents play fresh games, and every step is kept.

    from ssdlib.episodes import ensure_episodes, high_influence_moments, moment_figure
    episodes = ensure_episodes("results/runs/cleanup_influence/cpu")
    moments = high_influence_moments(episodes, top=5)
    fig = moment_figure(episodes, **moments.iloc[0][["seed", "step", "influencer", "influencee"]])

`record_episodes` replays a run without learning (sampling actions, as in training) on one
fresh game per seed of the run, for one whole episode, and stores per step what the agents
saw and did: the full map at the start of the step, each agent's egocentric view, positions,
facings, actions, extrinsic rewards and, for influence conditions, the influence of each
influencer on each influencee (paper Eq. 1/3, before the weight beta and the curriculum).

`ensure_episodes` caches the recording as RUN/episodes.npz, tied to the run's checkpoint, so
the book and the explorer (`ssdlib.explorer`) replay the same games. `high_influence_moments`
and `plot_moment` find and draw the paper's "moments of high influence" (Figures 2 and 14).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .envs import palette
from .envs.geometry import VIEW_RADIUS, VIEW_SIZE, view_offsets
from .runs import atomic_write

EPISODES_FILE = "episodes.npz"
FORMAT_VERSION = 2  # 2: influence in float64, with `exerted`
INFLUENCER_COLOUR = "white"  # outlines on the map (the paper's Figure 14 draws the influencer's view in white)
INFLUENCEE_COLOUR = "#ffe119"  # and the influencee's in yellow (Figure 2)


@dataclass
class Episodes:
    """One recorded episode per seed of a run: S seeds, T steps, N agents, K influencers.

    maps: uint8 [S, T, H, W] palette indices of the full map at the start of each step (what the
    agents saw before acting); views: uint8 [S, T, N, 15, 15] each agent's egocentric view at that
    step (forward up, the agent at pixel (7, 7)); pos: int64 [S, T, N, 2] (row, col); orient:
    int64 [S, T, N] (0 UP, 1 RIGHT, 2 DOWN, 3 LEFT); actions: int64 [S, T, N]; rewards: float32
    [S, T, N] extrinsic rewards of the step; influence: float64 [S, T, K, J], influence of
    influencer k (agent k) on influencee j (agent K + j) at each step, J = N - K, in the
    divergence the reward uses (JSD, KL or PMI); exerted: float64 [S, T, K, J], the same pairs
    in a divergence that is never negative (KL where the reward uses PMI, else the same
    values), on which moments and sparsity are ranked. K is `influencers`, 0 (and influence of
    size 0) when the condition computes no centralised influence reward.

    `seeds` are the run's training seeds, in the order of the first axis; `replay_seed` seeds the
    fresh games and the action sampling; `checkpoint` identifies the weights that played
    (a prefix of the checkpoint file's SHA-256, "" when unknown); `trained_steps` are the env
    steps per seed those weights were trained for.
    """

    config: str
    env: str
    seeds: list[int]
    maps: np.ndarray
    views: np.ndarray
    pos: np.ndarray
    orient: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    influence: np.ndarray
    exerted: np.ndarray
    influencers: int
    action_names: tuple[str, ...]
    preset: str = ""
    replay_seed: int = 0
    trained_steps: int = 0
    checkpoint: str = ""

    @property
    def num_seeds(self) -> int:
        return self.maps.shape[0]

    @property
    def num_steps(self) -> int:
        return self.maps.shape[1]

    @property
    def num_agents(self) -> int:
        return self.pos.shape[2]

    @property
    def height(self) -> int:
        return self.maps.shape[2]

    @property
    def width(self) -> int:
        return self.maps.shape[3]

    @property
    def has_influence(self) -> bool:
        return self.influencers > 0 and self.influence.size > 0

    def seed_index(self, seed: int) -> int:
        """Index on the first axis of the game played by the agents of training seed `seed`."""
        if seed not in self.seeds:
            raise ValueError(f"seed {seed!r} was not recorded; the episodes have seeds {self.seeds}")
        return self.seeds.index(seed)

    def check_step(self, step: int) -> int:
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= step < self.num_steps:
            raise ValueError(f"step {step!r} is outside the recorded steps 0..{self.num_steps - 1}")
        return int(step)

    def check_agent(self, agent: int, role: str = "agent") -> int:
        if isinstance(agent, bool) or not isinstance(agent, (int, np.integer)) or not 0 <= agent < self.num_agents:
            raise ValueError(f"{role} {agent!r} is not an agent id 0..{self.num_agents - 1}")
        return int(agent)

    def returns(self) -> np.ndarray:
        """Cumulative extrinsic return of each agent after each step, float64 [S, T, N]."""
        return np.cumsum(self.rewards.astype(np.float64), axis=1)

    def influence_given(self) -> np.ndarray:
        """Influence reward c^k of each influencer at each step (summed over influencees), [S, T, K]."""
        return self.influence.sum(axis=3)

    def exerted_given(self) -> np.ndarray:
        """Each influencer's non-negative influence (KL or JSD) at each step, summed over
        influencees, [S, T, K]: what sparsity is measured on."""
        return self.exerted.sum(axis=3)


# ---------------------------------------------------------------------------- geometry
def field_of_view(pos: tuple[int, int] | np.ndarray, height: int, width: int,
                  radius: int = VIEW_RADIUS) -> tuple[int, int, int, int]:
    """The map cells an agent at `pos` (row, col) sees: (top, bottom, left, right), inclusive,
    clipped to a map of `height` x `width`. The egocentric view is the square of side
    2 * radius + 1 centred on the agent, whatever its facing (it is rotated, not shifted)."""
    row, col = (int(x) for x in np.asarray(pos).reshape(-1)[:2])
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"position {(row, col)} is outside the {height}x{width} map")
    top, bottom, left, right = fields_of_view(np.array([row, col]), height, width, radius)
    return int(top), int(bottom), int(left), int(right)


def fields_of_view(pos: np.ndarray, height: int, width: int,
                   radius: int = VIEW_RADIUS) -> tuple[np.ndarray, ...]:
    """`field_of_view` elementwise over positions [..., 2]: arrays (top, bottom, left, right)."""
    pos = np.asarray(pos)
    return (np.clip(pos[..., 0] - radius, 0, height - 1), np.clip(pos[..., 0] + radius, 0, height - 1),
            np.clip(pos[..., 1] - radius, 0, width - 1), np.clip(pos[..., 1] + radius, 0, width - 1))


def in_view(observer: np.ndarray, other: np.ndarray, radius: int = VIEW_RADIUS) -> np.ndarray:
    """Whether `other` (row, col) lies in the view of `observer` (row, col), elementwise over
    leading axes [..., 2]: the env's own test (both offsets at most the view radius)."""
    delta = np.abs(np.asarray(observer, dtype=np.int64) - np.asarray(other, dtype=np.int64))
    return (delta <= radius).all(axis=-1)


def views_from_maps(maps: np.ndarray, pos: np.ndarray, orient: np.ndarray) -> np.ndarray:
    """Egocentric views uint8 [..., N, 15, 15] recomputed from full maps [..., H, W], positions
    [..., N, 2] and facings [..., N], exactly as the env computes them (cells outside the map
    read as floor)."""
    maps, pos, orient = np.asarray(maps), np.asarray(pos, dtype=np.int64), np.asarray(orient, dtype=np.int64)
    h, w = maps.shape[-2:]
    lead = maps.shape[:-2]
    n = pos.shape[-2]
    offsets = view_offsets().numpy()  # [4, 15, 15, 2]
    rows = pos[..., 0, None, None] + offsets[orient][..., 0]  # [..., N, 15, 15]
    cols = pos[..., 1, None, None] + offsets[orient][..., 1]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = maps.reshape(-1, h * w)
    cells = np.where(inside, rows * w + cols, 0).reshape(flat.shape[0], -1)
    views = np.take_along_axis(flat, cells, axis=1).reshape(*lead, n, VIEW_SIZE, VIEW_SIZE)
    return np.where(inside, views, palette.FLOOR).astype(np.uint8)


# ---------------------------------------------------------------------------- recording
@torch.no_grad()
def record_episodes(trainer, seed: int = 0, steps: int | None = None) -> Episodes:
    """Let the agents of `trainer` play one fresh game per seed of the run for `steps` steps
    (default: the whole episode, the env's horizon), sampling their actions, without learning.

    `seed` seeds the fresh games and the sampling (the trainer itself is left untouched), so
    the same trainer and seed give the same episodes."""
    from .training.replay import (
        replay_view,  # the trainer stack is only needed to record
    )

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    view = replay_view(trainer, 1, seed)
    env = view.env
    horizon = env.horizon
    steps = horizon if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= horizon:
        raise ValueError(f"steps must be an int in 1..{horizon} (one episode of {env.name}), got {steps!r}")
    h, w, hw = env.height, env.width, env.height * env.width
    has_influence = trainer.config.reward.scheme == "influence" and trainer.K > 0
    k = trainer.K if has_influence else 0
    record: dict[str, list[torch.Tensor]] = {key: [] for key in ("maps", "views", "pos", "orient", "actions", "rewards", "influence", "exerted")}
    for _ in range(steps):
        record["maps"].append(env._image()[:, :hw].reshape(-1, h, w))
        record["views"].append(view.state.obs.image)
        record["pos"].append(torch.stack((env.state.pos // w, env.state.pos % w), dim=-1))
        record["orient"].append(env.state.orient)
        out, extrinsic, _, _ = view.play()
        actions = view.to_games(out.transition.actions)  # [S, N]: one game per seed
        record["actions"].append(actions)
        record["rewards"].append(extrinsic)
        if has_influence:
            record["influence"].append(out.influence.pairs)
            record["exerted"].append(out.influence.nonnegative)

    def stacked(key: str, dtype) -> np.ndarray:
        """steps of [S, ...] -> [S, T, ...]."""
        return torch.stack(record[key], dim=1).cpu().numpy().astype(dtype)

    s, n = trainer.S, trainer.N
    none = np.zeros((s, steps, 0, n), np.float64)
    influence = stacked("influence", np.float64) if has_influence else none
    exerted = stacked("exerted", np.float64) if has_influence else none
    return Episodes(
        config=trainer.config.name, env=trainer.config.env, seeds=list(trainer.seeds),
        maps=stacked("maps", np.uint8), views=stacked("views", np.uint8), pos=stacked("pos", np.int64),
        orient=stacked("orient", np.int64), actions=stacked("actions", np.int64),
        rewards=stacked("rewards", np.float32), influence=influence, exerted=exerted, influencers=k,
        action_names=tuple(env.action_names), preset=trainer.preset.name, replay_seed=seed,
        trained_steps=int(trainer.env_steps),
    )


# ---------------------------------------------------------------------------- files
def save_episodes(episodes: Episodes, path: str | Path) -> Path:
    """Write `episodes` to `path` (a compressed .npz) atomically; returns the path.

    What is stored, for size: the views are not stored (load_episodes recomputes them exactly
    from the maps, positions and facings: they are a deterministic crop of the map), and each
    map is stored as the XOR with the map of the step before, mostly zeros since few cells
    change per step. A Cleanup recording of 5 seeds x 1000 steps then takes about 1 MB instead
    of about 8 MB (maps and views alone, uncompressed).
    """
    path = Path(path)
    maps = episodes.maps.astype(np.uint8)
    delta = maps.copy()
    delta[:, 1:] ^= maps[:, :-1]
    meta = {
        "format": FORMAT_VERSION, "config": episodes.config, "env": episodes.env, "seeds": list(map(int, episodes.seeds)),
        "influencers": int(episodes.influencers), "action_names": list(episodes.action_names),
        "preset": episodes.preset, "replay_seed": int(episodes.replay_seed),
        "trained_steps": int(episodes.trained_steps), "checkpoint": episodes.checkpoint,
    }
    arrays = {
        "meta": np.array(json.dumps(meta)),
        "map_deltas": delta,
        "pos": episodes.pos.astype(np.int16),
        "orient": episodes.orient.astype(np.int8),
        "actions": episodes.actions.astype(np.int8),
        "rewards": episodes.rewards.astype(np.float32),
        "influence": episodes.influence.astype(np.float64),  # exact: influence is a difference of tiny numbers
        "exerted": episodes.exerted.astype(np.float64),
    }

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a bare temporary name
            np.savez_compressed(f, **arrays)

    atomic_write(path, write)
    path.chmod(0o644)  # mkstemp's files are private; recordings are for readers
    return path


def load_episodes(path: str | Path) -> Episodes:
    """Read episodes written by `save_episodes` (views recomputed from the maps)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no recorded episodes {str(path)!r}: record them with ssdlib.episodes.ensure_episodes")
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{str(path)!r} has episodes format {meta.get('format')!r}, expected {FORMAT_VERSION}")
        maps = np.bitwise_xor.accumulate(data["map_deltas"], axis=1).astype(np.uint8)
        pos, orient = data["pos"].astype(np.int64), data["orient"].astype(np.int64)
        return Episodes(
            config=meta["config"], env=meta["env"], seeds=meta["seeds"], maps=maps,
            views=views_from_maps(maps, pos, orient), pos=pos, orient=orient,
            actions=data["actions"].astype(np.int64), rewards=data["rewards"].astype(np.float32),
            influence=data["influence"].astype(np.float64), exerted=data["exerted"].astype(np.float64),
            influencers=meta["influencers"],
            action_names=tuple(meta["action_names"]), preset=meta["preset"], replay_seed=meta["replay_seed"],
            trained_steps=meta["trained_steps"], checkpoint=meta["checkpoint"],
        )


def recording_format(path: str | Path) -> int | None:
    """The format version of a recording file (an older one is recorded again when it can be)."""
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["meta"])).get("format")


def checkpoint_digest(run_folder: str | Path) -> str:
    """A short SHA-256 of a run's checkpoint.pt ("" when it has none)."""
    path = Path(run_folder) / "checkpoint.pt"
    if not path.is_file():
        return ""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def ensure_episodes(run_folder: str | Path, device: str = "cpu", seed: int = 0) -> Episodes:
    """The recorded episodes of a run: RUN/episodes.npz when it holds a recording of the run's
    current checkpoint with this `seed`, else recorded now (`record_episodes`, whole episodes)
    and saved there. A run retrained or trained further since is recorded again; a folder with
    a recording but no checkpoint returns the recording."""
    folder = Path(run_folder)
    path = folder / EPISODES_FILE
    digest = checkpoint_digest(folder)
    if path.is_file() and (not digest or recording_format(path) == FORMAT_VERSION):
        episodes = load_episodes(path)
        if not digest or (episodes.checkpoint == digest and episodes.replay_seed == seed):
            return episodes
    from .training.replay import load_trainer

    for _ in range(3):  # a run still training may replace its checkpoint while it is read
        trainer = load_trainer(folder, device)
        after = checkpoint_digest(folder)
        if after == digest:
            break
        digest = after
    else:
        raise RuntimeError(f"the checkpoint of {str(folder)!r} kept changing while it was read; try again")
    episodes = replace(record_episodes(trainer, seed), checkpoint=digest)
    save_episodes(episodes, path)
    return episodes


# ---------------------------------------------------------------------------- analysis
def _require_influence(episodes: Episodes) -> None:
    if not episodes.has_influence:
        raise ValueError(f"the episodes of {episodes.config!r} record no influence: "
                         "its condition computes no influence reward (use an *_influence run)")


def high_influence_moments(episodes: Episodes, top: int = 10, per_seed: bool = False) -> pd.DataFrame:
    """The `top` (influencer, influencee, step) triples of highest exact influence, ranked on
    the non-negative divergence (`Episodes.exerted`: KL, or the JSD a condition rewards),
    highest first (`per_seed`: the top ones of each seed's game). Columns: seed, step,
    influencer, influencee (agent ids), exerted (the ranked value), influence (the reward's
    divergence, PMI in Harvest), influencee_sees_influencer (whether the influencer stands in
    the influencee's 15x15 view at that step)."""
    _require_influence(episodes)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive int, got {top!r}")
    k_count = episodes.influencers
    if per_seed:
        frames = [high_influence_moments(_one_seed(episodes, s), top) for s in range(episodes.num_seeds)]
        return pd.concat(frames, ignore_index=True)
    values = episodes.exerted
    flat = values.reshape(-1)
    order = np.argsort(-flat, kind="stable")[:top]
    s, t, k, j = np.unravel_index(order, values.shape)
    influencee = k_count + j
    sees = in_view(episodes.pos[s, t, influencee], episodes.pos[s, t, k])
    return pd.DataFrame({
        "seed": np.asarray(episodes.seeds, dtype=np.int64)[s],
        "step": t.astype(np.int64),
        "influencer": k.astype(np.int64),
        "influencee": influencee.astype(np.int64),
        "exerted": flat[order].astype(np.float64),
        "influence": episodes.influence.reshape(-1)[order].astype(np.float64),
        "influencee_sees_influencer": sees.astype(bool),
    })


def _one_seed(episodes: Episodes, index: int) -> Episodes:
    sl = slice(index, index + 1)
    return replace(episodes, seeds=[episodes.seeds[index]], maps=episodes.maps[sl], views=episodes.views[sl],
                   pos=episodes.pos[sl], orient=episodes.orient[sl], actions=episodes.actions[sl],
                   rewards=episodes.rewards[sl], influence=episodes.influence[sl], exerted=episodes.exerted[sl])


def influence_sparsity(episodes: Episodes) -> pd.DataFrame:
    """How sparse in time each influencer's influence is, per seed: its exerted influence
    (`Episodes.exerted`, summed over influencees: KL or JSD, never PMI, whose sign makes
    "above the mean" meaningless), the episode mean, and the fraction of steps above that mean
    (the paper: below 10% of steps). Columns: seed, influencer, steps, mean_influence,
    max_influence, fraction_above_mean."""
    _require_influence(episodes)
    given = episodes.exerted_given()  # [S, T, K]
    mean = given.mean(axis=1, keepdims=True)
    above = (given > mean).mean(axis=1)  # [S, K]
    rows = [
        {"seed": seed, "influencer": k, "steps": episodes.num_steps, "mean_influence": mean[s, 0, k],
         "max_influence": given[s, :, k].max(), "fraction_above_mean": above[s, k]}
        for s, seed in enumerate(episodes.seeds) for k in range(episodes.influencers)
    ]
    return pd.DataFrame(rows)


def hidden_apples(episodes: Episodes) -> np.ndarray:
    """Apples that each influencer sees and its influencee does not, per step, int64
    [S, T, K, J]: apples inside influencer k's field of view and outside influencee K + j's
    (apples under an agent are not counted). The paper's Figure 2 is a moment where this is
    positive: the influencer's action tells the influencee about apples it cannot see."""
    _require_influence(episodes)
    apples = (episodes.maps == palette.APPLE).astype(np.int64)  # [S, T, H, W]
    integral = np.zeros(apples.shape[:2] + (episodes.height + 1, episodes.width + 1), dtype=np.int64)
    integral[:, :, 1:, 1:] = apples.cumsum(2).cumsum(3)
    h, w = episodes.height, episodes.width

    def count(top, bottom, left, right) -> np.ndarray:
        """Apples in the rectangles [S, T, K, J] (empty where bottom < top or right < left)."""
        s_idx = np.arange(apples.shape[0])[:, None, None, None]
        t_idx = np.arange(apples.shape[1])[None, :, None, None]
        total = (integral[s_idx, t_idx, bottom + 1, right + 1] - integral[s_idx, t_idx, top, right + 1]
                 - integral[s_idx, t_idx, bottom + 1, left] + integral[s_idx, t_idx, top, left])
        return np.where((bottom >= top) & (right >= left), total, 0)

    k = episodes.influencers
    big = episodes.pos[:, :, :k, None, :]  # influencers [S, T, K, 1, 2]
    small = episodes.pos[:, :, None, k:, :]  # influencees [S, T, 1, J, 2]
    tk, bk, lk, rk = (np.broadcast_to(x, big.shape[:2] + (k, episodes.num_agents - k)) for x in fields_of_view(big, h, w))
    tj, bj, lj, rj = fields_of_view(small, h, w)
    both = count(np.maximum(tk, tj), np.minimum(bk, bj), np.maximum(lk, lj), np.minimum(rk, rj))
    return count(tk, bk, lk, rk) - both


def with_hidden_apples(episodes: Episodes, moments: pd.DataFrame) -> pd.DataFrame:
    """`moments` (from high_influence_moments) with a column hidden_apples: the apples the
    influencer saw and the influencee did not at that step (`hidden_apples`)."""
    hidden = hidden_apples(episodes)
    index = [episodes.seed_index(int(seed)) for seed in moments["seed"]]
    values = hidden[index, moments["step"].to_numpy(), moments["influencer"].to_numpy(),
                    moments["influencee"].to_numpy() - episodes.influencers]
    return moments.assign(hidden_apples=values.astype(np.int64))


# ---------------------------------------------------------------------------- drawing
def _cell_patch(row: int, col: int, colour: str, linewidth: float = 2.0, linestyle: str = "-"):
    from matplotlib.patches import Rectangle

    return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=colour, linewidth=linewidth,
                     linestyle=linestyle)


def fov_patch(pos, height: int, width: int, colour: str, linewidth: float = 2.0, linestyle: str = "-"):
    """A matplotlib Rectangle outlining the field of view of an agent at `pos` (row, col)."""
    from matplotlib.patches import Rectangle

    top, bottom, left, right = field_of_view(pos, height, width)
    return Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                     edgecolor=colour, linewidth=linewidth, linestyle=linestyle)


def plot_moment(ax_map, ax_view, episodes: Episodes, seed: int, step: int, influencer: int, influencee: int) -> dict:
    """The paper's Figures 2 and 14 for one step of one seed's game: on `ax_map` the full map
    with the influencer (white) and influencee (yellow) outlined and their fields of view
    drawn (the influencee's solid, the influencer's dashed); on `ax_view` the influencee's own
    egocentric view (forward up), with the influencer outlined when it is in view. Titles give
    the influence of the pair and both agents' actions. Returns the patches drawn on the map
    ({"influencer", "influencee", "influencee_view", "influencer_view"})."""
    from .plotting import show_map

    _require_influence(episodes)
    s = episodes.seed_index(seed)
    t = episodes.check_step(step)
    k = episodes.check_agent(influencer, "influencer")
    j = episodes.check_agent(influencee, "influencee")
    if k >= episodes.influencers:
        raise ValueError(f"influencer {k!r} is not an influencer: agents 0..{episodes.influencers - 1} are")
    if j < episodes.influencers:
        raise ValueError(f"influencee {j!r} is not an influencee: agents {episodes.influencers}..{episodes.num_agents - 1} are")
    value = float(episodes.influence[s, t, k, j - episodes.influencers])
    names = episodes.action_names
    act_k, act_j = names[episodes.actions[s, t, k]], names[episodes.actions[s, t, j]]
    h, w = episodes.height, episodes.width
    pos_k, pos_j = episodes.pos[s, t, k], episodes.pos[s, t, j]

    show_map(ax_map, palette.to_rgb(torch.from_numpy(episodes.maps[s, t])).numpy(),
             f"seed {seed}, step {t}: influence {value:.3g}\nagent {k} {act_k}, agent {j} {act_j}")
    patches = {
        "influencee_view": fov_patch(pos_j, h, w, INFLUENCEE_COLOUR, 2.0),
        "influencer_view": fov_patch(pos_k, h, w, INFLUENCER_COLOUR, 1.2, "--"),
        "influencer": _cell_patch(*pos_k, INFLUENCER_COLOUR, 2.2),
        "influencee": _cell_patch(*pos_j, INFLUENCEE_COLOUR, 2.2),
    }
    for patch in patches.values():
        ax_map.add_patch(patch)
    ax_map.set_xlim(-0.6, w - 0.4)
    ax_map.set_ylim(h - 0.4, -0.6)

    view = episodes.views[s, t, j]
    sees = bool(in_view(pos_j, pos_k))
    show_map(ax_view, palette.to_rgb(torch.from_numpy(view)).numpy(),
             f"agent {j}'s view\n(agent {k} {'in view' if sees else 'out of view'})")
    ax_view.add_patch(_cell_patch(VIEW_RADIUS, VIEW_RADIUS, INFLUENCEE_COLOUR, 2.0))
    if sees:
        for row, col in np.argwhere(view == palette.AGENT + k):
            ax_view.add_patch(_cell_patch(row, col, INFLUENCER_COLOUR, 2.0))
    ax_view.set_xlim(-0.6, VIEW_SIZE - 0.4)
    ax_view.set_ylim(VIEW_SIZE - 0.4, -0.6)
    return patches


def moment_figure(episodes: Episodes, seed: int, step: int, influencer: int, influencee: int, width: float = 8.0):
    """A pyplot figure of one moment (`plot_moment`): the map, then the influencee's view,
    with a legend of the outlines below."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ratios = [episodes.width / episodes.height, 0.7]  # both panels equally tall, the view smaller
    fig, (ax_map, ax_view) = plt.subplots(1, 2, figsize=(width, width / sum(ratios) + 1.0),
                                          gridspec_kw={"width_ratios": ratios})
    plot_moment(ax_map, ax_view, episodes, int(seed), int(step), int(influencer), int(influencee))
    handles = [
        Patch(facecolor="none", edgecolor=INFLUENCER_COLOUR, linewidth=2,
              label=f"influencer, agent {int(influencer)} (its view dashed)"),
        Patch(facecolor="none", edgecolor=INFLUENCEE_COLOUR, linewidth=2, label=f"influencee, agent {int(influencee)}, and its view"),
    ]
    fig.tight_layout()
    for ax in (ax_map, ax_view):
        ax.apply_aspect()  # the boxes the images really take
    below = min(ax_map.get_position().y0, ax_view.get_position().y0)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, below - 0.01), ncol=2, frameon=True,
               facecolor="0.3", edgecolor="0.3", labelcolor="white")
    return fig


def moments_figure(episodes: Episodes, moments: pd.DataFrame, ncols: int = 2, pair_width: float = 5.0):
    """A pyplot figure of several moments (rows of `high_influence_moments`), `ncols` per
    row, each drawn by `plot_moment` (map, then the influencee's view)."""
    import matplotlib.pyplot as plt

    if moments.empty:
        raise ValueError("moments_figure needs at least one moment")
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    ncols = min(ncols, len(moments))
    nrows = -(-len(moments) // ncols)
    ratios = [episodes.width / episodes.height, 0.7]
    panel_height = pair_width / sum(ratios) + 0.8
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(pair_width * ncols, panel_height * nrows), squeeze=False,
                             gridspec_kw={"width_ratios": ratios * ncols})
    for i, row in enumerate(moments.itertuples()):
        r, c = divmod(i, ncols)
        plot_moment(axes[r, 2 * c], axes[r, 2 * c + 1], episodes, int(row.seed), int(row.step),
                    int(row.influencer), int(row.influencee))
        for ax in axes[r, 2 * c: 2 * c + 2]:
            ax.title.set_fontsize(8)
    for ax in axes.flat[2 * len(moments):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_influence_over_time(ax, episodes: Episodes, seed: int, influencer: int = 0, colour: str | None = None) -> None:
    """An influencer's exerted influence (KL or JSD, summed over influencees) along one
    recorded game, with its episode mean dashed: how sparse in time the influence is."""
    _require_influence(episodes)
    s = episodes.seed_index(seed)
    k = episodes.check_agent(influencer, "influencer")
    if k >= episodes.influencers:
        raise ValueError(f"influencer {k!r} is not an influencer: agents 0..{episodes.influencers - 1} are")
    given = episodes.exerted_given()[s, :, k]
    line, = ax.plot(np.arange(episodes.num_steps), given, color=colour, linewidth=0.9, label=f"agent {k}")
    ax.axhline(given.mean(), color=line.get_color(), linestyle="--", linewidth=1.0,
               label=f"agent {k}'s mean ({(given > given.mean()).mean():.0%} of steps above)")
    ax.set_xlabel("step")
    ax.set_ylabel("exerted influence (nats)")
