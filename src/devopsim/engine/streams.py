"""Named random streams, all derived from the run's one seed.

Each component asks for a stream by name (``arrivals/browse``,
``work/catalog/list/0``); the name, hashed, becomes the ``spawn_key`` of a
:class:`numpy.random.SeedSequence` built on the run seed. A stream therefore
depends only on the seed and its own name: adding a service, a fault or a
class never shifts another component's random numbers.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["Streams"]


class Streams:
    """A factory of independent, named :class:`numpy.random.Generator` s.

    Args:
        seed: the run's seed (a non-negative integer).
    """

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be non-negative (got {seed})")
        self.seed = seed

    def seed_sequence(self, name: str) -> np.random.SeedSequence:
        """The seed sequence of stream ``name``."""
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        key = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
        return np.random.SeedSequence(entropy=self.seed, spawn_key=key)

    def generator(self, name: str) -> np.random.Generator:
        """A fresh generator for stream ``name`` (PCG64)."""
        return np.random.Generator(np.random.PCG64(self.seed_sequence(name)))
