"""The `Episodes` record (one recorded episode per seed of a run) and its file format."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..envs.views import views_from_maps
from ..runs import atomic_write

EPISODES_FILE = "episodes.npz"
FORMAT_VERSION = 3  # 2: influence in float64, with `exerted`; 3: `messages`, `message_influence`, `vocabulary`
READABLE_FORMATS = (2, 3)  # a format-2 file reads as a run without communication


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

    With communication (paper section 5; `vocabulary` V > 0 symbols): messages: int64 [S, T, N],
    the symbol 0..V-1 each agent said at step t (heard by every agent at step t + 1);
    message_influence: float64 [S, T, N, N-1], the influence of speaker k's symbol said at step t
    on the action at step t + 1 of its jj-th other agent (the others in index order, skipping
    k: listener jj + (jj >= k)), in the divergence the reward uses, as the trainer credits it
    to the symbol (before beta and the curriculum). The symbols said at an episode's last step
    (its horizon) are heard by nobody, since every game then starts again in silence: their
    influence is 0. Without communication (and in files of format 2) `vocabulary` is 0,
    messages has shape [S, T, 0] and message_influence [S, T, 0, N-1]; a run that communicates
    without an influence reward on its symbols (the comm baseline) records its messages and a
    message_influence of shape [S, T, 0, N-1] (no speaker measured, as `influence` has K = 0).

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
    vocabulary: int = 0
    messages: np.ndarray | None = None  # None: no communication, [S, T, 0]
    message_influence: np.ndarray | None = None  # None: not measured, [S, T, 0, N-1]

    def __post_init__(self) -> None:
        s, t, n = self.pos.shape[:3]
        if self.messages is None:
            self.messages = np.zeros((s, t, 0), np.int64)
        if self.message_influence is None:
            self.message_influence = np.zeros((s, t, 0, max(n - 1, 0)), np.float64)

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

    @property
    def communicates(self) -> bool:
        """Whether the agents said symbols (`messages` is recorded)."""
        return self.vocabulary > 0 and self.messages.shape[2] > 0

    @property
    def has_message_influence(self) -> bool:
        """Whether the influence of each symbol on the others' next actions is recorded."""
        return self.communicates and self.message_influence.shape[2] > 0

    def listeners(self, speaker: int) -> list[int]:
        """The agents on the last axis of message_influence[:, :, speaker]: the others, in index order."""
        return [j for j in range(self.num_agents) if j != speaker]

    def message_influence_given(self) -> np.ndarray:
        """The influence of each agent's symbol of step t on all the others' actions of step
        t + 1, summed over listeners (its symbol's influence reward c^k), float64 [S, T, N]."""
        return self.message_influence.sum(axis=3)

    def message_influence_received(self) -> np.ndarray:
        """The influence on each agent's action of step t + 1 of the symbols the others said at
        step t, summed over speakers, float64 [S, T, N] (zeros [S, T, 0] when not measured)."""
        if not self.has_message_influence:
            return np.zeros(self.message_influence.shape[:2] + (0,), np.float64)
        received = np.zeros(self.message_influence.shape[:3], np.float64)
        for k in range(self.num_agents):
            for jj, j in enumerate(self.listeners(k)):
                received[:, :, j] += self.message_influence[:, :, k, jj]
        return received

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
        "vocabulary": int(episodes.vocabulary),
    }
    if episodes.messages.size and not 0 <= episodes.messages.min() <= episodes.messages.max() < 2**15:
        raise ValueError("messages must be symbols 0..32767")
    arrays = {
        "meta": np.array(json.dumps(meta)),
        "map_deltas": delta,
        "pos": episodes.pos.astype(np.int16),
        "orient": episodes.orient.astype(np.int8),
        "actions": episodes.actions.astype(np.int8),
        "rewards": episodes.rewards.astype(np.float32),
        "influence": episodes.influence.astype(np.float64),  # exact: influence is a difference of tiny numbers
        "exerted": episodes.exerted.astype(np.float64),
        "messages": episodes.messages.astype(np.int16),
        "message_influence": episodes.message_influence.astype(np.float64),
    }

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a bare temporary name
            np.savez_compressed(f, **arrays)

    atomic_write(path, write)
    path.chmod(0o644)  # mkstemp's files are private; recordings are for readers
    return path


def load_episodes(path: str | Path) -> Episodes:
    """Read episodes written by `save_episodes` (views recomputed from the maps); a file of
    format 2 (before communication) reads with vocabulary 0 and empty messages and
    message_influence."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no recorded episodes {str(path)!r}: record them with ssdlib.episodes.recording.ensure_episodes")
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        version = meta.get("format")
        if version not in READABLE_FORMATS:
            raise ValueError(f"{str(path)!r} has episodes format {version!r}, expected one of {READABLE_FORMATS}")
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
            vocabulary=int(meta.get("vocabulary", 0)),
            messages=data["messages"].astype(np.int64) if "messages" in data else None,
            message_influence=data["message_influence"].astype(np.float64) if "message_influence" in data else None,
        )


def recording_format(path: str | Path) -> int | None:
    """The format version of a recording file (`ensure_episodes` records an older one again,
    when it can, only where that version lacks what the run records)."""
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["meta"])).get("format")
