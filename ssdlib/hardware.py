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
