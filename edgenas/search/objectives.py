"""Objectives and constraints over arch vectors, each computed by the one code path that
``edgenas stats``, ``edgenas latency`` and ``edgenas eval`` use for a single arch."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..cost import cost_model
from ..errors import SearchError
from ..space import SearchSpace

__all__ = ["Constraint", "Objective", "SearchError", "by_precision", "make_objective", "parse_limit", "OBJECTIVES"]

OBJECTIVES = ("top1", "latency", "macs", "params")


class Accuracy(Protocol):
    def top1_vectors(self, X: np.ndarray) -> np.ndarray: ...


@dataclass
class Objective:
    """``name`` as reported; pymoo minimises ``sign * value`` (top1 is maximised)."""

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    sign: float = 1.0
    unit: str = ""

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(X), dtype=np.float64)


@dataclass
class Constraint:
    name: str  # the objective it bounds
    limit: float
    upper: bool = True  # value <= limit (else value >= limit)

    def violation(self, values: np.ndarray) -> np.ndarray:
        return values - self.limit if self.upper else self.limit - values

    def __str__(self) -> str:
        return f"{self.name} {'<=' if self.upper else '>='} {self.limit:g}"


_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


_UNITS = {"latency": {"": 1.0, "ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3},
          "top1": {"": 1.0, "%": 0.01}}
_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?"


def parse_limit(text: str | float, kind: str) -> float:
    """'5ms', '500us', '5' (ms) for latency; '300M', '2.5G', '300e6' for MACs and params; '0.8' or '80%' for top1."""
    units = _UNITS.get(kind, {"": 1.0, **{k: v for k, v in _SUFFIX.items() if k}})
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise SearchError(f"{kind} limit must be a number or a string like 5ms, 300M, 0.75; got {text!r}")
    value: float | None = None
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = re.fullmatch(rf"({_NUMBER})\s*([a-zµ%]*)", text.strip().lower().replace("_", ""))
        if m and m.group(2) in units:
            value = float(m.group(1)) * units[m.group(2)]
    if value is None:
        examples = {"latency": "5ms, 500us, 0.2s", "top1": "0.75, 75%"}.get(kind, "300M, 2.5G, 3.5e6")
        raise SearchError(f"cannot read {kind} limit {text!r} (examples: {examples})")
    if not np.isfinite(value) or value <= 0:
        raise SearchError(f"{kind} limit {text!r} is {'negative' if value < 0 else 'not a positive finite number'}")
    return value


def by_precision(name: str, n_arch_genes: int, per_precision: list[Objective]) -> Objective:
    """One objective over (arch, precision) vectors: row i uses ``per_precision[vector[n_arch_genes]]``."""

    def fn(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.int64)
        out = np.empty(len(X))
        for i, objective in enumerate(per_precision):
            rows = X[:, n_arch_genes] == i
            if rows.any():
                out[rows] = objective(X[rows, :n_arch_genes])
        return out

    return Objective(name, fn, per_precision[0].sign, per_precision[0].unit)


def make_objective(name: str, space: SearchSpace, *, num_classes: int | None = None, table=None,
                   accuracy: Accuracy | None = None, precision: str = "fp32", top1_drop: float = 0.0) -> Objective:
    """``name`` of arch vectors deployed at ``precision``: top-1 less ``top1_drop`` (a fraction), latency
    from ``table`` (which must hold that precision)."""
    if name in ("macs", "params"):
        cm = cost_model(space, num_classes or space.num_classes)
        idx = 0 if name == "params" else 1
        return Objective(name, lambda X: cm.batch(X)[idx].astype(np.float64))
    if name == "latency":
        if table is None:
            raise SearchError("the latency objective or constraint needs --table (a latency table for this space)")
        table.check_space(space, "--table")
        if table.meta["num_classes"] != (num_classes or space.num_classes):
            raise SearchError(f"--table was measured with {table.meta['num_classes']} classes, the search uses {num_classes}")
        if table.meta["precision"] != precision:
            flag = "--int8-table" if precision == "int8" else "--table"
            raise SearchError(f"{flag} holds {table.meta['precision']} latencies; {precision} models need a {precision} table")
        return Objective(name, table.predict_batch, unit="ms")
    if name == "top1":
        if accuracy is None:
            raise SearchError("the top1 objective needs --checkpoint with --data (supernet) or --predictor")
        if top1_drop:
            top1 = accuracy.top1_vectors
            return Objective(name, lambda X: top1(X) - top1_drop, sign=-1.0)
        return Objective(name, accuracy.top1_vectors, sign=-1.0)
    raise SearchError(f"unknown objective '{name}'; choose from {', '.join(OBJECTIVES)}")
