"""Search algorithms as objects in one registry, the pymoo way: each gets the problem and a
per-generation callback, and evaluates only through the problem (which caches and records).

    get_algorithm("nsga2").run(problem, budget, seed, callback)

``budget`` holds the population size and generation count, how first archs are drawn (``stratified``:
sizes spread over the space, see ``ArchSampling``) and REINFORCE's settings;
``callback(generation)`` is called after every generation (archive append, hypervolume).
Operators draw only from the generator pymoo passes in, so a seed reproduces a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import SearchError
from .objectives import Objective
from .predictor import AccuracyPredictor, sample_archs
from .problem import ArchCrossover, ArchDuplicates, ArchMutation, ArchProblem, ArchSampling
from .reinforce import ReinforceController

__all__ = ["Budget", "SearchAlgorithm", "get_algorithm", "register_algorithm"]

Callback = Callable[[int], None]


@dataclass(frozen=True)
class Budget:
    pop_size: int
    generations: int
    stratified: bool = True
    reinforce_w: float = -0.07
    reinforce_lr: float = 0.2


class SearchAlgorithm:
    """Base: ``run`` evaluates ``budget.generations`` batches through ``problem``, calling back after each."""

    name: ClassVar[str]
    needs_top1: ClassVar[bool] = False  # needs top1 and a cost objective
    precision_gene: ClassVar[bool] = True  # can search (arch, precision) pairs

    def run(self, problem: ArchProblem, budget: Budget, seed: int, callback: Callback) -> None:
        if problem.n_var > problem.n_arch_genes and not self.precision_gene:
            raise SearchError(f"--algorithm {self.name} searches one precision; use nsga2, nsga3, agemoea or random "
                              f"for --precision {','.join(problem.precisions)}")
        self._run(problem, budget, seed, callback)

    def _run(self, problem: ArchProblem, budget: Budget, seed: int, callback: Callback) -> None:
        raise NotImplementedError


_REGISTRY: dict[str, type[SearchAlgorithm]] = {}


def register_algorithm(cls: type[SearchAlgorithm]) -> type[SearchAlgorithm]:
    _REGISTRY[cls.name] = cls
    return cls


def get_algorithm(name: str) -> SearchAlgorithm:
    if name not in _REGISTRY:
        raise SearchError(f"unknown algorithm '{name}'; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]()


def _operators(problem: ArchProblem, stratified: bool) -> dict:
    return dict(sampling=ArchSampling(stratified), crossover=ArchCrossover(), mutation=ArchMutation(),
                eliminate_duplicates=ArchDuplicates(problem))


class _Pymoo(SearchAlgorithm):
    def _algorithm(self, problem: ArchProblem, budget: Budget, seed: int):
        raise NotImplementedError

    def _run(self, problem: ArchProblem, budget: Budget, seed: int, callback: Callback) -> None:
        algo = self._algorithm(problem, budget, seed)
        algo.setup(problem, termination=("n_gen", budget.generations), seed=seed, verbose=False)
        gen = 0
        while algo.has_next():
            algo.next()
            gen += 1
            callback(gen)


@register_algorithm
class NSGA2(_Pymoo):
    name = "nsga2"

    def _algorithm(self, problem: ArchProblem, budget: Budget, seed: int):
        from pymoo.algorithms.moo.nsga2 import NSGA2 as Algorithm

        return Algorithm(pop_size=budget.pop_size, **_operators(problem, budget.stratified))


@register_algorithm
class NSGA3(_Pymoo):
    name = "nsga3"

    def _algorithm(self, problem: ArchProblem, budget: Budget, seed: int):
        from pymoo.algorithms.moo.nsga3 import NSGA3 as Algorithm
        from pymoo.util.ref_dirs import get_reference_directions

        if problem.n_obj < 2:
            raise SearchError("nsga3 needs at least 2 objectives")
        dirs = get_reference_directions("energy", problem.n_obj, budget.pop_size, seed=seed)
        return Algorithm(ref_dirs=dirs, pop_size=budget.pop_size, **_operators(problem, budget.stratified))


@register_algorithm
class AGEMOEA(_Pymoo):
    name = "agemoea"

    def _algorithm(self, problem: ArchProblem, budget: Budget, seed: int):
        if problem.n_obj < 2:
            raise SearchError("agemoea needs at least 2 objectives")
        try:
            import numba  # noqa: F401  (pymoo's AGE-MOEA is compiled with numba)
        except ImportError:
            raise SearchError("--algorithm agemoea needs numba: pip install 'edgenas[agemoea]' (or use nsga3)") from None
        from pymoo.algorithms.moo.age import AGEMOEA as Algorithm

        return Algorithm(pop_size=budget.pop_size, **_operators(problem, budget.stratified))


@register_algorithm
class RandomSearch(SearchAlgorithm):
    """Distinct random archs (drawn as ``budget.stratified`` says), ``pop_size`` a generation; the budget is
    capped at the space's size."""

    name = "random"

    def _run(self, problem: ArchProblem, budget: Budget, seed: int, callback: Callback) -> None:
        space, res = problem.space, problem.resolutions
        n = min(budget.pop_size * budget.generations, space.n_archs(res))
        X = sample_archs(space, n, seed, res, budget.stratified)
        if problem.n_var > problem.n_arch_genes:  # a precision for each (distinct) arch
            X = np.c_[X, np.random.default_rng([seed, 1]).integers(0, len(problem.precisions), size=len(X))]
        for g in range(budget.generations):
            problem.quantities(X[g * budget.pop_size : (g + 1) * budget.pop_size])
            callback(g + 1)


