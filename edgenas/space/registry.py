"""The registry of search spaces by name (``get_space``, ``list_spaces``, ``register_space``)."""

from __future__ import annotations

from ..errors import SpaceError
from .searchspace import SearchSpace

__all__ = ["get_space", "list_spaces", "register_space", "space_summaries"]

_SPACES: dict[str, SearchSpace] = {}


def register_space(space: SearchSpace) -> SearchSpace:
    if space.name in _SPACES and _SPACES[space.name] != space:
        raise SpaceError(f"a different space named '{space.name}' is already registered")
    _SPACES[space.name] = space
    return space


def list_spaces() -> list[str]:
    return sorted(_SPACES)


def get_space(name: str | SearchSpace) -> SearchSpace:
    """The registered space of that name (a ``SearchSpace`` passes through); unknown names list the known ones."""
    if isinstance(name, SearchSpace):
        return name
    try:
        return _SPACES[name]
    except KeyError:
        raise SpaceError(f"unknown space '{name}'; registered spaces: {', '.join(list_spaces())}") from None


def space_summaries() -> list[dict]:
    """One row per registered space: what ``edgenas spaces`` prints."""
    rows = []
    for name in list_spaces():
        sp = _SPACES[name]
        rows.append({"name": name, "digest": sp.digest(), "n_archs": sp.n_archs(), "resolutions": list(sp.resolutions),
                     "ks": list(sp.ks_choices), "e": list(sp.e_choices), "d": list(sp.d_choices), "num_classes": sp.num_classes,
                     **({"act": list(sp.act_choices)} if sp.act_choices else {}),
                     **({"se": [int(v) for v in sp.se_choices]} if sp.se_choices else {}),
                     "description": sp.description})
    return rows
