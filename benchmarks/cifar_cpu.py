"""CIFAR-10 at CPU scale: the tiny space trained on the shared CIFAR-10 zip, and the accuracy predictor.

    python benchmarks/cifar_cpu.py     # ~10 min on 2 cores; needs ../shared/data/cifar10/train.zip

Held out: the last 500 images of every class (5,000), never trained on.  The schedule is the
default progressive shrinking at half length (full 2, kernel 1, depth 1, expand 1 epochs), batch
256.  Then 300 random subnets are evaluated with BN recalibration and an accuracy predictor is
fitted (20% held out).  This is a real-data check of the pipeline, not the GPU-trained cifar-mbv3
supernet (which needs a GPU).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from _report import machine, update_section
from _runs import fit_predictor, train

ROOT = Path(__file__).resolve().parent.parent
ZIP = ROOT.parent / "shared" / "data" / "cifar10" / "train.zip"
WORK = Path(__file__).resolve().parent / "_work" / "cifar_cpu"


def main() -> None:
    if not ZIP.is_file():
        sys.exit(f"needs {ZIP}")
    shutil.rmtree(WORK, ignore_errors=True)
    train_s, rows, net, data = train({"space": "tiny", "data": f"imagefolder:{ZIP}", "val_per_class": 500, "split": "last",
                                      "batch_size": 256, "epoch_scale": 0.5, "device": "cpu", "bn_calib_images": 1000}, WORK / "run")
    X, y, pred, eval_s = fit_predictor(WORK / "run" / "latest.pt")
    h = pred.report["holdout"]
    lines = [
        "Target: Kendall tau >= 0.7 on held-out archs of a trained supernet.",
        "",
        f"Training: tiny space on `imagefolder:{ZIP.relative_to(ROOT.parent)}` (45,000 images; the last 500 per class held out),",
        f"batch 256, {len(rows)} epochs in {train_s / 60:.1f} min on CPU:",
        "",
        "| phase | epoch | top-1 largest | top-1 smallest | train images/s |",
        "|---|---|---|---|---|",
        *[f"| {r['phase']} | {r['epoch']} | {r['top1_max']:.3f} | {r['top1_min']:.3f} | {r['images_per_s']:.0f} |" for r in rows],
        "",
        f"Predictor: {len(X)} random subnets evaluated on the 5,000 held-out images with BN recalibration ({eval_s:.0f} s; "
        f"top-1 {y.min():.3f}..{y.max():.3f}), {pred.report['n_train']} to fit, {pred.report['n_holdout']} held out.",
        "",
        "| candidate | 5-fold CV Kendall tau |",
        "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in pred.report["cv_kendall_tau"].items()],
        "",
        f"Chosen: **{pred.report['model']}**; held out: Kendall tau **{h['kendall_tau']:.3f}**, Spearman {h['spearman']:.3f}, "
        f"RMSE {h['rmse']:.4f}.",
    ]
    update_section("Accuracy predictor on CIFAR-10 (tiny space, CPU)", "\n".join(lines), "python benchmarks/cifar_cpu.py", machine())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
