"""The architecture value every stage of edgenas shares: OFA's ``{"ks", "e", "d", "r"}`` as a frozen, hashable ``Arch``
(with per-stage ``act``, ``se`` and width ``w`` where a space makes them elastic)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ArchError

__all__ = ["Arch"]


def _number(value: Any) -> int | float:
    """Normalise 3.0 -> 3 so JSON round-trips and hashing do not depend on int/float."""
    if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
        raise TypeError(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class Arch:
    """One subnet: kernel size and expand ratio per elastic layer, depth per stage, resolution.

    ``ks`` and ``e`` hold an entry for every layer slot (``n_stages * max_depth``), as OFA does;
    entries beyond a stage's depth are inactive.  ``act``, ``se`` and ``w`` (a width multiplier)
    hold one entry per stage in a space whose activation, squeeze-excite or width is elastic, and
    are empty otherwise (each stage then has its own fixed ones).  Use :meth:`SearchSpace.canonical` to compare archs as networks.
    """

    ks: tuple[int, ...]
    e: tuple[int | float, ...]
    d: tuple[int, ...]
    r: int
    act: tuple[str, ...] = ()
    se: tuple[bool, ...] = ()
    w: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "r": self.r}
        if self.act:
            out["act"] = list(self.act)
        if self.se:
            out["se"] = [int(v) for v in self.se]
        if self.w:
            out["w"] = list(self.w)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_r: int | None = None) -> Arch:
        """Parse OFA's dict form; checks types only (the space checks values)."""
        if not isinstance(data, Mapping):
            raise ArchError(f"arch must be a JSON object with keys ks, e, d, r; got {type(data).__name__}")
        unknown = sorted(set(data) - {"ks", "e", "d", "r", "act", "se", "w"})
        if unknown:
            raise ArchError(f"arch has unknown key(s) {unknown}; expected ks, e, d, r (and act, se, w in spaces where they are elastic)")
        act, se = data.get("act", []), data.get("se", [])
        if not isinstance(act, list | tuple) or not all(isinstance(a, str) for a in act):
            raise ArchError(f"arch 'act' must be a list of activation names, one per stage, got {act!r}")
        if not isinstance(se, list | tuple) or not all(v in (0, 1) and not isinstance(v, float) for v in se):
            raise ArchError(f"arch 'se' must be a list of 0/1 (or false/true), one per stage, got {se!r}")
        fields: dict[str, tuple] = {}
        for key in ("ks", "e", "d", "w"):
            if key == "w" and key not in data:
                fields[key] = ()
                continue
            if key not in data:
                raise ArchError(f"arch is missing '{key}'")
            seq = data[key]
            if not isinstance(seq, list | tuple):
                raise ArchError(f"arch '{key}' must be a list of numbers, got {seq!r}")
            try:
                fields[key] = tuple(_number(v) for v in seq)
            except TypeError as exc:
                raise ArchError(f"arch '{key}' holds a non-number: {exc.args[0]!r}") from None
        r = data.get("r", default_r)
        if isinstance(r, list | tuple) and len(r) == 1:  # OFA search results write "r": [224]
            r = r[0]
        if r is None:
            raise ArchError("arch is missing 'r' (input resolution)")
        if isinstance(r, bool) or not isinstance(r, int | float) or not math.isfinite(r) or float(r) != int(r) or r <= 0:
            raise ArchError(f"arch 'r' must be an integer resolution, got {r!r}")
        for key in ("ks", "d"):
            if any(not float(v).is_integer() for v in fields[key]):
                raise ArchError(f"arch '{key}' must hold integers, got {list(fields[key])}")
        return cls(
            ks=tuple(int(v) for v in fields["ks"]),
            e=fields["e"],
            d=tuple(int(v) for v in fields["d"]),
            r=int(r),
            act=tuple(act),
            se=tuple(bool(v) for v in se),
            w=tuple(float(v) for v in fields["w"]),
        )
