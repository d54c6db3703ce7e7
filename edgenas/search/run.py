"""``edgenas search``: a multi-objective search run with its archive, front, hypervolume and plots.

Resume: every evaluation is stored exactly in ``archive.csv``; a resumed run replays the seeded
algorithm with those evaluations served from the cache (no objective is recomputed) and goes on,
so it ends exactly where an uninterrupted run with the same seed would.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from tqdm import tqdm

from ..checks import check_fields, ranged
from ..io import append_text, atomic_path, exclusive, write_json
from ..space import SearchSpace, get_space
from .objectives import OBJECTIVES, Constraint, Objective, SearchError, make_objective, parse_limit
from .predictor import sample_archs
from .problem import ArchCrossover, ArchDuplicates, ArchMutation, ArchProblem, ArchSampling
from .reinforce import ReinforceController

__all__ = ["ALGORITHMS", "SearchConfig", "SearchRun", "load_search_config"]

ALGORITHMS = ("nsga2", "nsga3", "agemoea", "random", "reinforce", "surrogate")
_LIMITS = {"max_latency": ("latency", True), "max_macs": ("macs", True), "max_params": ("params", True), "min_top1": ("top1", False)}


@dataclass
class SearchConfig:
    space: str
    objectives: list[str] = field(default_factory=lambda: ["top1", "latency"])
    algorithm: str = "nsga2"
    pop_size: int = ranged(40, 2, 100_000)
    generations: int = ranged(25, 1, 100_000)
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

    def validate(self) -> "SearchConfig":
        check_fields(self, "search settings")
        space = get_space(self.space)
        if not self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise SearchError(f"objectives must be distinct and non-empty, got {self.objectives}")
        for o in self.objectives:
            if o not in OBJECTIVES:
                raise SearchError(f"unknown objective '{o}'; choose from {', '.join(OBJECTIVES)}")
        if self.algorithm not in ALGORITHMS:
            raise SearchError(f"unknown algorithm '{self.algorithm}'; choose from {', '.join(ALGORITHMS)}")
        if self.algorithm in ("reinforce", "surrogate") and ("top1" not in self.objectives or len(self.objectives) < 2):
            raise SearchError(f"--algorithm {self.algorithm} needs top1 and a cost objective (latency, macs or params)")
        if self.algorithm == "surrogate" and (not self.checkpoint or self.pop_size < 10):
            raise SearchError("--algorithm surrogate evaluates front members with the supernet: give --checkpoint and --data, "
                              "and --pop-size >= 10 (archs per round)")
        if self.resolutions:
            bad = [r for r in self.resolutions if r not in space.resolutions]
            if bad:
                raise SearchError(f"resolutions {bad} are not in space '{space.name}'")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_search_config(path: str | Path | None, overrides: dict[str, Any], saved_run: bool = False) -> SearchConfig:
    """A recipe (YAML, optional) with overrides (None values ignored); ``saved_run``: a run's own config.yaml."""
    from ..io import read_yaml

    data = read_yaml(path, "search run config" if saved_run else "search recipe") if path else {}
    if saved_run:  # written by the run beside its settings; recomputed on resume
        data = {k: v for k, v in data.items() if k not in ("hv_bounds", "hv_reference_point")}
    data.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(SearchConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SearchError(f"unknown search setting(s) {unknown}")
    if "space" not in data:
        raise SearchError("no space given (--space or 'space:' in the recipe)")
    if isinstance(data.get("objectives"), str):
        data["objectives"] = [o.strip() for o in data["objectives"].split(",") if o.strip()]
    refs = data.get("references") or []
    if not isinstance(refs, list) or not all(isinstance(r, dict) and "arch" in r for r in refs):
        raise SearchError("search recipe: 'references' must be a list of mappings with 'name' and 'arch'")
    return SearchConfig(**data).validate()


class SearchRun:
    def __init__(self, cfg: SearchConfig, out: str | Path, *, resume: bool = False, progress: bool = True, accuracy=None, table=None):
        self.cfg, self.out, self.progress, self.resume = cfg, Path(out), progress, resume
        self.space: SearchSpace = get_space(cfg.space)
        self._check_out()  # early, before inputs load; again under the run's lock
        self.table = table if table is not None else self._load_table()
        self.accuracy = accuracy if accuracy is not None else self._load_accuracy()
        nc = cfg.num_classes or self.space.num_classes
        self.constraints = [Constraint(q, parse_limit(getattr(cfg, k), q), up) for k, (q, up) in _LIMITS.items()
                            if getattr(cfg, k) is not None]
        mk = lambda name: make_objective(name, self.space, num_classes=nc, table=self.table, accuracy=self.accuracy)  # noqa: E731
        self.objectives: list[Objective] = [mk(o) for o in cfg.objectives]
        extra = {c.name: mk(c.name) for c in self.constraints if c.name not in cfg.objectives}
        self.resolutions = cfg.resolutions or (list(self.table.resolutions) if self.table is not None and
                                               ("latency" in cfg.objectives or "latency" in extra) else None)
        self.problem = ArchProblem(self.space, self.objectives, self.constraints, extra, allowed_resolutions=self.resolutions)
        self.bounds = self._bounds()
        self._check_satisfiable()
        self.archive: list[dict[str, Any]] = []
        self._flushed = 0
        self._caches: dict[str, dict[bytes, dict[str, float]]] = {}
        self.problem.on_evaluated = self._record
        self._algo_label = cfg.algorithm

    def _check_out(self) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise SearchError(f"--out {self.out} is a file; give a directory")
        if (self.out / "front.json").exists() and not self.resume:
            raise SearchError(f"{self.out} already holds a finished search; use another --out")
        if (self.out / "archive.csv").exists() and not self.resume:
            raise SearchError(f"{self.out} holds an unfinished search; pass --resume to continue it")
        if self.resume and not (self.out / "config.yaml").exists():
            raise SearchError(f"--resume: {self.out} holds no search run")

    # ---- inputs ----------------------------------------------------------------------------
    def _load_table(self):
        if not self.cfg.table:
            return None
        from ..latency.table import LatencyTable

        return LatencyTable.load(self.cfg.table, self.space)

    def _load_accuracy(self):
        cfg = self.cfg
        if cfg.predictor:
            from .predictor import AccuracyPredictor

            return AccuracyPredictor.load(cfg.predictor, self.space)
        if cfg.checkpoint:
            if not cfg.data:
                raise SearchError("top1 from a supernet checkpoint needs --data (the data it was trained on)")
            from ..data import checkpoint_data
            from ..supernet import Supernet, read_checkpoint
            from ..evaluate import Evaluator
            from .predictor import SupernetAccuracy

            ckpt = read_checkpoint(cfg.checkpoint, self.space)
            if cfg.data != (ckpt.get("data") or {}).get("spec"):
                raise SearchError(f"--data {cfg.data} is not the data the checkpoint was trained on ({(ckpt.get('data') or {}).get('spec')})")
            data = checkpoint_data(ckpt.get("data"))
            net = Supernet.from_checkpoint(ckpt)
            return SupernetAccuracy(net, Evaluator(data, calib_images=cfg.calib_images, device=cfg.device), self.progress)
        return None

    # ---- bounds, feasibility, HV -------------------------------------------------------------
    def _bounds(self) -> dict[str, tuple[float, float]]:
        """Fixed normalisation per objective (recorded): top1 in [0, 1], costs in [0, 1.05 x the largest subnet]."""
        res = self.resolutions or list(self.space.resolutions)
        biggest = self.space.encode(self.space.max_arch(max(res)))[None]
        out = {}
        for o in self.objectives:
            out[o.name] = (0.0, 1.0) if o.name == "top1" else (0.0, 1.05 * float(o(biggest)[0]))
        return out

    def _check_satisfiable(self) -> None:
        res = self.resolutions or list(self.space.resolutions)
        smallest = self.space.encode(self.space.min_arch(min(res)))[None]
        fns = {o.name: o for o in self.objectives} | self.problem.extra
        for c in self.constraints:
            if c.name == "top1":
                if not 0 < c.limit <= 1:
                    raise SearchError(f"--min-top1 {c.limit:g} is unsatisfiable (top-1 lies in (0, 1])")
                continue
            low = float(fns[c.name](smallest)[0])
            if c.limit <= 0 or low > c.limit:
                raise SearchError(f"constraint {c} is unsatisfiable: the smallest subnet (r={min(res)}) already has "
                                  f"{c.name} {low:.4g}")

    def normalised(self, values: dict[str, np.ndarray]) -> np.ndarray:
        cols = []
        for o in self.objectives:
            lo, hi = self.bounds[o.name]
            v = (values[o.name] - lo) / (hi - lo)
            cols.append(1.0 - v if o.sign < 0 else v)  # both: smaller is better, in [0, 1]
        return np.column_stack(cols)

    def front_indices(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """Indices of feasible, non-dominated rows."""
        if not rows:
            return np.array([], dtype=int)
        feas = np.array([all(c.violation(np.array([r[c.name]]))[0] <= 0 for c in self.constraints) for r in rows])
        idx = np.flatnonzero(feas)
        if idx.size == 0:
            return idx
        F = self.normalised({o.name: np.array([rows[i][o.name] for i in idx]) for o in self.objectives})
        return idx[NonDominatedSorting().do(F, only_non_dominated_front=True)]

    def hypervolume(self, rows: list[dict[str, Any]]) -> float:
        idx = self.front_indices(rows)
        if idx.size == 0:
            return 0.0
        F = self.normalised({o.name: np.array([rows[i][o.name] for i in idx]) for o in self.objectives})
        return float(HV(ref_point=np.ones(len(self.objectives)))(F))

    # ---- archive ---------------------------------------------------------------------------
    @property
    def _quantities(self) -> list[str]:
        return [o.name for o in self.objectives] + [n for n in self.problem.extra]

    def _record(self, X: np.ndarray, values: dict[str, np.ndarray]) -> None:
        for j, x in enumerate(X):
            self.archive.append({"algorithm": self._algo_label, "index": len(self.archive), "vector": x.copy(),
                                 **{k: float(v[j]) for k, v in values.items()}})

    def _archive_header(self) -> list[str]:
        return ["algorithm", "index", *self._quantities, "vector", "arch"]

    def _flush_archive(self) -> None:
        """Append the rows recorded since the last flush: the archive grows by one write per generation."""
        path = self.out / "archive.csv"
        new = self.archive[self._flushed :]
        if not path.exists():
            with atomic_path(path) as tmp:
                tmp.write_text(",".join(self._archive_header()) + "\n")
        if not new:
            return
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in new:
            w.writerow([r["algorithm"], r["index"], *(repr(r[q]) for q in self._quantities),
                        " ".join(map(str, r["vector"])), self.space.decode(r["vector"]).to_json()])
        append_text(path, buf.getvalue())
        self._flushed = len(self.archive)

    def _load_archive(self) -> None:
        """Read the archive back; a row cut by a kill (no final newline) is dropped and re-evaluated."""
        path = self.out / "archive.csv"
        if not path.exists():
            return
        text = path.read_text()
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
            with atomic_path(path) as tmp:
                tmp.write_text(text)
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and list(rows[0]) != self._archive_header():
            raise SearchError(f"{path} has columns {list(rows[0])}, this run needs {self._archive_header()}; use another --out")
        try:
            for row in rows:
                x = np.array([int(v) for v in row["vector"].split()], dtype=np.int64)
                vals = {q: float(row[q]) for q in self._quantities}
                self.archive.append({"algorithm": row["algorithm"], "index": int(row["index"]), "vector": x, **vals})
        except (TypeError, ValueError, AttributeError):
            raise SearchError(f"{path} has a malformed row {len(self.archive) + 1}; use another --out") from None
        self._flushed = len(self.archive)
        self._caches = {}
        for r in self.archive:
            self._caches.setdefault(r["algorithm"], {})[r["vector"].tobytes()] = {q: r[q] for q in self._quantities}

    # ---- algorithms ------------------------------------------------------------------------
    def _pymoo_algorithm(self):
        cfg = self.cfg
        ops = dict(sampling=ArchSampling(), crossover=ArchCrossover(), mutation=ArchMutation(),
                   eliminate_duplicates=ArchDuplicates(self.space))
        if cfg.algorithm == "nsga2":
            from pymoo.algorithms.moo.nsga2 import NSGA2

            return NSGA2(pop_size=cfg.pop_size, **ops)
        if len(self.objectives) < 2:
            raise SearchError(f"{cfg.algorithm} needs at least 2 objectives")
        from pymoo.util.ref_dirs import get_reference_directions

        if cfg.algorithm == "nsga3":
            from pymoo.algorithms.moo.nsga3 import NSGA3

            dirs = get_reference_directions("energy", len(self.objectives), cfg.pop_size, seed=cfg.seed)
            return NSGA3(ref_dirs=dirs, pop_size=cfg.pop_size, **ops)
        try:
            import numba  # noqa: F401  (pymoo's AGE-MOEA is compiled with numba)
        except ImportError:
            raise SearchError("--algorithm agemoea needs numba: pip install 'edgenas[agemoea]' (or use nsga3)") from None
        from pymoo.algorithms.moo.age import AGEMOEA

        return AGEMOEA(pop_size=cfg.pop_size, **ops)

    def _run_pymoo(self, bar) -> list[tuple[int, int, float]]:
        algo = self._pymoo_algorithm()
        algo.setup(self.problem, termination=("n_gen", self.cfg.generations), seed=self.cfg.seed, verbose=False)
        curve = []
        while algo.has_next():
            algo.next()
            curve.append(self._generation_done(len(curve) + 1, bar))
        return curve

    def _run_random(self, bar, seed: int) -> list[tuple[int, int, float]]:
        X = sample_archs(self.space, self._budget(), seed, self.resolutions)
        curve = []
        for g in range(self.cfg.generations):
            self.problem.quantities(X[g * self.cfg.pop_size : (g + 1) * self.cfg.pop_size])
            curve.append(self._generation_done(g + 1, bar))
        return curve

    def _run_reinforce(self, bar) -> list[tuple[int, int, float]]:
        cfg = self.cfg
        cost = next(o.name for o in self.objectives if o.name != "top1")
        limit = next((c.limit for c in self.constraints if c.name == cost), None)
        if limit is None:  # target: the median cost of random archs
            limit = float(np.median(self.problem.quantities(sample_archs(self.space, 16, cfg.seed + 7, self.resolutions))[cost]))
        ctrl = ReinforceController(self.space, limit, cfg.reinforce_w, cfg.reinforce_lr, seed=cfg.seed,
                                   resolution_idx=self.problem.resolution_idx)
        curve = []
        for g in range(cfg.generations):
            X = ctrl.sample(cfg.pop_size)
            q = self.problem.quantities(X)
            ctrl.update(X, ctrl.reward(q["top1"], q[cost]))
            curve.append(self._generation_done(g + 1, bar))
        return curve

    def _run_surrogate(self, bar) -> list[tuple[int, int, float]]:
        """MSuNAS-style: NSGA-II on a predictor, the best unseen front members evaluated for real, refit, repeat.

        Round 1 evaluates ``pop_size`` random archs with the supernet; each later round
        evaluates ``pop_size`` archs spread along the predictor's front.  Only real
        evaluations enter the archive and the front.
        """
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.optimize import minimize

        from .predictor import AccuracyPredictor

        cfg = self.cfg
        X = sample_archs(self.space, cfg.pop_size, cfg.seed, self.resolutions)
        curve = []
        for rnd in range(cfg.generations):
            self.problem.quantities(X)  # real evaluation (supernet), recorded in the archive
            curve.append(self._generation_done(rnd + 1, bar))
            if rnd == cfg.generations - 1:
                break
            mine = [r for r in self.archive if r["algorithm"] == self._algo_label and r["vector"].tobytes() in self.problem.seen]
            seen, top1 = np.stack([r["vector"] for r in mine]), np.array([r["top1"] for r in mine])
            pred = AccuracyPredictor(self.space, seed=cfg.seed).fit(seen, top1)
            objs = [Objective(o.name, pred.top1_vectors, o.sign) if o.name == "top1" else o for o in self.objectives]
            inner = ArchProblem(self.space, objs, self.constraints, self.problem.extra, allowed_resolutions=self.resolutions)
            algo = NSGA2(pop_size=cfg.pop_size, sampling=ArchSampling(), crossover=ArchCrossover(), mutation=ArchMutation(),
                         eliminate_duplicates=ArchDuplicates(self.space))
            res = minimize(inner, algo, ("n_gen", 20), seed=cfg.seed + rnd + 1, verbose=False)
            known = {x.tobytes() for x in seen}
            front, F = self.space.canonical_vectors(np.atleast_2d(res.X)), np.atleast_2d(res.F)
            fresh = sorted((i for i, x in enumerate(front) if x.tobytes() not in known), key=lambda i: F[i, 0])
            if len(fresh) > cfg.pop_size:  # spread along the predicted front
                fresh = [fresh[j] for j in np.linspace(0, len(fresh) - 1, cfg.pop_size).astype(int)]
            chosen = [front[i] for i in fresh]
            taken = known | {x.tobytes() for x in chosen}
            for x in sample_archs(self.space, cfg.pop_size * 4, cfg.seed + 1000 + rnd, self.resolutions):
                if len(chosen) >= cfg.pop_size:  # top up with random unseen archs: every round spends pop_size
                    break
                if x.tobytes() not in taken:
                    chosen.append(x)
                    taken.add(x.tobytes())
            X = np.stack(chosen)
        return curve

    def _generation_done(self, gen: int, bar) -> tuple[int, int, float]:
        # only what this run has reached so far: on resume, rows replayed from the archive count
        # when the replay reaches them, so each generation reads as in an uninterrupted run
        seen = self.problem.seen
        rows = [r for r in self.archive if r["algorithm"] == self._algo_label and r["vector"].tobytes() in seen]
        hv = self.hypervolume(rows)
        self._flush_archive()
        bar.update(1)
        bar.set_postfix(evals=len(rows), hv=f"{hv:.4f}")
        return gen, len(rows), hv

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run (or resume) the search and the baseline; one process at a time per run directory."""
        created = not self.out.exists()
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SearchError(f"cannot create run directory {self.out}: {exc.strerror or exc}") from None
        try:
            with exclusive(self.out, "search run"):
                self._check_out()
                if self.resume:
                    self._load_archive()
                return self._run()
        except Exception:  # an error, not an interrupt: an interrupted run stays resumable
            if created and all(p.name == ".lock" for p in self.out.iterdir()):  # a failed start leaves no empty run
                shutil.rmtree(self.out, ignore_errors=True)
            raise

    def _budget(self) -> int:
        """Evaluations of a random run: the main budget, capped at the number of distinct archs."""
        return min(self.cfg.pop_size * self.cfg.generations, self.space.n_archs(self.resolutions))

    def _run(self) -> dict[str, Any]:
        cfg = self.cfg
        t0 = time.perf_counter()
        with atomic_path(self.out / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump({**cfg.to_dict(), "hv_bounds": {k: list(v) for k, v in self.bounds.items()},
                                           "hv_reference_point": [1.0] * len(self.objectives)}, sort_keys=False))
        runs = [(cfg.algorithm, cfg.seed)]
        if cfg.baseline and cfg.algorithm != "random":
            runs.append(("random-baseline", cfg.seed + 1))
        curves: dict[str, list] = {}
        for label, seed in runs:
            self._algo_label = label  # each run has its own cache: the budget must not be shared
            self.problem.cache, self.problem.seen = dict(self._caches.get(label, {})), set()
            with tqdm(total=cfg.generations, desc=label, file=sys.stderr, disable=not self.progress, dynamic_ncols=True) as bar:
                if label in ("random", "random-baseline"):
                    curves[label] = self._run_random(bar, seed)
                elif label == "reinforce":
                    curves[label] = self._run_reinforce(bar)
                elif label == "surrogate":
                    curves[label] = self._run_surrogate(bar)
                else:
                    curves[label] = self._run_pymoo(bar)
        return self._finish(curves, time.perf_counter() - t0)

    def _finish(self, curves: dict[str, list], seconds: float) -> dict[str, Any]:
        main_rows = [r for r in self.archive if r["algorithm"] == self.cfg.algorithm]
        front = [main_rows[i] for i in self.front_indices(main_rows)]
        if not front and main_rows:
            closest = min(main_rows, key=lambda r: sum(max(0.0, float(c.violation(np.array([r[c.name]]))[0])) for c in self.constraints))
            raise SearchError(f"no evaluated arch satisfies all of {', '.join(map(str, self.constraints))} together; they may "
                              f"contradict each other (closest: {', '.join(f'{c.name} {closest[c.name]:.4g}' for c in self.constraints)})")
        front.sort(key=lambda r: r[self.objectives[-1].name])
        members = [{"arch": self.space.decode(r["vector"]).to_dict(), **{o.name: r[o.name] for o in self.objectives}} for r in front]
        write_json(self.out / "front.json", members)
        with atomic_path(self.out / "hypervolume.csv") as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["algorithm", "generation", "evaluations", "hypervolume"])
            for label, curve in curves.items():
                w.writerows([label, *row] for row in curve)
        refs = self._references()
        baseline_rows = [r for r in self.archive if r["algorithm"] == "random-baseline"]
        baseline = [baseline_rows[i] for i in self.front_indices(baseline_rows)]
        from .plots import pareto_plots

        plots = pareto_plots(self, front, baseline, refs, self.out)
        summary = {
            "out": str(self.out), "algorithm": self.cfg.algorithm, "objectives": self.cfg.objectives,
            "constraints": [str(c) for c in self.constraints], "evaluations": len(main_rows), "front_size": len(members),
            "hypervolume": curves[self.cfg.algorithm][-1][2] if curves.get(self.cfg.algorithm) else self.hypervolume(main_rows),
            "baseline_hypervolume": curves["random-baseline"][-1][2] if "random-baseline" in curves else None,
            "seconds": round(seconds, 2), "front": str(self.out / "front.json"), "archive": str(self.out / "archive.csv"),
            **plots,
        }
        write_json(self.out / "summary.json", summary)
        return summary

    def _references(self) -> list[dict[str, Any]]:
        out = []
        for ref in self.cfg.references:
            named = {"max": self.space.max_arch, "min": self.space.min_arch}
            if isinstance(ref["arch"], str) and ref["arch"] not in named:
                raise SearchError(f"reference {ref.get('name')!r}: arch must be max, min or an OFA mapping, got {ref['arch']!r}")
            arch = named[ref["arch"]]() if isinstance(ref["arch"], str) else self.space.arch(ref["arch"])
            x = self.space.canonical_vectors(self.space.encode(arch)[None])
            fns = {o.name: o for o in self.objectives} | self.problem.extra  # not via the problem: no archive row
            out.append({"name": ref.get("name", "reference"), **{k: float(fn(x)[0]) for k, fn in fns.items()}})
        return out
