"""Search spaces written as data: a YAML or JSON mapping of :class:`SearchSpace`'s fields, from
scratch or as a registered space with some fields changed (``base: cifar-mbv3``).

A user whose images are 64 or 96 pixels, or who wants other widths or kernels, writes a few lines
instead of Python.  Every field is checked here, its file and name in the message, so a bad
definition never reaches torch as a shape error.  The same reader rebuilds the definition that
checkpoints, latency tables, predictors, exported models and run settings record beside a space's
name, so a space defined in a file works in every later command without the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from ..errors import SpaceError
from ..io import read_yaml
from .searchspace import SearchSpace
from .specs import ACTIVATIONS, StageSpec

__all__ = ["SPACE_FILE_SUFFIXES", "read_space_file", "space_from_dict"]

SPACE_FILE_SUFFIXES = (".yaml", ".yml", ".json")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # it names files (latency tables) and is printed
_MAX_WIDTH = 8192


def _int(lo: int, hi: int) -> Callable[[Any], int | None]:
    return lambda v: v if isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi else None


def _number(lo: float, hi: float, lo_open: bool = False) -> Callable[[Any], float | int | None]:
    """A number in range, kept as written: a recorded definition must rebuild to its recorded digest."""
    def check(v: Any) -> float | int | None:
        if isinstance(v, bool) or not isinstance(v, int | float) or not (lo < v if lo_open else lo <= v) or v > hi:
            return None
        return v
    return check


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _act(v: Any) -> str | None:
    return v if v in ACTIVATIONS else None


def _flag(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def _list(item: Callable[[Any], Any], most: int) -> Callable[[Any], tuple | None]:
    def check(v: Any) -> tuple | None:
        if not isinstance(v, list | tuple) or not 1 <= len(v) <= most:
            return None
        out = tuple(item(x) for x in v)
        return None if any(x is None for x in out) else out
    return check


def _stage(v: Any) -> StageSpec | None:
    if not isinstance(v, Mapping) or set(v) != {"width", "stride", "act", "se"}:
        return None
    width, stride, act, se = _int(1, _MAX_WIDTH)(v["width"]), _int(1, 2)(v["stride"]), _act(v["act"]), _flag(v["se"])
    return None if width is None or stride is None or act is None or se is None else StageSpec(width, stride, act, se)


# field -> (check returning the value or None, what a valid value is)
_FIELDS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "name": (lambda v: v if isinstance(v, str) and NAME.fullmatch(v) else None,
             "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"),
    "stem_width": (_int(1, _MAX_WIDTH), f"an integer from 1 to {_MAX_WIDTH}"),
    "stem_stride": (_int(1, 2), "1 or 2"),
    "first_block_width": (_int(1, _MAX_WIDTH), f"an integer from 1 to {_MAX_WIDTH}"),
    "first_block_stride": (_int(1, 2), "1 or 2"),
    "first_block_act": (_act, f"one of {list(ACTIVATIONS)}"),
    "stages": (_list(_stage, 12), f"a list of 1-12 stages, each {{width: 1-{_MAX_WIDTH}, stride: 1 or 2, act: "
                                  f"{'|'.join(ACTIVATIONS)}, se: true|false}}"),
    "ks_choices": (_list(lambda v: v if _int(1, 15)(v) is not None and v % 2 else None, 8), "odd kernel sizes from 1 to 15"),
    "e_choices": (_list(_number(0, 16, lo_open=True), 8), "expand ratios above 0, at most 16"),
    "d_choices": (_list(_int(1, 16), 16), "depths from 1 to 16"),
    "resolutions": (_list(_int(1, 4096), 256), "input resolutions from 1 to 4096"),
    "final_expand_width": (_int(1, _MAX_WIDTH), f"an integer from 1 to {_MAX_WIDTH}"),
    "feature_width": (_int(1, _MAX_WIDTH), f"an integer from 1 to {_MAX_WIDTH}"),
    "num_classes": (_int(1, 100_000), "an integer from 1 to 100,000"),
    "dropout": (_number(0, 0.99), "a number from 0 to 0.99"),
    "in_channels": (_int(1, 64), "an integer from 1 to 64"),
    "stem_act": (_act, f"one of {list(ACTIVATIONS)}"),
    "head_act": (_act, f"one of {list(ACTIVATIONS)}"),
    "se_reduction": (_int(1, 64), "an integer from 1 to 64"),
    "divisor": (_int(1, 64), "an integer from 1 to 64"),
    "act_choices": (_list(_act, len(ACTIVATIONS)), f"activations among {list(ACTIVATIONS)}"),
    "se_choices": (_list(_flag, 2), "[false, true] or one of them"),
    "width_choices": (_list(_number(0, 1, lo_open=True), 8), "width multipliers in (0, 1], the last 1.0"),
    "description": (_text, "text"),
}
_OPTIONAL_EMPTY = ("act_choices", "se_choices", "width_choices")  # may be [] (not elastic), as to_dict leaves them out


def space_from_dict(data: Any, where: str, registered: Mapping[str, SearchSpace]) -> SearchSpace:
    """The space a mapping defines (``base: NAME`` first takes the fields of ``registered[NAME]``);
    ``where`` names its source in every error."""
    if not isinstance(data, Mapping):
        raise SpaceError(f"{where}: a space definition is a mapping of fields, not {type(data).__name__}")
    data = dict(data)
    if "base" in data:
        base = data.pop("base")
        if not isinstance(base, str) or base.lower().endswith(SPACE_FILE_SUFFIXES):  # a file naming itself would recurse
            raise SpaceError(f"{where}: 'base' must be the name of a registered space, not {base!r}")
        if base not in registered:
            raise SpaceError(f"{where}: unknown space '{base}' as 'base'; registered spaces: {', '.join(sorted(registered))}")
        if "name" not in data:
            raise SpaceError(f"{where}: a space changed from '{base}' needs a 'name' of its own")
        parent = registered[base]
        changed = ", ".join(k for k in data if k not in ("name", "description"))
        data = {**parent.to_dict(), "description": f"{parent.name} with {changed or 'nothing'} changed", **data}
    known = [f.name for f in fields(SearchSpace)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SpaceError(f"{where}: unknown space field(s) {unknown}; known: base, {', '.join(known)}")
    required = [f.name for f in fields(SearchSpace) if f.default is MISSING and f.default_factory is MISSING]
    missing = [k for k in required if k not in data]
    if missing:
        raise SpaceError(f"{where}: missing space field(s) {missing} (or give 'base: NAME' to start from a registered space)")
    values: dict[str, Any] = {}
    for key, value in data.items():
        check, valid = _FIELDS[key]
        if key in _OPTIONAL_EMPTY and value in ([], ()):
            values[key] = ()
            continue
        got = check(value)
        if got is None:
            raise SpaceError(f"{where}: space field '{key}' must be {valid}; got {value!r:.200}")
        values[key] = got
    try:
        return SearchSpace(**values)
    except SpaceError as exc:
        raise SpaceError(f"{where}: {exc}") from None


def read_space_file(path: str | Path, registered: Mapping[str, SearchSpace]) -> SearchSpace:
    """A space definition file (YAML or JSON, which is YAML; ``safe_load`` only)."""
    return space_from_dict(read_yaml(path, "space file"), f"space file {path}", registered)
