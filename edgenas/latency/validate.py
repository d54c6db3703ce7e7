"""``edgenas latency validate``: predicted vs measured latency of random whole subnets.

Each network is exported exactly as deployment does and timed with the table's protocol on the
table's device, interleaved; a second pass over the same networks gives the noise floor (how well
a measurement predicts itself), which bounds what any predictor can reach.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from ..io import atomic_path, check_writable, exclusive, write_json
from .backends import Backend, other_cpu, table_backend
from .profile import TableModels, _random_arch, measure_chunked
from .table import LatencyTable

__all__ = ["accuracy_metrics", "validate", "validate_table"]


def accuracy_metrics(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    predicted, measured = np.asarray(predicted, float), np.asarray(measured, float)
    err = predicted / measured - 1
    rho = spearmanr(predicted, measured).statistic if predicted.size > 2 else float("nan")
    return {
        "n": int(predicted.size),
        "within_5pct": float(np.mean(np.abs(err) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(err) <= 0.10)),
        "mape": float(np.mean(np.abs(err))),
        "mean_error": float(np.mean(err)),
        "spearman": float(rho),
    }


@dataclass(frozen=True)
class _Kept:
    """Builds each network once and keeps it on disk for the next pass: memory holds one chunk of them."""

    build: TableModels
    folder: str

    def __call__(self, key: str) -> bytes:
        path = Path(self.folder) / f"{key.replace(':', '_')}.onnx"
        if not path.exists():
            path.write_bytes(self.build(key))
        return path.read_bytes()


def validate_table(path: str | os.PathLike, samples: int, *, runner: str | None = None, runner_timeout: float = 600.0,
                   out: str | os.PathLike | None = None, seed: int = 12345, passes: int = 2, progress: bool = True) -> dict[str, Any]:
    """``edgenas latency validate``: on the table's own device and settings."""
    table = LatencyTable.load(path)
    meta = table.meta
    backend = table_backend(meta, path, runner, runner_timeout)
    other = other_cpu(meta, backend.info())
    if other and progress:
        print(f"edgenas: warning: {other}; the errors below are the other CPU's, not the table's", file=sys.stderr)
    prefix = out or str(path).removesuffix(".json") + ".validation"
    return validate(table, backend, samples, prefix, seed=seed, passes=passes, progress=progress)


def validate(table: LatencyTable, backend: Backend, samples: int, out_prefix: str | os.PathLike, *,
             seed: int = 12345, passes: int = 2, progress: bool = True) -> dict[str, Any]:
    """Measure ``samples`` random subnets, compare with the table; write JSON report and PNG plot."""
    out_prefix = Path(out_prefix)
    json_path = check_writable(out_prefix.with_name(out_prefix.name + ".json"))
    with exclusive(json_path, "validation report"):
        return _validate(table, backend, samples, out_prefix, seed, passes, progress)


def _validate(table: LatencyTable, backend: Backend, samples: int, out_prefix: Path, seed: int, passes: int,
              progress: bool) -> dict[str, Any]:
    space, res = table.space, list(table.resolutions)
    precision = table.meta["precision"]
    protocol = table.meta["protocol"]
    rng = np.random.default_rng(seed)
    archs = [_random_arch(space, res, rng, i) for i in range(samples)]
    X = np.stack([space.encode(a) for a in archs])
    predicted = table.predict_batch(X)
    raw = table.predict_batch(X, calibrated=False)

    # the table's calibration networks again, interleaved: how much the device itself drifted since profiling
    calib = table.calibration_keys()
    order = [str(i) for i in range(samples)] + calib
    rng.shuffle(order)
    runs, drift, typical = [], [], []
    with tempfile.TemporaryDirectory(prefix="edgenas-validate-") as tmp:
        model = _Kept(TableModels.of(table, archs), tmp)
        for p in range(passes):
            got = measure_chunked(backend, order, model, protocol, f"networks pass {p + 1}/{passes}", progress=progress)
            runs.append(np.array([table.ms(got[str(i)]) for i in range(samples)]))
            drift += table.drift({k: got[k] for k in calib})
            typical += [got[str(i)]["median_ms"] / table.ms(got[str(i)]) for i in range(samples)]
    measured = runs[0]

    r_of = np.array([a.r for a in archs])
    report: dict[str, Any] = {
        "space": space.name, "precision": precision, "provider": table.meta["provider"], "threads": table.meta["threads"],
        "cpu_model": backend.info()["cpu_model"], "table_cpu_model": table.meta["cpu_model"],
        "samples": samples, "seed": seed, "statistic": table.statistic,
        # how much slower the median run of a network is than the figure the table predicts (1.0 for a median table)
        "median_over_statistic": {f"p{q}": float(np.percentile(typical, q)) for q in (5, 50, 95)},
        "calibration": {k: v for k, v in (table.calibration or {}).items() if k != "points"},
        "overall": accuracy_metrics(predicted, measured),
        "uncalibrated": accuracy_metrics(raw, measured),
        "by_resolution": {str(r): accuracy_metrics(predicted[r_of == r], measured[r_of == r]) for r in res},
        "noise_floor": accuracy_metrics(runs[1], runs[0]) if passes > 1 else None,
        "drift": {"what": "calibration networks re-measured now / when profiled", "n": len(drift),
                  **({f"p{q}": float(np.percentile(drift, q)) for q in (5, 50, 95)} if drift else {})},
        # the table scaled by the device's median drift since profiling: the table's own error, the machine's removed
        "drift_corrected": accuracy_metrics(predicted * float(np.median(drift)), measured) if drift else None,
        "networks": [
            {"arch": a.to_dict(), "predicted_ms": float(p), "raw_ms": float(q), "measured_ms": [float(run[i]) for run in runs]}
            for i, (a, p, q) in enumerate(zip(archs, predicted, raw))
        ],
    }
    report["report"] = str(write_json(out_prefix.with_name(out_prefix.name + ".json"), report))
    report["plot"] = str(_scatter(predicted, measured, r_of, out_prefix.with_name(out_prefix.name + ".png"), report))
    return report


def _scatter(predicted: np.ndarray, measured: np.ndarray, r_of: np.ndarray, path: Path, report: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=120)
    for r in sorted(set(r_of.tolist())):
        m = r_of == r
        ax.scatter(measured[m], predicted[m], s=14, label=f"r={r}", alpha=0.8)
    lo, hi = float(min(predicted.min(), measured.min())) * 0.9, float(max(predicted.max(), measured.max())) * 1.1
    xs = np.linspace(lo, hi, 10)
    ax.plot(xs, xs, "k-", lw=1, label="y = x")
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="gray", alpha=0.15, label="±10%")
    ax.fill_between(xs, xs * 0.95, xs * 1.05, color="gray", alpha=0.25, label="±5%")
    o = report["overall"]
    ax.set_title(f"{report['space']} {report['precision']}: {o['within_5pct']:.0%} in ±5%, {o['within_10pct']:.0%} in ±10%, "
                 f"ρ={o['spearman']:.3f}", fontsize=9)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
