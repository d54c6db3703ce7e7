"""Search speed and quality.

    python benchmarks/search.py        # ~3 min; needs the shipped ofa-mbv3 table and benchmarks/train_cpu.py's run

1. Speed: 10,000 evaluations of ofa-mbv3 (NSGA-II, population 100 x 100 generations) with
   predictor-based objectives: top-1 from an AccuracyPredictor, latency from the shipped table,
   MACs from the cost model.  No trained ofa-mbv3 supernet exists here, so the predictor is fitted
   on a synthetic accuracy (a saturating function of MACs plus noise): the timing does not depend
   on what the labels are.
2. Quality: final hypervolume of NSGA-II vs random search at equal budget, 5 seeds, on the tiny
   supernet trained on digits (predictor fitted on real supernet evaluations) with top-1, latency
   and MACs.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from _report import machine, update_section

from edgenas import get_space
from edgenas.cost import cost_model
from edgenas.data import checkpoint_data
from edgenas.evaluate import Evaluator
from edgenas.latency import LocalBackend
from edgenas.latency.profile import profile
from edgenas.search import AccuracyPredictor, SearchRun, SupernetAccuracy, load_search_config, sample_archs
from edgenas.supernet import Supernet, read_checkpoint

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "_work" / "search"


OFA_TABLE = next((ROOT / "latency_tables").glob("*_ofa-mbv3_cpu-t1_fp32.json"), None)


def ofa_predictor() -> Path:
    """Ridge on a synthetic top-1 (saturating in MACs, plus noise): no trained ofa-mbv3 supernet exists here."""
    sp = get_space("ofa-mbv3")
    X = sample_archs(sp, 400, seed=0, resolutions=[160, 224])
    macs = cost_model(sp).batch(X)[1] / 1e6
    y = 0.80 - 0.2 * np.exp(-macs / 250) + np.random.default_rng(0).normal(0, 0.005, len(X))
    path = WORK / "ofa_synthetic_predictor.json"
    AccuracyPredictor(sp, "ridge").fit(X, y).save(path)
    return path


def speed(pred: Path) -> tuple[float, int]:
    cfg = load_search_config(None, {"space": "ofa-mbv3", "objectives": ["top1", "latency", "macs"], "table": str(OFA_TABLE),
                                    "predictor": str(pred), "pop_size": 100, "generations": 100, "baseline": False})
    t = time.perf_counter()
    s = SearchRun(cfg, WORK / "speed", progress=False).run()
    return time.perf_counter() - t, s["evaluations"]


def compare(name: str, settings: dict, seeds=range(5)) -> list[tuple[int, float, float, int]]:
    """(seed, NSGA-II hypervolume, random-search hypervolume at the same budget, evaluations) per seed."""
    out = []
    for seed in seeds:
        cfg = load_search_config(None, {"objectives": ["top1", "latency", "macs"], **settings, "seed": seed})
        s = SearchRun(cfg, WORK / f"{name}{seed}", progress=False).run()
        out.append((seed, s["hypervolume"], s["baseline_hypervolume"], s["evaluations"]))
    return out


def ofa_quality(pred: Path) -> list[tuple[int, float, float, int]]:
    return compare("ofa", {"space": "ofa-mbv3", "table": str(OFA_TABLE), "predictor": str(pred), "pop_size": 50, "generations": 20})


def quality() -> list[tuple[int, float, float, int]]:
    sp = get_space("tiny")
    ckpt = Path(__file__).resolve().parent / "_work" / "train_cpu" / "run" / "latest.pt"
    table = WORK / "tiny_fp32.json"
    profile(sp, sp.resolutions, LocalBackend(), table, progress=False)
    data = checkpoint_data(read_checkpoint(ckpt, sp).get("data"))
    X = sample_archs(sp, 200, seed=5)
    y = SupernetAccuracy(Supernet.load(ckpt, sp), Evaluator(data, calib_images=500), progress=False).top1_vectors(X)
    pred_path = WORK / "tiny_predictor.json"
    AccuracyPredictor.fit_with_holdout(sp, X, y, 0.2, 0).save(pred_path)
    return compare("q", {"space": "tiny", "table": str(table), "predictor": str(pred_path), "pop_size": 20, "generations": 10})


def table(title: str, rows: list[tuple[int, float, float, int]]) -> list[str]:
    a, b = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    return [title, "", "| seed | NSGA-II HV | random search HV | evaluations each |", "|---|---|---|---|",
            *[f"| {s} | {x:.4f} | {y:.4f} | {e} |" for s, x, y, e in rows],
            f"| **mean** | **{a.mean():.4f}** | **{b.mean():.4f}** | |", "", f"NSGA-II ahead on {int((a > b).sum())}/{len(rows)} seeds.", ""]


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    pred = ofa_predictor()
    seconds, n = speed(pred)
    q, qo = quality(), ofa_quality(pred)
    lines = [
        "Targets: 10,000 predictor-based evaluations of ofa-mbv3 in < 60 s; NSGA-II's final hypervolume beats random",
        "search's at equal budget (mean over seeds).",
        "",
        f"Speed: NSGA-II, population 100 x 100 generations on ofa-mbv3 (top-1 predictor, latency table, MACs): "
        f"**{n:,} evaluations in {seconds:.1f} s** ({n / seconds:,.0f} archs/s end to end, archive and plots included).",
        "",
        *table("Quality on the tiny supernet trained on digits (top-1 from a predictor fitted on 200 supernet evaluations, "
               "latency from a table of this CPU, MACs); population 20 x 10 generations:", q),
        *table("Quality on ofa-mbv3 at 160 and 224 (top-1 from the synthetic predictor above, latency from the shipped table, "
               "MACs); population 50 x 20 generations:", qo),
        "Hypervolume: objectives normalised by fixed bounds recorded in each run's config.yaml, reference point (1, 1, 1).",
    ]
    update_section("Search", "\n".join(lines), "python benchmarks/search.py", machine())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
