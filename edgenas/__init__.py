"""edgenas: hardware-aware, multi-objective neural architecture search for edge devices."""

from .errors import ArchError, CheckpointError, EdgeNASError, ExportError, SpaceError
from .space import Arch, SearchSpace, get_space, list_spaces, register_space
from .supernet import SubNet, Supernet

__version__ = "0.1.0"

__all__ = [
    "Arch", "ArchError", "CheckpointError", "EdgeNASError", "ExportError", "SearchSpace", "SpaceError",
    "SubNet", "Supernet", "get_space", "list_spaces", "register_space",
]
