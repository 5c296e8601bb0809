"""Names of the hardware and software a measurement ran on (for provenance)."""

import os
import platform
from pathlib import Path

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


def count_cpus(cpu_list: str) -> int:
    """How many CPUs a sysfs CPU list names ("0-3,8,10-11" -> 7)."""
    count = 0
    for part in cpu_list.strip().split(","):
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count


def cache_bytes_per_core(default: int = 2**21, caches: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """The cache one CPU core can count on: over its data caches of level 2 and above, the
    largest share (a cache's size over the CPUs sharing it), read from Linux's sysfs; e.g.
    the 2 MiB L2 of a server core whose L3 holds 1.5 MiB a core, or 240 MiB on a 2-core VM
    given a 480 MiB L3. `default` (2 MiB, a common L2) where sysfs (`caches`, CPU 0's cache
    folders) does not say."""
    shares = []
    for index in caches.glob("index*"):
        try:
            kind, level, size, shared = ((index / name).read_text().strip()
                                         for name in ("type", "level", "size", "shared_cpu_list"))
            if kind != "Instruction" and int(level) >= 2 and size.endswith("K"):
                shares.append(int(size[:-1]) * 1024 // count_cpus(shared))
        except (OSError, ValueError):
            continue
    return max(shares, default=default)


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