def _cost(problem: ArchProblem) -> str:
    return next(o.name for o in problem.objectives if o.name != "top1")


@register_algorithm
class Reinforce(SearchAlgorithm):
    """MnasNet's controller: reward ``top1 * (cost / target) ** w`` (target: the cost limit, else the median)."""

    name = "reinforce"
    needs_top1 = True
    precision_gene = False

    def _run(self, problem: ArchProblem, budget: Budget, seed: int, callback: Callback) -> None:
        cost = _cost(problem)
        limit = next((c.limit for c in problem.constraints if c.name == cost), None)
        if limit is None:
            limit = float(np.median(problem.quantities(sample_archs(problem.space, 16, seed + 7, problem.resolutions))[cost]))
        ctrl = ReinforceController(problem.space, limit, budget.reinforce_w, budget.reinforce_lr, seed=seed,
                                   resolution_idx=problem.resolution_idx)
        for g in range(budget.generations):
            X = ctrl.sample(budget.pop_size)
            q = problem.quantities(X)
            ctrl.update(X, ctrl.reward(q["top1"], q[cost]))
            callback(g + 1)


@register_algorithm
class Surrogate(SearchAlgorithm):
    """MSuNAS-style: NSGA-II on a predictor, the best unseen front members evaluated for real, refit, repeat.

    Round 1 evaluates ``pop_size`` random archs with the supernet; each later round evaluates
    ``pop_size`` archs spread along the predictor's front (topped up with random unseen ones).
    Only real evaluations reach the problem's cache, the archive and the front.
    """

    name = "surrogate"
    needs_top1 = True
    precision_gene = False

    def _run(self, problem: ArchProblem, budget: Budget, seed: int, callback: Callback) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2 as Algorithm
        from pymoo.optimize import minimize

        space, res = problem.space, problem.resolutions
        X = sample_archs(space, budget.pop_size, seed, res, budget.stratified)
        for rnd in range(budget.generations):
            problem.quantities(X)  # real evaluation, recorded
            callback(rnd + 1)
            if rnd == budget.generations - 1:
                break
            keys = list(problem.seen)  # in evaluation order, also on a resumed replay
            seen = np.stack([np.frombuffer(k, dtype=np.int64) for k in keys])
            pred = AccuracyPredictor(space, seed=seed).fit(seen, np.array([problem.cache[k]["top1"] for k in keys]))
            objs = [Objective(o.name, pred.top1_vectors, o.sign) if o.name == "top1" else o for o in problem.objectives]
            inner = ArchProblem(space, objs, problem.constraints, problem.extra, allowed_resolutions=res)
            found = minimize(inner, Algorithm(pop_size=budget.pop_size, **_operators(problem, budget.stratified)), ("n_gen", 20), seed=seed + rnd + 1,
                             verbose=False)
            known = set(keys)
            front, F = space.canonical_vectors(np.atleast_2d(found.X)), np.atleast_2d(found.F)
            fresh = sorted((i for i, x in enumerate(front) if x.tobytes() not in known), key=lambda i: F[i, 0])
            if len(fresh) > budget.pop_size:  # spread along the predicted front
                fresh = [fresh[j] for j in np.linspace(0, len(fresh) - 1, budget.pop_size).astype(int)]
            chosen = [front[i] for i in fresh]
            taken = known | {x.tobytes() for x in chosen}
            for x in sample_archs(space, budget.pop_size * 4, seed + 1000 + rnd, res, budget.stratified):
                if len(chosen) >= budget.pop_size:  # every round spends pop_size evaluations
                    break
                if x.tobytes() not in taken:
                    chosen.append(x)
                    taken.add(x.tobytes())
            X = np.stack(chosen)
