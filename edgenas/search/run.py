"""``edgenas search``: a multi-objective search run with its archive, front, hypervolume and plots.

The run wires the parts together: objectives and constraints into a pymoo problem, an algorithm
from the registry (``algorithms``), and per-generation bookkeeping as a callback (archive append,
hypervolume).  Resume: every evaluation is stored exactly in ``archive.csv``; a resumed run
replays the seeded algorithm with those evaluations served from the cache (nothing is computed
again) and goes on, so every file ends as an uninterrupted run with the same seed writes it.
"""

from __future__ import annotations

import csv
import functools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from ..errors import SearchError
from ..io import atomic_path, run_directory, write_json
from ..progress import bar as progress_bar
from ..space import SearchSpace, get_space
from .algorithms import Budget, get_algorithm
from .archive import Archive
from .config import ALGORITHMS, LIMITS, SearchConfig, load_search_config
from .objectives import Constraint, Objective, by_precision, make_objective, parse_limit
from .problem import ArchProblem

__all__ = ["ALGORITHMS", "SearchConfig", "SearchRun", "load_search_config"]

BASELINE = "random-baseline"


class SearchRun:
    """One search (and its random-search baseline at the same budget) writing into a run directory.

    ``accuracy`` / ``table`` may be passed in (tests, benchmarks); otherwise they are loaded from
    the settings.  One process at a time may write a run directory.
    """

    def __init__(self, cfg: SearchConfig, out: str | Path, *, resume: bool = False, progress: bool = True, accuracy=None, table=None):
        self.cfg, self.out, self.progress, self.resume = cfg, Path(out), progress, resume
        self.space: SearchSpace = get_space(cfg.space, cfg.space_def)
        self._check_out()  # early, before inputs load; again under the run's lock
        self.table = table if table is not None else self._load_table()
        self.accuracy = accuracy if accuracy is not None else self._load_accuracy()
        nc = cfg.num_classes or self.space.num_classes
        self.constraints = [Constraint(q, parse_limit(getattr(cfg, k), q), up) for k, (q, up) in LIMITS.items()
                            if getattr(cfg, k) is not None]
        self.precisions = list(cfg.precisions)
        multi = len(self.precisions) > 1
        tables = {self.precisions[0]: self.table}
        if multi:
            tables["int8"] = self._load_table(cfg.int8_table)
        drop = self._int8_drop() if multi and "top1" in cfg.objectives + [c.name for c in self.constraints] else 0.0

        def mk(name: str) -> Objective:
            per = [make_objective(name, self.space, num_classes=nc, table=tables.get(p), accuracy=self.accuracy, precision=p,
                                  top1_drop=drop if p == "int8" else 0.0) for p in self.precisions]
            return by_precision(name, self.space.n_genes, per) if multi else per[0]

        self.objectives: list[Objective] = [mk(o) for o in cfg.objectives]
        extra = {c.name: mk(c.name) for c in self.constraints if c.name not in cfg.objectives}
        self.resolutions = cfg.resolutions or (list(self.table.resolutions) if self.table is not None and
                                               ("latency" in cfg.objectives or "latency" in extra) else None)
        self.problem = ArchProblem(self.space, self.objectives, self.constraints, extra, allowed_resolutions=self.resolutions,
                                   precisions=self.precisions)
        self.bounds = self._bounds()
        self._check_satisfiable()
        self.archive = Archive(self.out / "archive.csv", self.space, [o.name for o in self.objectives] + list(extra),
                               self.precisions)
        self._label = cfg.algorithm
        self.problem.on_evaluated = lambda X, values: self.archive.record(self._label, X, values)

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
    def _load_table(self, path: str | None = None):
        path = path if path is not None else self.cfg.table
        if not path:
            return None
        from ..latency.table import LatencyTable

        return LatencyTable.load(path, self.space)

    def _int8_drop(self) -> float:
        """Top-1 (a fraction) that int8 costs: given in points, or measured on a few subnets of the checkpoint."""
        if self.cfg.int8_drop is not None:
            return self.cfg.int8_drop / 100
        from ..deploy import measure_int8_drop

        drop = measure_int8_drop(self.space, str(self.cfg.checkpoint), data=self.cfg.data, seed=self.cfg.seed)
        if self.progress:
            print(f"edgenas: int8 costs {100 * drop:.2f} points of top-1 on average (measured on 5 subnets)", file=sys.stderr)
        return drop

    def _load_accuracy(self):
        cfg = self.cfg
        if cfg.predictor:
            from .predictor import AccuracyPredictor

            return AccuracyPredictor.load(cfg.predictor, self.space)
        if cfg.checkpoint:
            from ..data import checkpoint_data
            from ..evaluate import Evaluator
            from ..supernet import Supernet, read_checkpoint
            from .predictor import SupernetAccuracy

            ckpt = read_checkpoint(cfg.checkpoint, self.space)
            data = checkpoint_data(ckpt.get("data"), cfg.data)
            if not data.own:
                raise SearchError(f"--data {cfg.data} is not the data the checkpoint was trained on ({(ckpt.get('data') or {}).get('spec')})")
            net = Supernet.from_checkpoint(ckpt)
            ev = Evaluator(data, calib_images=cfg.calib_images, device=cfg.device, static_shapes=cfg.static_shapes)
            return SupernetAccuracy(net, ev, self.progress)
        return None

    # ---- bounds, feasibility, HV -------------------------------------------------------------
    def _bounds(self) -> dict[str, tuple[float, float]]:
        """Fixed normalisation per objective (recorded): top1 in [0, 1], costs in [0, 1.05 x the largest subnet]."""
        res = self.resolutions or list(self.space.resolutions)
        biggest = self._vectors(self.space.max_arch(max(res)))
        return {o.name: (0.0, 1.0) if o.name == "top1" else (0.0, 1.05 * float(o(biggest).max())) for o in self.objectives}

    def _vectors(self, arch) -> np.ndarray:
        """``arch`` at every searched precision, as problem vectors."""
        x = self.space.encode(arch)[None]
        if len(self.precisions) == 1:
            return x
        return np.c_[np.repeat(x, len(self.precisions), 0), np.arange(len(self.precisions))]

    def _check_satisfiable(self) -> None:
        res = self.resolutions or list(self.space.resolutions)
        smallest = self._vectors(self.space.min_arch(min(res)))
        fns = {o.name: o for o in self.objectives} | self.problem.extra
        for c in self.constraints:
            if c.name == "top1":
                if not 0 < c.limit <= 1:
                    raise SearchError(f"--min-top1 {c.limit:g} is unsatisfiable (top-1 lies in (0, 1])")
                continue
            low = float(fns[c.name](smallest).min())
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

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run (or resume) the search and the baseline; returns the summary (also in summary.json)."""
        with run_directory(self.out, "search run"):
            self._check_out()
            if self.resume:
                self.archive.load()
            return self._run()

    def _run(self) -> dict[str, Any]:
        cfg = self.cfg
        t0 = time.perf_counter()
        with atomic_path(self.out / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump({**cfg.to_dict(), "hv_bounds": {k: list(v) for k, v in self.bounds.items()},
                                           "hv_reference_point": [1.0] * len(self.objectives)}, sort_keys=False))
        runs = [(cfg.algorithm, cfg.algorithm, cfg.seed)]
        if cfg.baseline and cfg.algorithm != "random":
            runs.append((BASELINE, "random", cfg.seed + 1))
        budget = Budget(cfg.pop_size, cfg.generations, cfg.sampling == "stratified", cfg.reinforce_w, cfg.reinforce_lr)
        curves: dict[str, list[tuple[int, int, float]]] = {}
        for label, algorithm, seed in runs:
            self._label = label  # each run has its own cache: the budget is not shared
            self.problem.cache, self.problem.seen = self.archive.cache(label), {}
            curve = curves.setdefault(label, [])
            with progress_bar(total=cfg.generations, desc=label, disable=not self.progress) as bar:
                callback = functools.partial(self._generation_done, label, bar=bar, curve=curve)
                get_algorithm(algorithm).run(self.problem, budget, seed, callback)
        return self._finish(curves, time.perf_counter() - t0)

    def _generation_done(self, label: str, gen: int, *, bar: Any, curve: list) -> None:
        """The per-generation callback: append the archive, log the hypervolume of what this run has reached.

        On resume, rows replayed from the archive count when the replay reaches them, so each
        generation reads as in an uninterrupted run.
        """
        rows = self.archive.of(label, self.problem.seen)
        hv = self.hypervolume(rows)
        self.archive.flush()
        curve.append((gen, len(rows), hv))
        bar.update(1)
        bar.set_postfix(evals=len(rows), hv=f"{hv:.4f}")

    # ---- outputs ---------------------------------------------------------------------------
    def _finish(self, curves: dict[str, list], seconds: float) -> dict[str, Any]:
        main_rows = self.archive.of(self.cfg.algorithm)
        front = [main_rows[i] for i in self.front_indices(main_rows)]
        if not front and main_rows:
            closest = min(main_rows, key=lambda r: sum(max(0.0, float(c.violation(np.array([r[c.name]]))[0])) for c in self.constraints))
            raise SearchError(f"no evaluated arch satisfies all of {', '.join(map(str, self.constraints))} together; they may "
                              f"contradict each other (closest: {', '.join(f'{c.name} {closest[c.name]:.4g}' for c in self.constraints)})")
        front.sort(key=lambda r: r[self.objectives[-1].name])
        names = [o.name for o in self.objectives]
        G = self.space.n_genes
        members = [{"arch": self.space.decode(r["vector"][:G]).to_dict(), **{n: r[n] for n in names},
                    **({"precision": self.precisions[int(r["vector"][G])]} if len(self.precisions) > 1 else {})} for r in front]
        write_json(self.out / "front.json", members)
        with atomic_path(self.out / "hypervolume.csv") as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["algorithm", "generation", "evaluations", "hypervolume"])
            for label, curve in curves.items():
                w.writerows([label, *row] for row in curve)
        baseline_rows = self.archive.of(BASELINE)
        from .plots import pareto_plots

        plots = pareto_plots(self.space, names, front, [baseline_rows[i] for i in self.front_indices(baseline_rows)],
                             self._references(), self.out, label=self.cfg.algorithm, constraints=self.constraints,
                             precisions=self.precisions)
        summary = {
            "out": str(self.out), "algorithm": self.cfg.algorithm, "objectives": self.cfg.objectives,
            "constraints": [str(c) for c in self.constraints], "evaluations": len(main_rows), "front_size": len(members),
            "hypervolume": curves[self.cfg.algorithm][-1][2] if curves.get(self.cfg.algorithm) else self.hypervolume(main_rows),
            "baseline_hypervolume": curves[BASELINE][-1][2] if curves.get(BASELINE) else None,
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
            x = self.problem.canonical(self._vectors(self.space.canonical(arch))[:1])  # at the first precision
            fns = {o.name: o for o in self.objectives} | self.problem.extra  # not via the problem: no archive row
            out.append({"name": ref.get("name", "reference"), **{k: float(fn(x)[0]) for k, fn in fns.items()}})
        return out
