"""Does feinting appear? Measured on replays (`replay.Replay`), per seed.

The paper's blog reports that good agents with the ToM reward "learn to feint towards incorrect
landmarks to mislead the adversary". With two landmarks the wrong one is the decoy. Measured:

- `decoy_heading`: over the steps in which the good agent nearest the adversary is moving,
  how often it moves more towards the decoy than towards the target (the cosine of its velocity
  with the direction to the decoy beats the one with the target). A good agent that leads the
  adversary away, or covers the decoy, raises it; 0.5 is what heading anywhere gives.
- `adversary_at_decoy`: how often the adversary ends the episode nearer the decoy than the
  target: whether it was misled (random agents: about one episode in two).
- `adversary_distances`: the adversary's mean distance to the target and to the decoy at each
  step (the decoy curve below the target curve means it is drawn to the decoy).
"""

import torch
from torch import Tensor
from torch.nn import functional as F

from .replay import Replay


def landmark_positions(replay: Replay) -> tuple[Tensor, Tensor]:
    """The target's and the decoy's positions, each [S, E, 2] (two landmarks: the decoy is the other one)."""
    target = replay.landmarks.gather(2, replay.goal[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)
    decoy = replay.landmarks.gather(2, (1 - replay.goal)[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)
    return target, decoy


def adversary_distances(replay: Replay) -> tuple[Tensor, Tensor]:
    """The adversary's distance to the target and to the decoy at each step, means over games: [S, T+1] each."""
    target, decoy = landmark_positions(replay)
    adversary = replay.positions[..., 0, :]  # [S, T+1, E, 2]
    return (adversary - target[:, None]).norm(dim=-1).mean(-1), (adversary - decoy[:, None]).norm(dim=-1).mean(-1)


def adversary_at_decoy(replay: Replay) -> Tensor:
    """[S]: the fraction of episodes the adversary ends nearer the decoy than the target."""
    target, decoy = landmark_positions(replay)
    final = replay.positions[:, -1, :, 0]  # [S, E, 2]
    return ((final - decoy).norm(dim=-1) < (final - target).norm(dim=-1)).double().mean(-1)


def decoy_heading(replay: Replay) -> Tensor:
    """[S]: over the steps where the good agent nearest the adversary moves, the fraction in which
    its velocity points more towards the decoy than towards the target."""
    target, decoy = landmark_positions(replay)
    pos = replay.positions[:, :-1]  # [S, T, E, A, 2] where each step starts
    velocity = replay.positions[:, 1:] - pos
    good = pos[..., 1:, :]
    nearest = (good - pos[..., :1, :]).norm(dim=-1).argmin(-1)  # [S, T, E] among the good agents
    pick = (nearest + 1)[..., None, None].expand(-1, -1, -1, 1, 2)
    me, v = pos.gather(3, pick).squeeze(3), velocity.gather(3, pick).squeeze(3)  # [S, T, E, 2]
    to_decoy = F.cosine_similarity(v, decoy[:, None] - me, dim=-1)
    to_target = F.cosine_similarity(v, target[:, None] - me, dim=-1)
    moving = v.norm(dim=-1) > 1e-9
    return ((to_decoy > to_target) & moving).double().sum((1, 2)) / moving.double().sum((1, 2))


def diagnostics(replay: Replay) -> dict[str, Tensor]:
    """Every per-seed number of this module ([S] each), with the adversary's final distance to
    the target and, where it has a belief bottleneck, its final probability on the target."""
    target_distance, _ = adversary_distances(replay)
    belief = replay.belief[:, -1, :, 0].gather(-1, replay.goal[..., None]).squeeze(-1).double().mean(-1)
    return {
        "decoy_heading": decoy_heading(replay),
        "adversary_at_decoy": adversary_at_decoy(replay),
        "adversary_final_distance": target_distance[:, -1],
        "adversary_belief_target": belief if replay.bottleneck[0] else torch.full_like(belief, float("nan")),
    }
