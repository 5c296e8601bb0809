"""Record a trained run's agents playing one fresh game per seed, and cache the recording.

`record_episodes` replays a run without learning (sampling actions, as in training) and
stores per step what the agents saw and did: the full map at the start of the step, positions,
facings, actions, extrinsic rewards and, for influence conditions, the influence of each
influencer on each influencee (paper Eq. 1/3, before the weight beta and the curriculum);
with communication the symbol each agent said and, for influential communication, the
influence of each symbol on every other agent's next action.
`ensure_episodes` caches it as RUN/episodes.npz, tied to the run's checkpoint.
"""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .format import (
    EPISODES_FILE,
    FORMAT_VERSION,
    Episodes,
    load_episodes,
    recording_format,
    save_episodes,
)


@torch.no_grad()
def record_episodes(trainer, seed: int = 0, steps: int | None = None) -> Episodes:
    """Let the agents of `trainer` play one fresh game per seed of the run for `steps` steps
    (default: the whole episode, the env's horizon), sampling their actions, without learning.

    `seed` seeds the fresh games and the sampling (the trainer itself is left untouched), so
    the same trainer and seed give the same episodes.

    With communication the symbols said are recorded (`Episodes.messages`) and, where the
    reward measures their influence, the influence of the symbols of step t on the actions
    of step t + 1 (`Episodes.message_influence`), which the trainer computes when acting at
    step t + 1: for the last recorded step the agents act once more on the last observation
    (the env is not stepped), as the next step of the game would."""
    from ..training.replay import (
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
    communicates = view.net.communicates
    message_influence = (communicates and trainer.config.reward.scheme == "influence"
                         and trainer.config.reward.influence_source == "communication")
    keys = ("maps", "views", "pos", "orient", "actions", "rewards", "influence", "exerted", "messages",
            "message_influence")
    record: dict[str, list[torch.Tensor]] = {key: [] for key in keys}
    for t in range(steps):
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
        if communicates:
            record["messages"].append(view.to_games(out.transition.message))  # [S, N]
        if message_influence and t > 0:  # acting at step t measures the symbols of step t - 1
            record["message_influence"].append(out.influence.pairs)  # [S, N (speaker), N-1]
    if message_influence:  # the last step's symbols: act once more, without stepping the games
        record["message_influence"].append(view.act(view.state.obs, view.state.memory).influence.pairs)

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
        trained_steps=int(trainer.env_steps), vocabulary=int(view.net.vocabulary) if communicates else 0,
        messages=stacked("messages", np.int64) if communicates else None,
        message_influence=stacked("message_influence", np.float64) if message_influence else None,
    )


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


def run_communicates(run_folder: str | Path) -> bool:
    """Whether the run in `run_folder` communicates (its config.json has a vocabulary); False
    without a readable config.json."""
    try:
        resolved = json.loads((Path(run_folder) / "config.json").read_text())
        return int(resolved["config"].get("model", {}).get("vocabulary", 0)) > 0
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def recording_is_current(run_folder: str | Path) -> bool:
    """Whether RUN/episodes.npz holds everything a recording of the run holds now: format
    FORMAT_VERSION, or format 2 for a run without communication (format 3 only added what
    communicating runs record), so that recordings made before it stay valid."""
    folder = Path(run_folder)
    version = recording_format(folder / EPISODES_FILE)
    return version == FORMAT_VERSION or (version == 2 and not run_communicates(folder))


def ensure_episodes(run_folder: str | Path, device: str = "cpu", seed: int = 0) -> Episodes:
    """The recorded episodes of a run: RUN/episodes.npz when it holds a recording of the run's
    current checkpoint with this `seed`, else recorded now (`record_episodes`, whole episodes)
    and saved there. A run retrained or trained further since is recorded again, and so is a
    recording of an older format that lacks what the run records (`recording_is_current`); a
    folder with a recording but no checkpoint returns the recording."""
    folder = Path(run_folder)
    path = folder / EPISODES_FILE
    digest = checkpoint_digest(folder)
    if path.is_file() and (not digest or recording_is_current(folder)):
        episodes = load_episodes(path)
        if not digest or (episodes.checkpoint == digest and episodes.replay_seed == seed):
            return episodes
    from ..training.replay import load_trainer

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
