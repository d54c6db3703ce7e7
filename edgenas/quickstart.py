"""``edgenas quickstart``: the whole pipeline on the embedded default, offline, on this CPU.

profile the device (fp32 and int8 tables of the ``tiny`` space) -> train the supernet on scikit-learn's
digits -> fit an accuracy predictor on supernet evaluations -> NSGA-II over top-1, latency, MACs ->
pick the most accurate model under a latency budget -> export fp32 and int8 -> measure both on the
device against the prediction.  Every step keeps its output in ``--out``; re-running skips what is
finished (and resumes an interrupted training).  The device is this CPU unless ``backend`` says
otherwise (``--device remote --runner CMD``: a board or phone; the rest runs here).

``checkpoint`` (``quickstart --checkpoint C``; ``--cifar10`` is ``--checkpoint cifar10``) specializes a
supernet trained elsewhere (on a GPU) for the device instead: no training, the tables at its space's largest
resolution only, its accuracy predictor (``predictor``; a built-in supernet's shipped one; else one fitted
here on ``predictor_samples`` of its subnets) and the search settings of ``recipes/cifar10-pretrained.yaml``;
the exported models are scored on its held-out data (a built-in one's shipped sample).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .data import locate_checkpoint_data
from .deploy import export_subnet, saturating_cpu
from .errors import EdgeNASError
from .io import read_json, write_json
from .latency.backends import Backend, LocalBackend
from .latency.profile import profile
from .pretrained import BUILTIN, resolve_checkpoint, resolve_predictor
from .search import AccuracyPredictor, SearchRun, load_search_config, pick
from .search.labels import labels_path
from .search.predictor import fit_predictor
from .space import definition_record, get_space
from .supernet.network import read_checkpoint, space_from_checkpoint
from .train import Trainer, load_config

__all__ = ["quickstart"]

STEPS = 7
DEVICE_KEYS = ("device", "cpu_model", "provider", "threads")  # the device a quickstart's models are for, in its result


RECIPES = Path(__file__).resolve().parent / "recipes"
RECIPE = RECIPES / "tiny-digits.yaml"  # also search/tiny-digits.yaml
PRETRAINED_RECIPE = RECIPES / "cifar10-pretrained.yaml"  # a trained supernet's search: its space, predictor and table set here


def _say(i: int, text: str, done: bool = False) -> None:
    print(f"\n[{i}/{STEPS}] {text}" + (" (done: kept from the last run)" if done else ""), file=sys.stderr, flush=True)


def quickstart(out: str | Path = "edgenas-quickstart", *, space: str = "tiny", data: str | None = None, epoch_scale: float = 2.5,
               max_latency: float | None = None, predictor_samples: int = 150, seed: int = 0, calibrate: int = 16,
               checkpoint: str | None = None, predictor: str | None = None, backend: Backend | None = None) -> dict[str, Any]:
    out = Path(out)
    t0 = time.perf_counter()
    backend = backend or LocalBackend("cpu", 1)
    info = backend.info()  # a remote device's runner is reached once here: one that does not answer fails at once
    device = {k: info.get(k) for k in DEVICE_KEYS}
    where = "the device" if info.get("device") == "remote" else "this CPU" if info.get("provider") == "CPUExecutionProvider" \
        else f"{info['provider']} here"
    recipe, resolutions, space_def = RECIPE, None, None
    pred: AccuracyPredictor | None = None
    if checkpoint is not None:
        ckpt_record = read_checkpoint(checkpoint)
        sp = space_from_checkpoint(ckpt_record)
        space, space_def = sp.name, definition_record(sp).get("space_def")
        recipe, resolutions = PRETRAINED_RECIPE, [max(sp.resolutions)]  # the predictor covers all; one resolution profiles sooner
        if predictor is None and str(checkpoint) in BUILTIN:
            predictor = str(checkpoint)
        locate_checkpoint_data(ckpt_record.get("data"), data)  # missing data or a foreign predictor: said before profiling
        if predictor is not None:
            pred = AccuracyPredictor.load(resolve_predictor(predictor), sp)
    else:
        sp = get_space(space)
    out.mkdir(parents=True, exist_ok=True)
    _same_source(out, checkpoint, predictor, device)

    tables = {p: out / f"latency_{space}_{p}.json" for p in ("fp32", "int8")}
    _say(1, f"profiling {where} ({info['cpu_model']}): every block of '{space}', fp32 and int8",
         all(_complete(t) for t in tables.values()))
    for precision, path in tables.items():
        profile(sp, resolutions or sp.resolutions, backend, path, precision=precision, calibrate=calibrate, seed=seed)

    pred_path = out / "predictor.json"
    if checkpoint is None:
        run = out / "supernet"
        # digits has 1,617 training images: batch 64 gives 25 steps an epoch
        data = data or "digits"
        cfg = load_config(None, {"space": space, "data": data, "seed": seed, "device": "cpu", "epoch_scale": epoch_scale,
                                 "batch_size": 64})
        done = (run / "latest.pt").exists() and _finished(run, cfg)
        _say(2, f"training the '{space}' supernet on {data} (progressive shrinking)", done)
        if not done:
            Trainer(cfg, run, resume=(run / "latest.pt").exists()).run()
        ckpt = str(run / "latest.pt")
    else:
        ckpt = str(checkpoint)
        if ckpt in BUILTIN:
            _say(2, f"no training: the shipped '{ckpt}' supernet ({space}), trained on a GPU (see its MODEL_CARD.md)")
        else:
            _say(2, f"no training: the '{space}' supernet in {ckpt}")
    if predictor is not None:
        pred_path = resolve_predictor(predictor)
        _say(3, f"no predictor fitting: {'the shipped' if predictor in BUILTIN else 'the'} accuracy predictor {predictor}")
    else:
        _say(3, f"fitting an accuracy predictor on {predictor_samples} subnets evaluated with the supernet", pred_path.exists())
        if not pred_path.exists():  # labels are kept as they are measured: a re-run goes on from them
            fit_predictor(sp, ckpt, predictor_samples, data=None if checkpoint is None else data, seed=seed, resolutions=resolutions,
                          labels=labels_path(pred_path)).save(pred_path)
    if pred is None:  # loading refits it from its labels: once is enough
        pred = AccuracyPredictor.load(pred_path, sp)

    search_dir = out / "search"
    _say(4, f"searching the top-1 / latency / MACs front ({recipe.name}: NSGA-II, with a random-search baseline)",
         (search_dir / "summary.json").exists())
    if not (search_dir / "summary.json").exists():
        scfg = load_search_config(recipe, {"space": space, "space_def": space_def, "table": str(tables["fp32"]),
                                           "predictor": str(pred_path), "seed": seed, "resolutions": resolutions})
        SearchRun(scfg, search_dir, resume=(search_dir / "config.yaml").exists()).run()
    import json

    summary = json.loads((search_dir / "summary.json").read_text())
    front = json.loads((search_dir / "front.json").read_text())

    lat = np.array([m["latency"] for m in front])
    budget = float(max_latency) if max_latency is not None else float(np.median(lat))
    _say(5, f"picking the most accurate model under {budget:.3f} ms")
    chosen = pick(search_dir, "best", max_latency=budget)
    arch = sp.arch(chosen["arch"])

    bits = 7 if saturating_cpu(info.get("cpu_features") or []) else 8  # the model is for the device
    _say(6, "exporting it (fp32 and int8, int8 calibrated on real training images"
            + (", 7-bit weights: the device's CPU has no VNNI), then" if bits == 7 else "), then"))
    _say(7, f"measuring both on {where} against the prediction, and their top-1 here on the held-out images")
    res = export_subnet(sp, arch, out / "model.onnx", checkpoint=ckpt, data=None if checkpoint is None else data, int8=True, int8_weight_bits=bits,
                        check_tables={"fp32": str(tables["fp32"]), "int8": str(tables["int8"])}, backend=backend)
    checks = {Path(c["model"]).name: c for c in res["check"]}
    result = {
        "out": str(out), "seconds": round(time.perf_counter() - t0, 1), "budget_ms": budget, "arch": arch.to_dict(),
        "predicted_top1": chosen["top1"], "search_hypervolume": summary["hypervolume"],
        "baseline_hypervolume": summary["baseline_hypervolume"], "predictor": pred.report.get("holdout"),
        "models": {p: {"path": str(c["model"]), "size_bytes": c["size_bytes"], "measured_ms": c["measured_ms"],
                       "predicted_ms": c["predicted_ms"], "error": c["error"], "top1": c.get("top1"),
                       "drift": c.get("drift", {}).get("ratio"), "drift_corrected_error": c.get("drift_corrected_error")}
                   for p, c in zip(("fp32", "int8"), checks.values())},
        "int8_speedup": res.get("int8_speedup"), "int8_warnings": res.get("int8_warnings", []), "int8_weight_bits": bits,
        "plot_png": summary["plot_png"], "plot_html": summary["plot_html"], "front": summary["front"],
        "tables": {k: str(v) for k, v in tables.items()}, "checkpoint": ckpt, "device": device,
    }
    result["deploy"] = _faster_precision(result["models"])
    return result


def _faster_precision(models: dict[str, dict]) -> str:
    """The precision to deploy: int8 only if it measured faster here and loses at most 1 point of top-1."""
    fp32, int8 = models["fp32"], models["int8"]
    lossy = fp32["top1"] is not None and int8["top1"] is not None and int8["top1"] < fp32["top1"] - 0.01
    return "int8" if int8["measured_ms"] < fp32["measured_ms"] and not lossy else "fp32"


def _same_source(out: Path, checkpoint: str | None, predictor: str | None, device: dict[str, Any]) -> None:
    """Refuse a working directory kept from another supernet, predictor or device: its steps would be skipped as done."""
    def name(value: str | None, resolve: Any) -> str | None:  # a built-in by its name: the package may move
        return None if value is None else value if resolve(value) != Path(value) else str(Path(value).resolve())

    source = {"checkpoint": name(checkpoint, resolve_checkpoint), "predictor": name(predictor, resolve_predictor), "device": device}
    path = out / "quickstart.json"
    if path.exists():
        kept = read_json(path, "quickstart record")
        if isinstance(kept, dict) and "device" not in kept:  # recorded before the device could be chosen: this CPU, 1 thread
            kept["device"] = {**device, "device": "local", "provider": "CPUExecutionProvider", "threads": 1}
        if kept != source:
            raise EdgeNASError(f"{out} holds the quickstart of another supernet, predictor or device ({kept}; none: trained or "
                               "fitted there); give another --out")
    else:
        write_json(path, source)


def _complete(path: Path) -> bool:
    from .latency.table import LatencyTable

    try:
        return bool(LatencyTable.read(path).meta.get("complete"))
    except EdgeNASError:  # missing or unreadable: profile() says what is wrong
        return False


def _finished(run: Path, cfg) -> bool:
    import torch

    ck = torch.load(run / "latest.pt", map_location="cpu", weights_only=True)
    return ck["phase"] == len(cfg.phases) - 1 and ck["epoch"] >= cfg.phases[-1].epochs


def report(result: dict[str, Any]) -> str:
    rows = [f"{'model':<6} {'top-1':>7} {'measured':>10} {'predicted':>10} {'error':>7} {'size':>9}"]
    for p, m in result["models"].items():
        top1 = f"{m['top1']:.3f}" if m["top1"] is not None else "-"
        rows.append(f"{p:<6} {top1:>7} {m['measured_ms']:>8.3f}ms {m['predicted_ms']:>8.3f}ms {100 * m['error']:>+6.1f}% "
                    f"{m['size_bytes'] / 1e3:>7.1f}kB")
    drifted = {p: m for p, m in result["models"].items() if m.get("drift") is not None}
    if drifted:  # a busy neighbour or another clock speed since profiling: not the tables' error
        rows.append("drift since profiling (the tables' calibration networks, time now over then): "
                    + ", ".join(f"{p} {m['drift']:.3f}x" for p, m in drifted.items()) + ";\n  corrected for it, the errors are "
                    + ", ".join(f"{p} {100 * m['drift_corrected_error']:+.1f}%" for p, m in drifted.items()))
    pr = result["predictor"] or {}
    remote = result.get("device", {}).get("device") == "remote"
    where = "on the device" if remote else "here"
    hv = result["search_hypervolume"]
    base = result["baseline_hypervolume"]
    rows += [
        "",
        f"picked under {result['budget_ms']:.3f} ms: {result['arch']}",
        f"accuracy predictor: held-out Kendall tau {pr.get('kendall_tau', float('nan')):.3f}; "
        f"search hypervolume {hv:.4f} vs random search {base:.4f}",
        f"models: {result['models']['fp32']['path']}, {result['models']['int8']['path']}",
        f"deploy: {result['models'][result['deploy']]['path']} ({result['deploy']}: "
        + (f"int8 is faster {where} and as accurate)" if result["deploy"] == "int8" else f"int8 is not faster {where}, or loses accuracy)"),
        f"plots:  {result['plot_png']}, {result['plot_html']}",
    ]
    model = result["models"][result["deploy"]]["path"]
    if remote:
        rows.append(f"done in {result['seconds']:.0f} s; copy {model} and deploy/infer.py to the device and run "
                    "`python3 infer.py MODEL IMAGE` there to classify an image (deploy/README.md)")
    else:
        rows.append(f"done in {result['seconds']:.0f} s; run `python3 deploy/infer.py {model} IMAGE` to classify an image")
    return "\n".join(rows)
