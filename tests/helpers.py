"""Small shared helpers for the tests (not fixtures)."""

from __future__ import annotations

from pathlib import Path

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


def image_folder(root: Path, classes: int, per_class: int, size: int) -> str:
    """An imagefolder of flat-coloured PNGs (class folders c0, c1, ...): a ``--data`` spec for it."""
    from PIL import Image

    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((size, size, 3), (60 * c + i) % 256, dtype=np.uint8)).save(root / f"c{c}" / f"{i}.png")
    return f"imagefolder:{root}"
