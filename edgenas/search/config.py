"""Search settings: one value read from a recipe (YAML) and/or flags, checked once, written back with the run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import check_fields, ranged
from ..errors import SearchError
from ..quantize import PRECISIONS
from ..space import SAMPLINGS, definition_record, get_space
from .objectives import OBJECTIVES

__all__ = ["ALGORITHMS", "BUDGETS", "LIMITS", "SearchConfig", "load_search_config"]

#: registered search algorithms (``edgenas.search.algorithms`` implements them)
ALGORITHMS = ("nsga2", "nsga3", "agemoea", "random", "reinforce", "surrogate")
#: default population x generations: when every evaluation is a table lookup and a predictor call (5,000 evaluations:
#: there NSGA-II beats random search on every seed, ``benchmarks/search_budget.py``), and when each scores a subnet
#: with the supernet (seconds each: 1,000)
BUDGETS = {"cheap": (100, 50), "supernet": (40, 25)}
#: budget flags and settings -> (quantity, whether it is an upper bound); shared by search and pick
LIMITS = {"max_latency": ("latency", True), "max_macs": ("macs", True), "max_params": ("params", True), "min_top1": ("top1", False)}


@dataclass
class SearchConfig:
    space: str  # a registered name or a space file; written back as the name, with space_def beside it
    space_def: dict[str, Any] | None = None  # the definition of a space not built in
    objectives: list[str] = field(default_factory=lambda: ["top1", "latency"])
    algorithm: str = "nsga2"
    pop_size: int = ranged(None, 2, 100_000)  # unset: BUDGETS by what an evaluation costs; validate resolves it (recorded)
    generations: int = ranged(None, 1, 100_000)
    sampling: str = "stratified"  # the first generation (random search: every arch): one of SAMPLINGS
    seed: int = ranged(0, 0, 2**31 - 1)
    table: str | None = None
    checkpoint: str | None = None
    data: str | None = None
    predictor: str | None = None
    num_classes: int | None = ranged(None, 1, 100_000)
    max_latency: str | float | None = None
    max_macs: str | float | None = None
    max_params: str | float | None = None
    min_top1: str | float | None = None
    resolutions: list[int] | None = None
    baseline: bool = True
    references: list[dict[str, Any]] = field(default_factory=list)
    reinforce_w: float = ranged(-0.07, -10.0, 10.0, integer=False)
    reinforce_lr: float = ranged(0.2, 0.0, 100.0, integer=False)
    calib_images: int = ranged(1000, 1, 10_000_000)  # as edgenas eval and export: front values equal theirs
    device: str = "cpu"
    static_shapes: bool = False  # score subnets inside the supernet at its largest shapes (Evaluator): no per-subnet set-up on a GPU
    precisions: list[str] = field(default_factory=lambda: ["fp32"])  # fp32,int8: (arch, precision) pairs
    int8_table: str | None = None  # latency of int8 models (with precisions fp32,int8)
    int8_drop: float | None = ranged(None, 0.0, 100.0, integer=False)  # top-1 points int8 loses (default: measured)

    def validate(self) -> SearchConfig:
        if self.pop_size is None or self.generations is None:
            top1 = isinstance(self.objectives, list) and "top1" in self.objectives
            pop, gens = BUDGETS["supernet" if self.algorithm == "surrogate" or (top1 and not self.predictor) else "cheap"]
            return dataclasses.replace(self, pop_size=pop if self.pop_size is None else self.pop_size,
                                       generations=gens if self.generations is None else self.generations).validate()
        check_fields(self, "search settings")
        space = get_space(self.space, self.space_def)
        if not self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise SearchError(f"objectives must be distinct and non-empty, got {self.objectives}")
        for o in self.objectives:
            if o not in OBJECTIVES:
                raise SearchError(f"unknown objective '{o}'; choose from {', '.join(OBJECTIVES)}")
        if self.sampling not in SAMPLINGS:
            raise SearchError(f"unknown sampling '{self.sampling}'; choose from {', '.join(SAMPLINGS)}")
        if self.algorithm not in ALGORITHMS:
            raise SearchError(f"unknown algorithm '{self.algorithm}'; choose from {', '.join(ALGORITHMS)}")
        if self.algorithm in ("reinforce", "surrogate") and ("top1" not in self.objectives or len(self.objectives) < 2):
            raise SearchError(f"--algorithm {self.algorithm} needs top1 and a cost objective (latency, macs or params)")
        if self.algorithm == "surrogate" and (not self.checkpoint or self.pop_size < 10):
            raise SearchError("--algorithm surrogate evaluates front members with the supernet: give --checkpoint and --data, "
                              "and --pop-size >= 10 (archs per round)")
        if not self.precisions or len(set(self.precisions)) != len(self.precisions) or set(self.precisions) - set(PRECISIONS):
            raise SearchError(f"precisions must be distinct values of {', '.join(PRECISIONS)}, got {self.precisions}")
        if "int8" in self.precisions and len(self.precisions) > 1:
            if not self.int8_table and ("latency" in self.objectives or self.max_latency is not None):
                raise SearchError("searching fp32 and int8 needs --int8-table (int8 latencies) beside --table")
            if "top1" in self.objectives and self.int8_drop is None and not self.checkpoint:
                raise SearchError("searching fp32 and int8 needs --int8-drop POINTS (the top-1 int8 loses, as `edgenas export "
                                  "--int8` reports it) or --checkpoint with --data to measure it")
        if self.resolutions:
            bad = [r for r in self.resolutions if r not in space.resolutions]
            if bad:
                raise SearchError(f"resolutions {bad} are not in space '{space.name}'")
        return dataclasses.replace(self, space=space.name, space_def=definition_record(space).get("space_def"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_search_config(path: str | Path | None, overrides: dict[str, Any], saved_run: bool = False) -> SearchConfig:
    """A recipe (YAML, optional) with overrides (None values ignored); ``saved_run``: a run's own config.yaml."""
    from ..io import load_settings

    data = load_settings([f.name for f in dataclasses.fields(SearchConfig)], path, overrides,
                         "search run config" if saved_run else "search recipe", recorded_space=_recorded_space,
                         ignore=("hv_bounds", "hv_reference_point") if saved_run else ())  # recomputed on resume
    if saved_run:
        data.setdefault("sampling", "uniform")  # runs saved before the setting drew uniform genes: resume them alike
    for key in ("objectives", "precisions"):
        if isinstance(data.get(key), str):
            data[key] = [o.strip() for o in data[key].split(",") if o.strip()]
    refs = data.get("references") or []
    if not isinstance(refs, list) or not all(isinstance(r, dict) and "arch" in r for r in refs):
        raise SearchError("search recipe: 'references' must be a list of mappings with 'name' and 'arch'")
    return SearchConfig(**data).validate()


def _recorded_space(settings: dict[str, Any]) -> dict[str, Any]:
    """No space named: the one the predictor, checkpoint or table records (the first given; the others are checked
    against it as when the space is named)."""
    if settings.get("predictor"):
        from .predictor import AccuracyPredictor

        space = AccuracyPredictor.load(settings["predictor"]).space
    elif settings.get("checkpoint"):
        from ..supernet.network import checkpoint_space

        space = checkpoint_space(settings["checkpoint"])
    elif settings.get("table"):
        from ..latency.table import LatencyTable

        space = LatencyTable.read(settings["table"]).space
    else:
        return {}
    return {"space": space.name, **definition_record(space)}
