"""Random streams derived from a seed, so that each seed of a run draws its own numbers.

Every seed of a run has its own generators (network initialisation per agent, the games,
action sampling and minibatch order), derived from the seed alone: what a seed draws does not
depend on which other seeds train beside it.
"""

import numpy as np
import torch

STREAMS = ("init", "games", "sampling", "replay")


def stream_seed(seed: int, stream: str, index: int = 0) -> int:
    """A 63-bit seed for `stream` (one of STREAMS) of `seed` (and of agent `index`), mixed by
    numpy's SeedSequence so that nearby seeds give unrelated streams."""
    entropy = [int(seed), STREAMS.index(stream), int(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def generator(seed: int, stream: str, index: int = 0) -> torch.Generator:
    """A CPU generator seeded with `stream_seed(seed, stream, index)`."""
    return torch.Generator().manual_seed(stream_seed(seed, stream, index))
