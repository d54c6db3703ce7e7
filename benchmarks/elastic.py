"""An elastic choice (activation + squeeze-excite, or width) inside one supernet, against a separate supernet per value.

    python benchmarks/elastic.py --choice style|width [--join first|kernel|expand] [--epoch-scale 1.5] [--limit 20000]
                                 [--separate-epoch-scale 2.25] [--keep]

Supernets of the tiny scale trained the same way on the CIFAR-10 zip (last 500 images per class held
out; same seed and batch): the elastic one (`tiny-mixed`: each stage chooses ReLU / h-swish and SE
off / on; `tiny-width`: each stage chooses 0.5x or 1x its width) and one per fixed value with every
stage set to it (stem and head as `tiny`'s). Top-1 on the 5,000 held-out images, BN recalibrated, of
6 random subnets (kernel, expand, depth, resolution) at each value: the elastic supernet's subnet
against the same subnet of the fixed supernet. Kept if within 1 point on average.  ``--join`` is the
phase from which the choice is elastic (default: where the default schedule puts it, the first phase
for style, the expand phases for width); an elastic phase trains more networks per step than a fixed
one, so ``--separate-epoch-scale`` gives the separate supernets a longer schedule for an equal-time
comparison.  ``--keep`` reuses finished runs of the same settings (each run's folder is named by them).
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
from edgenas.space import Arch, SearchSpace, get_space, register_space
from edgenas.space.presets import TINY
from edgenas.supernet import read_checkpoint
from edgenas.train import default_phases

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "_work" / "elastic"
ZIP = ROOT.parent / "shared" / "data" / "cifar10" / "train.zip"
S = TINY.n_stages


def _fixed_style(act: str, se: bool) -> SearchSpace:
    return register_space(replace(TINY, name=f"tiny-{act}-se{int(se)}", stages=tuple(replace(s, act=act, se=se) for s in TINY.stages),
                                  description=f"tiny with every stage {act}, SE {'on' if se else 'off'}"))


def _fixed_width(w: float) -> SearchSpace:
    if w == 1.0:
        return TINY
    stages = tuple(replace(s, width=TINY.stage_width(i, w)) for i, s in enumerate(TINY.stages))
    return register_space(replace(TINY, name=f"tiny-w{w:g}", stages=stages, description=f"tiny with every stage {w:g}x wide"))


#: per choice: the elastic space, its phase key, the default join, and per value (label -> (fixed space, arch fields))
CHOICES = {
    "style": ("tiny-mixed", "style", "first", "activation and squeeze-excite",
              {"ReLU, no SE": (lambda: _fixed_style("relu", False), {"act": ("relu",) * S, "se": (False,) * S}),
               "h-swish + SE": (lambda: _fixed_style("h_swish", True), {"act": ("h_swish",) * S, "se": (True,) * S})}),
    "width": ("tiny-width", "w", "expand", "width",
              {"0.5x": (lambda: _fixed_width(0.5), {"w": (0.5,) * S}), "1x": (lambda: _fixed_width(1.0), {"w": (1.0,) * S})}),
}


def phases(space: SearchSpace, scale: float, key: str, join: str) -> list[dict]:
    """The default schedule with ``key`` elastic from phase ``join`` on and at its largest before."""
    out = [asdict(p) for p in default_phases(space, scale)]
    start = {"first": 0, "kernel": 1, "expand": next(i for i, p in enumerate(out) if p["name"].startswith("expand"))}[join]
    for i, p in enumerate(out):
        p[key] = "all" if i >= start else "max"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--choice", choices=tuple(CHOICES), required=True)
    ap.add_argument("--join", choices=("first", "kernel", "expand"), help="first phase where the choice is elastic")
    ap.add_argument("--epoch-scale", type=float, default=1.5)
    ap.add_argument("--limit", type=int, default=20_000)
    ap.add_argument("--data", default=f"imagefolder:{ZIP}")
    ap.add_argument("--separate-epoch-scale", type=float, help="schedule of the fixed supernets (default: --epoch-scale)")
    ap.add_argument("--keep", action="store_true", help="reuse finished runs of the same settings")
    args = ap.parse_args(argv)
    elastic_name, key, default_join, what, values = CHOICES[args.choice]
    join = args.join or default_join
    separate_scale = args.separate_epoch_scale or args.epoch_scale
    spaces: dict[str, str] = {elastic_name: elastic_name, **{label: make().name for label, (make, _) in values.items()}}
    runs, data = {}, None
    for label, name in spaces.items():
        elastic = label == elastic_name
        scale = args.epoch_scale if elastic else separate_scale
        out = WORK / (f"{name}-x{scale}-{join}" if elastic else f"{name}-x{scale}")
        if args.keep and (out / "seconds.txt").exists():
            runs[label] = (Supernet.load(out / "latest.pt"), float((out / "seconds.txt").read_text()))
            data = checkpoint_data(read_checkpoint(out / "latest.pt")["data"], args.data)
            continue
        shutil.rmtree(out, ignore_errors=True)
        settings = {"space": name, "data": args.data, "val_per_class": 500, "split": "last", "limit": args.limit, "batch_size": 256,
                    "phases": phases(get_space(name), scale, key, join) if elastic else None, "epoch_scale": scale, "device": "cpu",
                    "seed": 0}
        seconds, _, net, data = train(settings, out)
        (out / "seconds.txt").write_text(str(seconds))
        runs[label] = (net, seconds)
        print(f"{label}: trained in {seconds:.0f} s", flush=True)
    assert data is not None
    evaluator = Evaluator(data, calib_images=1000)
    space = get_space(elastic_name)
    rng = np.random.default_rng(5)
    shapes = [space.sample(rng) for _ in range(6)]
    rows, gaps = [], []
    for label, (_, fields) in values.items():
        net = runs[label][0]
        for shape in shapes:
            plain = Arch(shape.ks, shape.e, shape.d, shape.r)
            a, b = evaluator.top1(runs[elastic_name][0], space.arch(replace(plain, **fields))), evaluator.top1(net, net.space.arch(plain))
            gaps.append(100 * (a - b))
            rows.append(f"| {label} | `{plain.to_json()}` | {b:.4f} | {a:.4f} | {gaps[-1]:+.2f} |")
            print(rows[-1], flush=True)
    mean = float(np.mean(gaps))
    verdict = "within 1 point: kept" if mean >= -1.0 else "more than 1 point worse: not kept"
    times = ", ".join(f"{k} {v[1]:.0f} s" for k, v in runs.items())
    body = f"""Tiny-scale supernets trained on CIFAR-10 (`--limit {args.limit}` training images, last 500 per class held out, batch 256,
default schedule x{args.epoch_scale} (separate supernets x{separate_scale}), seed 0; {times} on this CPU): `{elastic_name}` ({what}
elastic per stage, from the {join} phase on) and one supernet per fixed value ({", ".join(values)} in every stage). Top-1 on the
5,000 held-out images, BN recalibrated, of the same 6 random subnets at each value.

| value | subnet (kernel, expand, depth, resolution) | separate supernet | elastic supernet | change (points) |
|---|---|---|---|---|
{chr(10).join(rows)}

Mean change of the elastic supernet's subnets against the separate supernets: {mean:+.2f} points (worst {min(gaps):+.2f}):
{verdict} (rule: within 1 point).
"""
    longer = f", separate supernets trained x{separate_scale / args.epoch_scale:.2f} longer" if separate_scale != args.epoch_scale else ""
    title = {"style": "Elastic activation and squeeze-excite", "width": "Elastic width"}[args.choice]
    update_section(f"{title}, from the {join} phase{longer}", body, "python benchmarks/elastic.py " + " ".join(argv or sys.argv[1:]),
                   machine())
    print(f"mean {mean:+.2f} points: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
