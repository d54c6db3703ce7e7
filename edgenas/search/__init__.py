"""Multi-objective architecture search (pymoo) over the shared ``Arch`` encoding."""

from .objectives import OBJECTIVES, Constraint, Objective, SearchError, make_objective, parse_limit
from .pick import pick
from .predictor import AccuracyPredictor, SupernetAccuracy, arch_features, rank_metrics, sample_archs
from .problem import ArchCrossover, ArchDuplicates, ArchMutation, ArchProblem, ArchSampling
from .run import ALGORITHMS, SearchConfig, SearchRun, load_search_config

__all__ = [
    "ALGORITHMS", "OBJECTIVES", "AccuracyPredictor", "ArchCrossover", "ArchDuplicates", "ArchMutation", "ArchProblem",
    "ArchSampling", "Constraint", "Objective", "SearchConfig", "SearchError", "SearchRun", "SupernetAccuracy",
    "arch_features", "load_search_config", "make_objective", "parse_limit", "pick", "rank_metrics", "sample_archs",
]
