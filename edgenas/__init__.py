"""edgenas: hardware-aware, multi-objective neural architecture search for edge devices."""

import os

# On CPU each layer allocates its activations (hundreds of MB at evaluation batches) and frees them after the next
# one: on 4 KiB pages the kernel's page faults cost more than the convolutions.  PyTorch puts allocations of 2 MiB
# and more on transparent huge pages when this is set before its first such allocation: evaluation 1.84x faster
# (benchmarks/cpu_pages.py).  A user's own setting (THP_MEM_ALLOC_ENABLE=0) wins; non-Linux PyTorch ignores it.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from .errors import ArchError, CheckpointError, EdgeNASError, ExportError, SpaceError  # noqa: E402
from .space import Arch, SearchSpace, get_space, list_spaces, register_space  # noqa: E402
from .supernet import SubNet, Supernet  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Arch", "ArchError", "CheckpointError", "EdgeNASError", "ExportError", "SearchSpace", "SpaceError",
    "SubNet", "Supernet", "get_space", "list_spaces", "register_space",
]
