from __future__ import annotations

import pytest
import torch
from helpers import SPACES

from edgenas import Supernet, get_space


@pytest.fixture(scope="session")
def supernets() -> dict[str, Supernet]:
    return {name: Supernet(get_space(name)) for name in SPACES}


@pytest.fixture
def image(request):
    def make(resolution: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
        return torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))

    return make
