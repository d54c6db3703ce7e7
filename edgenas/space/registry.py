"""The registry of search spaces by name (``get_space``, ``list_spaces``, ``register_space``).

A space is named by a registered name, by a definition file (``--space my-space.yaml``), or by a
name with the definition an artefact recorded beside it (``get_space(name, definition)``): a space
that is not built in travels inside every file made with it, so no later command needs its file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import SpaceError
from .definition import SPACE_FILE_SUFFIXES, read_space_file, space_from_dict
from .searchspace import SearchSpace

__all__ = ["definition_record", "get_space", "list_spaces", "register_space", "space_summaries"]

_SPACES: dict[str, SearchSpace] = {}
_BUILTIN: dict[str, str] = {}  # name -> digest of the presets edgenas ships


def register_space(space: SearchSpace, *, builtin: bool = False) -> SearchSpace:
    if space.name in _SPACES and _SPACES[space.name] != space:
        raise SpaceError(f"a different space named '{space.name}' is already registered")
    _SPACES[space.name] = space
    if builtin:
        _BUILTIN[space.name] = space.digest()
    return space


def list_spaces() -> list[str]:
    return sorted(_SPACES)


def get_space(name: str | SearchSpace, definition: Mapping[str, Any] | None = None, digest: str | None = None) -> SearchSpace:
    """The space ``name`` stands for: a registered name, or a definition file (.yaml, .yml, .json),
    registered on first use.  ``definition`` is what an artefact recorded beside the name: the
    registered space where it has that digest, else the space it defines (registered if the name is
    free), so a mismatch is then caught by the digest checks that name both.  ``digest``, the one
    the artefact recorded, must be the definition's: an edited definition would otherwise build
    another network under the same name."""
    if isinstance(name, SearchSpace):
        return name
    if definition is not None:
        space = space_from_dict(definition, f"the definition recorded for space '{name}'", _SPACES)
        if space.name != name:
            raise SpaceError(f"the definition recorded for space '{name}' names space '{space.name}'")
        if digest is not None and space.digest() != digest:
            raise SpaceError(f"the definition recorded for space '{name}' does not match its recorded digest {digest} "
                             "(the file was edited or is corrupt)")
        registered = _SPACES.get(name)
        if registered is None:
            return register_space(space)
        return registered if registered.digest() == space.digest() else space
    if name in _SPACES:
        return _SPACES[name]
    if isinstance(name, str) and name.lower().endswith(SPACE_FILE_SUFFIXES):
        space = read_space_file(name, _SPACES)
        registered = _SPACES.get(space.name)
        if registered is not None and registered != space:
            raise SpaceError(f"space file {name} defines '{space.name}', but a different space of that name is registered: "
                             "give yours a name of its own")
        return register_space(space)
    raise SpaceError(f"unknown space '{name}'; registered spaces: {', '.join(list_spaces())}; or a space file "
                     f"({', '.join(SPACE_FILE_SUFFIXES)})")


def definition_record(space: SearchSpace) -> dict[str, Any]:
    """What an artefact records beside ``space``'s name so that later commands can rebuild it:
    nothing for a built-in preset (its name says it all), else ``{"space_def": definition}``."""
    if _BUILTIN.get(space.name) == space.digest():
        return {}
    return {"space_def": space.definition()}


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
