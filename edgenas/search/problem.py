"""pymoo problem and integer operators over the ``Arch`` vector encoding.

Operators draw only from the generator pymoo passes in (``random_state``), so ``seed`` reproduces
a run; every child is canonicalised, so it is a valid arch and equal networks compare equal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling

from ..space import SearchSpace
from .objectives import Constraint, Objective

__all__ = ["ArchCrossover", "ArchDuplicates", "ArchMutation", "ArchProblem", "ArchSampling"]


class ArchProblem(Problem):
    """Vectorized: one call evaluates a whole population; results are cached per canonical arch.

    A vector is the space's arch genes, plus one precision gene (an index into ``precisions``)
    when more than one precision is searched: (arch, precision) pairs, each with its own latency.
    """

    def __init__(self, space: SearchSpace, objectives: list[Objective], constraints: list[Constraint],
                 extra: dict[str, Objective] | None = None, on_evaluated: Callable | None = None,
                 allowed_resolutions: list[int] | None = None, precisions: list[str] | None = None):
        self.space, self.objectives, self.constraints = space, objectives, constraints
        self.precisions = list(precisions or ["fp32"])
        self.n_arch_genes = space.n_genes
        self.extra = extra or {}  # constrained quantities that are not objectives
        self.on_evaluated = on_evaluated
        self.resolutions = sorted(allowed_resolutions) if allowed_resolutions else None
        self.cache: dict[bytes, dict[str, float]] = {}
        self.seen: dict[bytes, None] = {}  # archs asked for so far, cached or not, in the order first asked
        self.n_choices = np.r_[space.n_choices, [len(self.precisions)] * (len(self.precisions) > 1)].astype(np.int64)
        xl = np.zeros(len(self.n_choices), dtype=int)
        xu = (self.n_choices - 1).astype(int)
        res_gene = space.n_genes - 1
        if allowed_resolutions:
            idx = sorted(space.resolutions.index(r) for r in allowed_resolutions)
            xl[res_gene], xu[res_gene] = idx[0], idx[-1]
        self.resolution_idx = np.array(sorted(space.resolutions.index(r) for r in allowed_resolutions)) if allowed_resolutions else None
        super().__init__(n_var=len(self.n_choices), n_obj=len(objectives), n_ieq_constr=len(constraints), xl=xl, xu=xu, vtype=int)

    def canonical(self, X: np.ndarray) -> np.ndarray:
        """Canonical arch genes (equal networks compare equal), the precision gene as it is."""
        X = np.asarray(X, dtype=np.int64).reshape(-1, self.n_var)
        out = X.copy()
        out[:, : self.n_arch_genes] = self.space.canonical_vectors(X[:, : self.n_arch_genes])
        return out

    def precision_of(self, X: np.ndarray) -> list[str]:
        X = np.asarray(X).reshape(-1, self.n_var)
        return [self.precisions[int(i)] for i in X[:, self.n_arch_genes]] if self.n_var > self.n_arch_genes else ["fp32"] * len(X)

    def quantities(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Every objective and constrained quantity for canonical vectors X (cached)."""
        X = np.asarray(X, dtype=np.int64)
        keys = [x.tobytes() for x in X]
        self.seen.update(dict.fromkeys(keys))
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            fns = {o.name: o for o in self.objectives} | self.extra
            new = {name: fn(X[todo]) for name, fn in fns.items()}
            for j, i in enumerate(todo):
                self.cache[keys[i]] = {name: float(v[j]) for name, v in new.items()}
            if self.on_evaluated is not None:
                self.on_evaluated(X[todo], {name: v for name, v in new.items()})
        rows = [self.cache[k] for k in keys]
        return {name: np.array([r[name] for r in rows]) for name in rows[0]} if rows else {}

    def _evaluate(self, X, out, *args, **kwargs):
        q = self.quantities(self.canonical(X))
        out["F"] = np.column_stack([o.sign * q[o.name] for o in self.objectives])
        if self.constraints:
            out["G"] = np.column_stack([c.violation(q[c.name]) for c in self.constraints])


def _fix_resolution(problem: ArchProblem, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if problem.resolution_idx is not None:
        g = problem.n_arch_genes - 1
        bad = ~np.isin(X[:, g], problem.resolution_idx)
        X[bad, g] = rng.choice(problem.resolution_idx, size=int(bad.sum()))
    return X


class ArchSampling(Sampling):
    """The first generation: ``stratified`` (default) spreads its sizes from the space's smallest arch to its
    largest, so the front's ends are in reach from the start; uniform genes make mid-sized archs only, which
    crossover and mutation then take many generations to leave (``SearchSpace.sample_vectors``)."""

    def __init__(self, stratified: bool = True):
        super().__init__()
        self.stratified = stratified

    def _do(self, problem: ArchProblem, n_samples, *args, random_state=None, **kwargs):
        X = problem.space.sample_vectors(random_state, n_samples, self.stratified, problem.resolution_idx)
        if problem.n_var > problem.n_arch_genes:  # the precision gene is no size: uniform
            X = np.c_[X, random_state.integers(0, len(problem.precisions), size=n_samples)]
        return X


class ArchCrossover(Crossover):
    """Uniform crossover per gene (genes are independent choices, so children are always valid)."""

    def __init__(self, prob: float = 0.9):
        super().__init__(2, 2, prob=prob)

    def _do(self, problem: ArchProblem, X, *args, random_state=None, **kwargs):
        _, n_matings, n_var = X.shape
        swap = random_state.random((n_matings, n_var)) < 0.5
        a, b = X[0].astype(np.int64), X[1].astype(np.int64)
        c1, c2 = np.where(swap, b, a), np.where(swap, a, b)
        return np.stack([problem.canonical(c1), problem.canonical(c2)])


class ArchMutation(Mutation):
    """Resample each gene with probability ``rate`` (default 1 / n_genes, at least one gene on average)."""

    def __init__(self, rate: float | None = None):
        super().__init__()
        self.rate = rate

    def _do(self, problem: ArchProblem, X, *args, random_state=None, **kwargs):
        X = np.asarray(X, dtype=np.int64).copy()
        rate = self.rate or 1.0 / problem.n_var
        mask = random_state.random(X.shape) < rate
        fresh = random_state.integers(0, problem.n_choices, size=X.shape)
        X[mask] = fresh[mask]
        return problem.canonical(_fix_resolution(problem, X, random_state))


class ArchDuplicates(DefaultDuplicateElimination):
    """Duplicates are archs that are the same network (canonical vectors equal), at the same precision."""

    def __init__(self, problem: ArchProblem):
        super().__init__(func=lambda pop: problem.canonical(pop.get("X")).astype(np.float64), epsilon=0.5)
