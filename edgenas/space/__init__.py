"""Search spaces and the one architecture encoding every stage of edgenas shares.

An :class:`Arch` is a plain frozen value (OFA's ``{"ks", "e", "d", "r"}``); a :class:`SearchSpace`
says which values are legal, turns an ``Arch`` into integer vectors for search (``encoding``),
and into the static layer shapes (``specs``) that the supernet, the cost model, the latency
table and the exporter all build on.  Spaces are registered by name (``registry``, ``presets``).
"""

from . import presets  # noqa: F401  (registers the presets)
from .arch import Arch
from .encoding import SAMPLINGS
from .registry import definition_record, get_space, list_spaces, register_space
from .searchspace import SearchSpace
from .specs import ACTIVATIONS, HeadSpec, MBConvSpec, NetSpec, StageSpec, StemSpec, conv_out, make_divisible

__all__ = [
    "ACTIVATIONS", "Arch", "HeadSpec", "MBConvSpec", "NetSpec", "SAMPLINGS", "SearchSpace", "StageSpec", "StemSpec", "conv_out",
    "definition_record", "get_space", "list_spaces", "make_divisible", "register_space",
]
