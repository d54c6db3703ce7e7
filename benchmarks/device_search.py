"""Does a search with this CPU's own latency tables find faster models for it than one with another device's?

    python benchmarks/device_search.py     # ~15 min on 2 cores; run alone (it times things)

Space cifar-mbv3-lite @ 32, searched over top-1 and latency with fp32 and int8 as a search variable
(NSGA-II, 40 x 20, seeds 0-2), once with the AMD EPYC tables and once with this CPU's (both shipped).
Top-1 comes from the synthetic predictor `benchmarks/int8.py` uses (top-1 rising with MACs; no trained
cifar-mbv3-lite supernet exists), so the fronts differ only by what each table says is fast.  Every
member of every front is then exported (int8 as `edgenas export --int8` writes it) and measured here,
all interleaved in one call, twice (how much the machine's noise moves the comparison); the hypervolume
uses those measured latencies, with one normalisation for
all fronts: top-1 over [0.80, 0.95], latency over [0, the slowest member measured], reference (1, 1).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from _report import machine, update_section
from int8_tables import slug
from pymoo.indicators.hv import HV
from scipy.stats import spearmanr

from edgenas import agent, get_space
from edgenas.cost import cost_model
from edgenas.latency import LatencyTable
from edgenas.latency.profile import network_model
from edgenas.quantize import quantize_int8
from edgenas.search import AccuracyPredictor, SearchRun, load_search_config, sample_archs
from edgenas.space import SearchSpace

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "_work" / "device_search"
TABLES = ROOT / "latency_tables"
SPACE, R, SEEDS, PASSES = "cifar-mbv3-lite", 32, (0, 1, 2), 2
INT8_DROP = 0.5  # points of top-1 an int8 model is charged (the shipped supernet's measured mean, BENCHMARKS "int8 on the shipped CIFAR-10 supernet")


def synthetic_predictor() -> Path:
    sp = get_space(SPACE)
    X = sample_archs(sp, 400, seed=0)
    macs = cost_model(sp).batch(X)[1] / 1e6
    y = 0.95 - 0.15 * np.exp(-macs / 60) + np.random.default_rng(0).normal(0, 0.003, len(X))
    path = WORK / "synthetic_predictor.json"
    AccuracyPredictor(sp, "ridge").fit(X, y).save(path)
    return path


def search(device: str, seed: int, predictor: Path) -> list[dict]:
    fp32, int8 = (TABLES / f"{device}_{SPACE}_cpu-t1_{p}.json" for p in ("fp32", "int8"))
    cfg = load_search_config(None, {"space": SPACE, "objectives": ["top1", "latency"], "table": str(fp32), "predictor": str(predictor),
                                    "precisions": ["fp32", "int8"], "int8_table": str(int8), "int8_drop": INT8_DROP,
                                    "pop_size": 40, "generations": 20, "seed": seed, "baseline": False})
    run = SearchRun(cfg, WORK / f"{device}-{seed}", progress=False).run()
    return json.loads(Path(run["front"]).read_text())


def agreement(devices: tuple[str, ...]) -> list[str]:
    """How alike the two devices' tables rank 1,000 random subnets, and what int8 saves on each."""
    sp = get_space(SPACE)
    X = sample_archs(sp, 1000, seed=1, resolutions=[R])
    pred = {(d, p): LatencyTable.load(TABLES / f"{d}_{SPACE}_cpu-t1_{p}.json", sp).predict_batch(X)
            for d in devices for p in ("fp32", "int8")}
    a, b = devices
    lines = [f"Predicted latency of 1,000 random subnets, {a} vs {b}: Spearman {spearmanr(pred[a, p], pred[b, p])[0]:.3f} ({p})"
             for p in ("fp32", "int8")]
    lines += [f"int8 over fp32 on {d} (median over them): {np.median(pred[d, 'fp32'] / pred[d, 'int8']):.2f}x" for d in devices]
    return lines


def key(member: dict) -> str:
    return json.dumps(member["arch"], sort_keys=True) + member["precision"]


def main() -> None:
    here = slug()
    devices = ("amd-epyc", here)
    if here == "amd-epyc":
        raise SystemExit("run this on another CPU than the AMD EPYC: it compares that CPU's tables with this one's")
    for d in devices:
        if not (TABLES / f"{d}_{SPACE}_cpu-t1_int8.json").is_file():
            raise SystemExit(f"no {SPACE} tables for {d}: python benchmarks/int8_tables.py --only {SPACE}:fp32 {SPACE}:int8")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    predictor = synthetic_predictor()
    fronts = {(d, s): search(d, s, predictor) for d in devices for s in SEEDS}
    sp = get_space(SPACE)
    calib = [np.random.default_rng(0).standard_normal((1, 3, R, R)).astype(np.float32) for _ in range(8)]
    models: dict[str, bytes] = {}
    for front in fronts.values():
        for m in front:
            if key(m) not in models:
                fp32 = network_model(sp, sp.arch(m["arch"]))
                models[key(m)] = quantize_int8(fp32, calib) if m["precision"] == "int8" else fp32
    passes = [{k: v["median_ms"] for k, v in agent.measure(models).items()} for _ in range(PASSES)]  # this machine's noise, shown
    slowest = max(max(m.values()) for m in passes)
    hv = HV(ref_point=np.ones(2))
    rows = ["| seed | tables | front size | int8 share | mean depthwise kernel (int8 members) | hypervolume, latency measured here: "
            + " / ".join(f"pass {i + 1}" for i in range(PASSES)) + " |", "|---|---|---|---|---|---|"]
    wins = np.zeros(PASSES, dtype=int)
    for s in SEEDS:
        values = {}
        for d in devices:
            front = fronts[d, s]
            values[d] = [float(hv(np.array([[(0.95 - m["top1"]) / 0.15, ms[key(m)] / slowest] for m in front]))) for ms in passes]
            q = [m for m in front if m["precision"] == "int8"]
            ks = [k for m in q for k in active_kernels(sp, m["arch"])]
            rows.append(f"| {s} | {d}{' (this CPU)' if d == here else ''} | {len(front)} | {len(q) / len(front):.0%} "
                        f"| {np.mean(ks) if ks else float('nan'):.2f} | {' / '.join(f'{v:.4f}' for v in values[d])} |")
        wins += np.array(values[here]) > np.array(values["amd-epyc"])
    body = "\n".join([
        f"{len(models)} distinct models measured here (`agent.measure`, one thread, batch 1, interleaved). Top-1 is the synthetic "
        f"predictor's, less {INT8_DROP} points for int8.",
        "",
        *rows,
        "",
        f"The front searched with this CPU's tables is ahead on {' / '.join(f'{w}/{len(SEEDS)}' for w in wins)} seeds "
        f"(pass {' / '.join(str(i + 1) for i in range(PASSES))}: the same models measured again).",
        "",
        *(f"- {line}" for line in agreement(devices)),
    ])
    update_section("Search with another device's latency tables", body, "python benchmarks/device_search.py", machine())
    print(body)


def active_kernels(sp: SearchSpace, arch: dict) -> list[int]:
    """Depthwise kernel sizes of the layers the arch runs."""
    a = sp.arch(arch)
    per = len(a.ks) // len(a.d)
    return [a.ks[i * per + j] for i, d in enumerate(a.d) for j in range(d)]


if __name__ == "__main__":
    main()
