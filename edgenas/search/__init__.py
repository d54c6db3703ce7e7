"""Multi-objective architecture search (pymoo) over the shared ``Arch`` encoding.

Names are imported on first use, so the accuracy predictor and objectives work where pymoo is
not installed (a GPU training machine); the search itself needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "OBJECTIVES": "objectives", "Constraint": "objectives", "Objective": "objectives", "SearchError": "objectives",
    "make_objective": "objectives", "parse_limit": "objectives", "pick": "front",
    "AccuracyPredictor": "predictor", "SupernetAccuracy": "predictor", "arch_features": "predictor", "fit_predictor": "predictor",
    "rank_metrics": "predictor", "sample_archs": "predictor",
    "ArchCrossover": "problem", "ArchDuplicates": "problem", "ArchMutation": "problem", "ArchProblem": "problem",
    "ArchSampling": "problem", "ALGORITHMS": "config", "LIMITS": "config", "SearchConfig": "config", "load_search_config": "config",
    "SearchRun": "run", "get_algorithm": "algorithms", "register_algorithm": "algorithms", "SearchAlgorithm": "algorithms",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'edgenas.search' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
