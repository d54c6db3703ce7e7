"""Elastic activation and squeeze-excite inside one supernet, against a separate supernet per choice.

    python benchmarks/elastic_style.py [--epoch-scale 1.5] [--limit 20000] [--full-style all] [--separate-epoch-scale 2.25]

Three supernets of the tiny scale trained the same way on the CIFAR-10 zip (last 500 images per class
held out; same schedule, seed, batch and steps): `tiny-mixed` (each stage chooses ReLU / h-swish and
SE off / on) and two with every stage fixed, all ReLU without SE and all h-swish with SE (stem and
head as `tiny`'s). Top-1 on the 5,000 held-out images, BN recalibrated, of 6 random subnets (kernel,
expand, depth, resolution) in each fixed style: the elastic supernet's subnet against the same subnet
of the fixed supernet. Kept if within 1 point (the issue's rule). ``--full-style all`` makes the
style elastic from the first (full-network) phase instead of joining with the kernel; a style-elastic
phase trains up to 4 networks per step where a fixed one trains 1, so ``--separate-epoch-scale``
gives the separate supernets a longer schedule for an equal-time comparison.  ``--keep`` reuses
finished runs of the same settings (each run's folder is named by them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from _report import machine, update_section
from _runs import train

from edgenas import Supernet
from edgenas.data import checkpoint_data
from edgenas.evaluate import Evaluator
from edgenas.space import get_space, register_space
from edgenas.space.presets import TINY
from edgenas.supernet import read_checkpoint
from edgenas.train import default_phases

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "_work" / "elastic_style"
ZIP = ROOT.parent / "shared" / "data" / "cifar10" / "train.zip"
STYLES = {"ReLU, no SE": ("relu", False), "h-swish + SE": ("h_swish", True)}


def fixed(name: str, act: str, se: bool):
    return register_space(replace(TINY, name=name, stages=tuple(replace(s, act=act, se=se) for s in TINY.stages),
                                  description=f"tiny with every stage {act}, SE {'on' if se else 'off'}"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epoch-scale", type=float, default=1.5)
    ap.add_argument("--limit", type=int, default=20_000)
    ap.add_argument("--data", default=f"imagefolder:{ZIP}")
    ap.add_argument("--full-style", choices=("max", "all"), default="max")
    ap.add_argument("--separate-epoch-scale", type=float, help="schedule of the fixed-style supernets (default: --epoch-scale)")
    ap.add_argument("--keep", action="store_true", help="reuse finished runs of the same settings")
    args = ap.parse_args(argv)
    separate_scale = args.separate_epoch_scale or args.epoch_scale
    spaces = {"tiny-mixed": None, **{label: fixed(f"tiny-{act}-se{int(se)}", act, se).name for label, (act, se) in STYLES.items()}}
    runs = {}
    for label, name in spaces.items():
        scale = args.epoch_scale if name is None else separate_scale
        out = WORK / (f"{label}-x{scale}-{args.full_style}" if name is None else f"{name}-x{scale}")
        if args.keep and (out / "seconds.txt").exists():
            net, seconds = Supernet.load(out / "latest.pt"), float((out / "seconds.txt").read_text())
            data = checkpoint_data(read_checkpoint(out / "latest.pt")["data"], args.data)
            runs[label] = (net, seconds)
            continue
        shutil.rmtree(out, ignore_errors=True)
        phases = [asdict(p) for p in default_phases(get_space(name or label), scale)]
        phases[0]["style"] = args.full_style
        settings = {"space": name or label, "data": args.data, "val_per_class": 500, "split": "last", "limit": args.limit,
                    "batch_size": 256, "phases": phases, "device": "cpu", "seed": 0}
        seconds, _, net, data = train(settings, out)
        (out / "seconds.txt").write_text(str(seconds))
        runs[label] = (net, seconds)
        print(f"{label}: trained in {seconds:.0f} s", flush=True)
    evaluator = Evaluator(data, calib_images=1000)
    mixed = runs["tiny-mixed"][0].space
    rng = np.random.default_rng(5)
    shapes = [mixed.sample(rng) for _ in range(6)]
    rows, gaps = [], []
    for label, (act, se) in STYLES.items():
        net = runs[label][0]
        for shape in shapes:
            styled = replace(shape, act=(act,) * mixed.n_stages, se=(se,) * mixed.n_stages)
            plain = replace(shape, act=(), se=())
            a, b = evaluator.top1(runs["tiny-mixed"][0], mixed.arch(styled)), evaluator.top1(net, net.space.arch(plain))
            gaps.append(100 * (a - b))
            rows.append(f"| {label} | `{plain.to_json()}` | {b:.4f} | {a:.4f} | {gaps[-1]:+.2f} |")
            print(rows[-1], flush=True)
    mean = float(np.mean(gaps))
    verdict = "within 1 point: kept" if mean >= -1.0 else "more than 1 point worse: not kept"
    times = ", ".join(f"{k} {v[1]:.0f} s" for k, v in runs.items())
    start = "first" if args.full_style == "all" else "kernel"
    body = f"""Three tiny-scale supernets trained identically on CIFAR-10 (`--limit {args.limit}` training images, last 500 per class
held out, batch 256, default schedule x{args.epoch_scale} (separate supernets x{separate_scale}), seed 0; {times} on this CPU): `tiny-mixed` (activation and
squeeze-excite elastic per stage, from the {start} phase on) and one per fixed style (every stage ReLU without SE / h-swish with SE). Top-1 on
the 5,000 held-out images, BN recalibrated, of the same 6 random subnets in each style.

| style | subnet (kernel, expand, depth, resolution) | separate supernet | elastic supernet | change (points) |
|---|---|---|---|---|
{chr(10).join(rows)}

Mean change of the elastic supernet's subnets against the separate supernets: {mean:+.2f} points (worst {min(gaps):+.2f}):
{verdict} (rule: within 1 point).
"""
    longer = f", separate supernets trained x{separate_scale / args.epoch_scale:.2f} longer" if separate_scale != args.epoch_scale else ""
    update_section(f"Elastic activation and squeeze-excite, from the {start} phase{longer}", body,
                   "python benchmarks/elastic_style.py " + " ".join(argv or sys.argv[1:]), machine())
    print(f"mean {mean:+.2f} points: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
