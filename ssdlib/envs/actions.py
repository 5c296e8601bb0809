"""The check every batched env applies to the actions of a step, with errors naming the bad value."""

import torch


def check_actions(
    actions: torch.Tensor, num_envs: int, num_agents: int, num_actions: int, device: torch.device, env_name: str,
    check_range: bool = True,
) -> torch.Tensor:
    """`actions` as int64 [num_envs, num_agents] after checking type, shape, dtype, device and
    (with `check_range`) range; a ValueError names the first bad value (its game and agent).
    The range check reads the device (one host synchronisation per step); a trainer whose
    actions are argmax indices of num_actions logits skips it."""
    shape = (num_envs, num_agents)
    if not isinstance(actions, torch.Tensor):
        raise ValueError(f"actions must be a torch.Tensor of shape {shape}, got {type(actions).__name__}")
    if tuple(actions.shape) != shape:
        raise ValueError(f"actions must have shape {shape}, got {tuple(actions.shape)}")
    if actions.dtype.is_floating_point or actions.dtype.is_complex or actions.dtype == torch.bool:
        raise ValueError(f"actions must have an integer dtype, got {actions.dtype}")
    if actions.device != device and not (actions.device.type == device.type == "cuda" and device.index is None):
        raise ValueError(f"actions are on {actions.device}, the env on {device}")
    if not check_range:
        return actions.long()
    bad = (actions < 0) | (actions >= num_actions)
    if bad.any():
        game, agent = (int(i) for i in bad.nonzero()[0])
        value = int(actions[game, agent])
        raise ValueError(
            f"action {value} of agent {agent} in game {game} is outside the action space "
            f"0..{num_actions - 1} of {env_name}"
        )
    return actions.long()
