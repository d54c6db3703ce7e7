"""Latency lookup tables: versioned JSON of measured blocks, and the predictor built on them.

A network's latency is predicted as::

    overhead + sum over its blocks of max(block time - overhead, 0)     (raw)
    max(scale * raw + per_mparam * params / 1e6 + offset, overhead)      (calibrated, if fitted)

where ``overhead`` is the per-``run`` cost of an empty graph (paid once per network, not once per
block) and the calibration is a least-squares fit of relative errors on whole networks measured end
to end: a block timed alone runs with its weights hot in cache, inside a network they arrive cold, which costs
roughly in proportion to the weight bytes (hence the parameter term).  Each time is the statistic
the table's protocol names (``min`` by default; tables made before it existed used the median).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..agent import STATISTICS, latency_ms
from ..checks import finite
from ..errors import LatencyError, SpaceError
from ..io import read_json, write_json
from ..quantize import INT8_GRAPH
from ..space import Arch, SearchSpace, get_space
from .blocks import block_key, enumerate_blocks

__all__ = ["LatencyError", "LatencyTable", "SCHEMA", "SCHEMA_VERSION"]

SCHEMA = "edgenas.latency-table"
SCHEMA_VERSION = 1
EMPTY_KEY = "__empty__"
NETWORK_PREFIX = "network:"  # whole calibration networks, measured interleaved with the blocks


_META_TYPES: dict[str, Any] = {
    "space": lambda v: isinstance(v, str), "space_digest": lambda v: isinstance(v, str),
    "resolutions": lambda v: isinstance(v, list) and bool(v) and all(isinstance(r, int) and 0 < r < 10_000 for r in v),
    "precision": lambda v: isinstance(v, str), "units": lambda v: v == "ms",
    "num_classes": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 100_000,
    "provider": lambda v: isinstance(v, str), "cpu_model": lambda v: isinstance(v, str),
    "threads": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 4096,
    "device": lambda v: isinstance(v, dict), "protocol": lambda v: isinstance(v, dict),
}


@dataclass
class LatencyTable:
    """A measured latency table: ``meta`` (device, protocol, space), per-block ``entries`` and an optional
    ``calibration`` fitted on whole networks.  ``load`` refuses a table made for another space,
    precision or resolution; ``predict_batch`` predicts ~1M archs/s."""

    meta: dict[str, Any]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    _space: SearchSpace | None = field(default=None, init=False, repr=False, compare=False)

    # ---- file format -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "meta": self.meta,
                "calibration": self.calibration, "entries": self.entries}

    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | os.PathLike) -> LatencyTable:
        """Parse a table file without judging completeness (used to resume profiling)."""
        path = Path(path)
        if not path.is_file():
            raise LatencyError(f"latency table not found: {path}")
        data = read_json(path, "latency table", LatencyError)
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise LatencyError(f"{path} is not an edgenas latency table")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise LatencyError(f"{path} has table schema version {data.get('schema_version')}; this edgenas reads {SCHEMA_VERSION}")
        meta, entries = data.get("meta"), data.get("entries")
        if not isinstance(meta, dict) or not isinstance(entries, dict):
            raise LatencyError(f"latency table {path} lacks its 'meta' or 'entries' section")
        for key, ok in _META_TYPES.items():
            if key not in meta:
                raise LatencyError(f"latency table {path} metadata lacks '{key}'")
            if not ok(meta[key]):
                raise LatencyError(f"latency table {path} metadata '{key}' is malformed: {meta[key]!r}")
        statistic = meta["protocol"].get("statistic", "median")
        if statistic not in STATISTICS:
            raise LatencyError(f"latency table {path} names an unknown statistic {statistic!r} ({' or '.join(STATISTICS)})")
        needed = STATISTICS[statistic]
        bad = [k for k, v in entries.items()
               if not (isinstance(v, dict) and needed in v and all(finite(t) and t > 0 for f, t in v.items() if f.endswith("_ms")))]
        if bad:
            raise LatencyError(f"latency table {path} has malformed entries (each needs '{needed}', and its times must be finite, "
                               f"positive numbers), e.g. {bad[0]!r}: {entries[bad[0]]!r}")
        cal = data.get("calibration")
        if cal is not None and not (isinstance(cal, dict) and all(finite(cal.get(k)) for k in ("scale", "per_mparam", "offset_ms"))):
            raise LatencyError(f"latency table {path} has a malformed calibration")
        return cls(meta, entries, data.get("calibration"))

    @classmethod
    def load(cls, path: str | os.PathLike, space: str | SearchSpace | None = None, precision: str | None = None) -> LatencyTable:
        """Read a complete table and check it belongs to ``space`` (and ``precision``)."""
        table = cls.read(path)
        if not table.meta.get("complete"):
            missing = len(table.missing_keys())
            raise LatencyError(
                f"latency table {path} is incomplete ({missing} blocks not measured yet); "
                "re-run the same `edgenas profile` command to resume it"
            )
        if space is not None:
            table.check_space(get_space(space), path)
        if precision is not None and table.meta["precision"] != precision:
            raise LatencyError(f"latency table {path} is for precision {table.meta['precision']}, not {precision}")
        if table.meta["precision"] == "int8" and table.int8_graph != INT8_GRAPH:
            print(f"edgenas: warning: latency table {path} quantized its blocks as int8 graph {table.int8_graph}, "
                  + table._graph_gap(), file=sys.stderr)
        return table

    def _graph_gap(self) -> str:
        """What an older int8 graph kept in float, for this table's space: in a ReLU, SE-free space only the
        head's pooling: the largest and smallest -lite subnets ran 0.5-4.5% faster without it (Intel Xeon)."""
        sp = self.space
        acts = {sp.first_block_act, sp.head_act, *(s.act for s in sp.stages), *sp.act_choices}
        if "h_swish" in acts or any(s.se for s in sp.stages) or True in sp.se_choices:
            return ("which kept h-swish, squeeze-excite gates and pooling in float; models exported now run them in int8 "
                    f"(int8 graph {INT8_GRAPH}), faster than it predicts: profile the table again")
        return ("which kept the head's pooling in float (this space has no h-swish or squeeze-excite); models exported now "
                f"run it in int8 (int8 graph {INT8_GRAPH}), a few percent faster than it predicts: profile the table again "
                "for exact numbers")

    def check_space(self, space: SearchSpace, where: Any = "latency table") -> None:
        if self.meta["space"] != space.name or self.meta["space_digest"] != space.digest():
            what = "a different definition of space" if self.meta["space"] == space.name else "space"
            raise LatencyError(f"{where} was measured for {what} '{self.meta['space']}', not for space '{space.name}'")

    # ---- content ---------------------------------------------------------------------------
    @property
    def space(self) -> SearchSpace:
        """The table's space: registered by name, or rebuilt from the definition the table records."""
        if self._space is None:
            try:
                self._space = get_space(self.meta["space"], self.meta.get("space_def"), self.meta["space_digest"])
            except SpaceError as exc:
                raise LatencyError(f"latency table: {exc}") from None
            self.check_space(self._space)
        return self._space

    @property
    def int8_graph(self) -> int | None:
        """How an int8 table's blocks were quantized (``quantize.INT8_GRAPH``; tables that predate it: 1); fp32: None."""
        return int(self.meta.get("int8_graph", 1)) if self.meta["precision"] == "int8" else None

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(self.meta["resolutions"])

    @property
    def statistic(self) -> str:
        """Which figure of a measurement this table holds and predicts: "min" or "median"."""
        return str(self.meta["protocol"].get("statistic", "median"))

    def ms(self, stats: dict[str, Any]) -> float:
        """A measurement (an entry, or a network measured with this table's protocol) as this table counts it."""
        return latency_ms(stats, self.statistic)

    @property
    def overhead_ms(self) -> float:
        return self.ms(self.entries[EMPTY_KEY]) if EMPTY_KEY in self.entries else 0.0

    def required_keys(self) -> list[str]:
        blocks = enumerate_blocks(self.space, self.resolutions, self.meta["num_classes"])
        nets = [f"{NETWORK_PREFIX}{i}" for i in range(len(self.meta.get("calibration_networks", [])))]
        return [EMPTY_KEY] + [b.key for b in blocks] + nets

    def calibration_archs(self) -> list[Arch]:
        return [self.space.arch(a) for a in self.meta.get("calibration_networks", [])]

    def calibration_keys(self, near_ms: float | None = None, n: int | None = None) -> list[str]:
        """The calibration networks' entry keys; with ``near_ms``, the ``n`` whose recorded time is nearest it first."""
        keys = [f"{NETWORK_PREFIX}{i}" for i in range(len(self.meta.get("calibration_networks", [])))]
        if near_ms is not None:
            keys.sort(key=lambda k: abs(np.log(self.ms(self.entries[k]) / near_ms)))
        return keys[:n]

    def drift(self, measured: dict[str, dict[str, Any]]) -> list[float]:
        """Each calibration network in ``measured`` (re-measured now with this table's protocol) over its
        time when profiled: how far the device's speed has moved since, apart from the table's own error."""
        return [self.ms(v) / self.ms(self.entries[k]) for k, v in measured.items() if k.startswith(NETWORK_PREFIX) and k in self.entries]

    def missing_keys(self) -> list[str]:
        return [k for k in self.required_keys() if k not in self.entries]

    # ---- prediction ------------------------------------------------------------------------
    def _lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """(fixed_ms[W, R], slot_ms[L, K, E, styles, W * W, R]) with overhead handled (the layout of
        :class:`~edgenas.cost.CostModel`: W width choices, a slot's (input, output) width pair)."""
        if getattr(self, "_cache", None) is None:
            sp, o = self.space, self.overhead_ms
            num_classes = self.meta["num_classes"]
            R, W = len(sp.resolutions), len(sp.widths)
            fixed = np.full((W, R), np.nan)
            slots = np.full((sp.n_layers, len(sp.ks_choices), len(sp.e_choices), len(sp.styles), W * W, R), np.nan)
            for ri, r in enumerate(sp.resolutions):
                if r not in self.resolutions:
                    continue
                # a block's share is never negative: one noisy empty-graph time above the blocks' must not make
                # networks predict faster than an empty graph (or below zero)
                ms = lambda spec: max(self.ms(self.entries[block_key(spec)]) - o, 0.0)  # noqa: E731
                for wi, w in enumerate(sp.widths):
                    fixed[wi, ri] = o + ms(sp.stem_spec(r)) + ms(sp.first_block_spec(r)) + ms(sp.head_spec(r, num_classes, w))
                for slot in range(sp.n_layers):
                    for (ki, ei, ti, wi), spec in sp.slot_blocks(slot, r):
                        slots[slot, ki, ei, ti, wi, ri] = ms(spec)
            self._cache = (fixed, slots)
        return self._cache

    def predict_batch(self, vectors: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Predicted latency (ms) of an (N, n_genes) array of arch vectors."""
        sp = self.space
        X = np.asarray(vectors, dtype=np.int64).reshape(-1, sp.n_genes)
        fixed, slots = self._lookup()
        ri, last = X[:, -1], sp.stage_width_indices(X)[:, -1]
        missing = np.isnan(fixed[last, ri])
        if missing.any():
            r = sp.resolutions[int(ri[np.argmax(missing)])]
            raise LatencyError(f"resolution {r} is not in this latency table (measured: {', '.join(map(str, self.resolutions))})")
        L = sp.n_layers
        active = sp.active_mask(X)
        per_slot = slots[np.arange(L)[None, :], X[:, :L], X[:, L : 2 * L], sp.slot_styles(X), sp.slot_width_pairs(X), ri[:, None]]
        raw = fixed[last, ri] + np.where(active, per_slot, 0.0).sum(1)
        if calibrated and self.calibration:
            c = self.calibration
            fitted = c["scale"] * raw + c["per_mparam"] * self._mparams(X) + c["offset_ms"]
            return np.maximum(fitted, self.overhead_ms)  # a fit's line, extrapolated, never beats the empty graph
        return raw

    def _mparams(self, X: np.ndarray) -> np.ndarray:
        from ..cost import cost_model

        return cost_model(self.space, self.meta["num_classes"]).batch(X)[0] / 1e6

    def predict(self, arch: Arch, calibrated: bool = True) -> float:
        return float(self.predict_batch(self.space.encode(arch)[None], calibrated)[0])

    def fit_calibration(self, X: np.ndarray, measured_ms: np.ndarray) -> dict[str, Any]:
        """Least-squares ``measured = scale * raw + per_mparam * Mparams + offset`` on whole networks.

        Each network's residual counts relative to its time, as the table's errors are reported: in absolute
        milliseconds the largest networks set the line, and a noisy profile's fit was further from its small
        networks than the uncalibrated sum (int8 cifar-mbv3 on a 2-core AMD EPYC: 7.4% mean error against 6.9%).
        Cold weights never save time: a negative weight term (noise, or raw and Mparams moving together on a few
        networks) is dropped and the line refitted, as is a slope that is not positive.  Such a line fits its
        networks yet extrapolates below zero, and a search finds the archs it places there (8 noisy networks gave
        -1.12 ms per Mparam, and NSGA-II a cifar-mbv3 subnet predicted at -0.05 ms).
        """
        raw, mp = self.predict_batch(X, calibrated=False), self._mparams(X)
        measured_ms = np.asarray(measured_ms, float)
        w = 1.0 / np.maximum(measured_ms, 1e-9)
        # few networks, or no line that slopes upwards: a pure ratio (the one nearest each network, relatively)
        scale, per_mparam, offset = float(np.sum(raw * w) / np.sum((raw * w) ** 2)), 0.0, 0.0
        if raw.size >= 6 and np.ptp(raw) > 0 and np.ptp(mp) > 0:
            A, b = np.column_stack([raw, mp, np.ones_like(raw)]) * w[:, None], measured_ms * w
            (s, p, o), *_ = np.linalg.lstsq(A, b, rcond=None)
            if p < 0 or s <= 0:
                (s, o), *_ = np.linalg.lstsq(A[:, [0, 2]], b, rcond=None)
                p = 0.0
            if s > 0:
                scale, per_mparam, offset = s, p, o
        self.calibration = {"scale": float(scale), "per_mparam": float(per_mparam), "offset_ms": float(offset),
                            "n_networks": int(raw.size)}
        fitted = self.predict_batch(X)
        self.calibration.update({
            "mape_before": float(np.mean(np.abs(raw / measured_ms - 1))),
            "mape_after": float(np.mean(np.abs(fitted / measured_ms - 1))),
            "points": [[float(a), float(b)] for a, b in zip(raw, measured_ms)],
        })
        return self.calibration
