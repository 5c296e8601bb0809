"""Names of the hardware and software a measurement ran on (for provenance)."""

import os
import platform

import torch


def device_name(device: torch.device | str) -> str:
    """GPU model for CUDA devices, CPU model (and usable cores) otherwise."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model} ({len(os.sched_getaffinity(0))} cores)"


def resolve_device(device: torch.device | str) -> torch.device:
    """`device` as a torch device this machine has, or a ValueError naming the bad value:
    an unparsable name ("gpu0"), a CUDA device without CUDA (a CPU-only torch, or no GPU), or
    a CUDA index past the GPUs present."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else "no GPU visible"
            raise ValueError(f"device {str(device)!r} needs CUDA, but this machine has {build} "
                             f"(torch {torch.__version__}); use --device cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif resolved.type != "cpu":
        raise ValueError(f"device {str(device)!r} is not supported: use 'cpu', 'cuda' or 'cuda:N'")
    return resolved
