"""Small shared helpers for the tests (not fixtures)."""

from __future__ import annotations

import numpy as np

from edgenas import Supernet, list_spaces
from edgenas.supernet import noise_batches, recalibrate_bn

SPACES = list_spaces()  # every registered space, presets and any added later


def small_arch(space, rng: np.random.Generator):
    """A random arch at the space's smallest resolution: keeps ofa-mbv3 tests fast on CPU."""
    arch = space.sample(rng)
    return space.decode(np.r_[space.encode(arch)[:-1], 0])


def calibrated(net: Supernet, arch) -> Supernet:
    """Activate ``arch`` with BN statistics from seeded noise, so outputs are O(0.1), not ~0."""
    net.activate(arch)
    recalibrate_bn(net, noise_batches(arch.r, n=1, batch=8))
    return net.eval()
