"""The whole GPU job of a lent machine, in as few device calls as possible.

Needs only what the GPU image has (torch, torchvision, numpy, pyyaml, tqdm, scikit-learn, scipy):
run it from the repository root with ``PYTHONPATH=.``; nothing is installed.

    # one call of at most 10 minutes (a session's device time is 15 in all, the machine's start included):
    # training for what --deadline leaves after the pack, then the pack, everything under $OUT
    # (the last finished epoch is saved there every --save-every s too, in case the call is cut short)
    # (the data travels as one solid archive: tar -C .data -cJf .data/cifar10.tar.xz cifar10, a third of the folder's size)
    # (--setup-probe: first, a minute or two, what new layer shapes and compiling cost under each setting; training and labels
    # use the one it picks)
    python3 benchmarks/gpu_job.py session --run runs/c10 --dest $OUT --deadline 540 --unpack .data/cifar10.tar.xz --stream-workers 14 \\
        --stream-data imagefolder:.data/cifar10 --setup-probe bf16 bf16-static bf16-static-graphs --setup-seconds 150 \\
        -- --config edgenas/recipes/cifar10-continue.yaml --data imagefolder:.data/cifar10

    # or in steps, for longer allowances. call 1: throughput probe (and whether the streamed loader keeps up), then training started detached
    python3 benchmarks/gpu_job.py probe --space cifar-mbv3 --data imagefolder:data/train.zip --stream-workers 14 --out $OUT/probe.json
    python3 benchmarks/gpu_job.py start --run runs/c10 --time-budget 20 -- --space cifar-mbv3 \\
        --data imagefolder:data/train.zip --val-per-class 500 --split last --batch-size 512
    # calls 2..n: a few seconds each
    python3 benchmarks/gpu_job.py poll --run runs/c10
    # last call: write bf16 weights, evaluate them, fit the predictor on them (labels kept), metrics and log under $OUT
    python3 benchmarks/gpu_job.py pack --run runs/c10 --dest $OUT --predictor-samples 300

Each step prints a short summary last (a device call returns the end of its output).  On a CPU
the same steps run end to end with the ``tiny`` space (tests/test_gpu_job.py does so).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgenas import get_space  # noqa: E402
from edgenas.data import DataSplit, ImageData, Loader, augment, checkpoint_data, load_images, working_size  # noqa: E402
from edgenas.evaluate import Evaluator  # noqa: E402
from edgenas.io import atomic_path, write_json  # noqa: E402
from edgenas.latency.blocks import enumerate_blocks, network_keys  # noqa: E402
from edgenas.search import SearchError  # noqa: E402
from edgenas.search.labels import labels_path  # noqa: E402
from edgenas.search.predictor import fit_predictor  # noqa: E402
from edgenas.space import SAMPLINGS  # noqa: E402
from edgenas.supernet import Supernet, read_checkpoint  # noqa: E402
from edgenas.train import Trainer, load_config  # noqa: E402
from edgenas.train.budget import PROBE_PHASES  # noqa: E402
from edgenas.train.config import COMPILE_MODES, compile_options  # noqa: E402
from edgenas.train.sampling import sandwich, step_rng  # noqa: E402

FIT_RESERVE_S = 15.0  # seconds kept after the labels for choosing and fitting the predictor (about 4 s on a 2-core CPU)


def probe(args: argparse.Namespace) -> dict:
    """images/s of one-network and sandwich steps per batch size (and with torch.compile if asked)."""
    rows, began = [], time.perf_counter()
    late = lambda: args.deadline is not None and time.perf_counter() - began > args.deadline  # noqa: E731
    skipped = f"skipped: the probe's --deadline {args.deadline} s had passed"
    variants = {"off": [False], "on": [True], "both": [False, True]}
    trainer = None
    for compiled in dict.fromkeys(v for name in args.compile for v in variants.get(name, [name])):
        if rows and late():
            rows.append({"compile": compiled, "error": skipped})
            continue
        cfg = load_config(None, {"space": args.space, "data": args.data, "val_per_class": args.val_per_class, "split": "last",
                                 "batch_size": max(args.batch_sizes), "compile": compiled, "device": args.device,
                                 "cudnn_benchmark": args.cudnn_benchmark})
        trainer = Trainer(cfg, Path(args.scratch) / f"probe-{compiled}", progress=False)
        for bs in args.batch_sizes:
            t = time.perf_counter()
            cuda = trainer.device.type == "cuda"
            if cuda:
                torch.cuda.reset_peak_memory_stats(trainer.device)
            try:
                m = trainer.probe(steps=args.steps, batch_size=bs)
            except torch.cuda.OutOfMemoryError:
                rows.append({"batch_size": bs, "compile": compiled, "error": "out of memory"})
                torch.cuda.empty_cache()
                continue
            except Exception as exc:  # a compiler failure must not cost the call its other rows (and the training after it)
                if not compiled:
                    raise
                rows.append({"batch_size": bs, "compile": compiled, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
                break
            rows.append({"batch_size": bs, "compile": compiled, "cudnn_benchmark": args.cudnn_benchmark, **{k: round(v, 4) for k, v in m.items()},
                         "probe_s": round(time.perf_counter() - t, 1), "host_syncs_per_step": host_syncs(trainer, bs) if cuda else None,
                         "peak_gpu_gb": round(torch.cuda.max_memory_allocated(trainer.device) / 1e9, 2) if cuda else None})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    result = {"space": args.space, "data": args.data, "device": _device_name(), "rows": rows, "same_subnets": True}
    if args.stream_workers and trainer is not None:
        if late():
            result["stream"] = {"workers": args.stream_workers, "error": skipped}
        else:
            result["stream"] = stream_rate(args, trainer.device, max(trainer.resolutions))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    for r in rows:
        head = f"batch {r.get('batch_size', '-'):>5} compile {str(r['compile']):<15} cudnn benchmark {args.cudnn_benchmark!s:<5} "
        if "error" in r:
            print(head + r["error"])
            continue
        gpu = f"  peak {r['peak_gpu_gb']:.1f} GB  host syncs/step {r['host_syncs_per_step']:g}" if r["peak_gpu_gb"] is not None else ""
        print(head + f"one-network {r['one_network_images_per_s']:>9,.0f} img/s  sandwich {r['sandwich_images_per_s']:>9,.0f} img/s  "
              f"first sandwich step {r['sandwich_first_step_s']:.2f} s  eval {r['eval_s']:.1f} s" + gpu)
    if "stream" in result and "error" not in result["stream"]:
        st, fastest = result["stream"], max((r["one_network_images_per_s"] for r in rows if "error" not in r), default=0.0)
        print(f"streamed loader, {st['workers']} workers: {st['images_per_s']:,.0f} img/s decoded and augmented on the device "
              f"({st['images_per_s'] / max(fastest, 1e-9):.2f}x the fastest one-network step)")
    return result


def host_syncs(trainer: Trainer, batch_size: int, steps: int = 3) -> float:
    """Host-GPU synchronisations per training step, batches read as training reads them: each one
    drains the GPU's queue, so a launch-bound step runs host and GPU one after the other."""
    loader = Loader(trainer.loader.data, batch_size, shuffle=True, seed=0, drop_last=True)
    opt = torch.optim.SGD(trainer.net.parameters(), lr=0.0)
    phase, r = PROBE_PHASES["sandwich"], max(trainer.resolutions)
    archs = sandwich(trainer.space, phase, step_rng(trainer.cfg.seed, r), trainer.cfg.random_subnets, r)  # the probe's, warm
    batches = loader.epoch(0)
    trainer._step(phase, *next(batches), opt, r, archs)  # warm-up, the same subnets: first-use allocations and plans
    torch.cuda.synchronize(trainer.device)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _, (x, y) in zip(range(steps), batches):
                trainer._step(phase, x, y, opt, r, archs)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return len([w for w in caught if "synchroniz" in str(w.message)]) / steps


def stream_rate(args: argparse.Namespace, device: torch.device, resolution: int) -> dict:
    """images/s of the streaming path alone (decode in --stream-workers processes, pinned copy,
    augmentation on the device), in the training loader's order and batch size."""
    files, _, _ = load_images(args.data, size=working_size(resolution), stream=True)
    bs = max(args.batch_sizes)
    loader = Loader(files, bs, shuffle=True, seed=0, drop_last=True, workers=args.stream_workers, pin_memory=device.type == "cuda")
    gen, n, t = torch.Generator().manual_seed(0), 0, 0.0
    for i, (x, _) in enumerate(loader.epoch(0)):
        if i == 1:  # the first batch waits for the workers to start
            _sync(device)
            n, t = 0, time.perf_counter()
        augment(x.to(device, non_blocking=True), resolution, (0.5,) * 3, (0.25,) * 3, generator=gen)
        n += len(x)
        if i == args.stream_batches:
            break
    _sync(device)
    return {"workers": args.stream_workers, "batch_size": bs, "images": n, "images_per_s": round(n / (time.perf_counter() - t), 1)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# What a process pays for layer shapes it has not met: with bf16 autocast PyTorch runs convolutions through
# cuDNN's v8 (graph) API, whose plans are built per shape; in float32 it can use the v7 API instead
# (TORCH_CUDNN_V8_API_DISABLED: torch then sends bf16 convolutions to its slower native kernels, so that
# setting trains in float32, TF32 on tensor cores).  In the H200 session of 2026-12-04 the all phase's first
# epoch took 89 s and its later ones 12 s, and the pack evaluated 4.8 s a subnet; `setup` times the settings
# in fresh processes.  bf16-static-graphs: with static shapes one compiled graph serves every subnet, replayed as a
# CUDA graph (steps at 32x32 are bound by kernel launches: 57-62% GPU utilisation in the H200 session).
SETTINGS: dict[str, dict] = {"bf16": {"env": {}, "fp32": False},
                             "bf16-static": {"env": {}, "fp32": False, "static": True},  # every subnet at the largest shapes
                             "bf16-static-graphs": {"env": {}, "fp32": False, "static": True, "compile": "cudagraphs"},
                             "fp32": {"env": {}, "fp32": True},
                             "fp32-v7": {"env": {"TORCH_CUDNN_V8_API_DISABLED": "1"}, "fp32": True}}
TRAIN_SECONDS = 300.0  # training time ``choose`` weighs step speed over, where the caller does not say


def setup_child(args: argparse.Namespace) -> dict:
    """In this process, under one setting: seconds of training steps and of predictor labels (recalibrate,
    then score: ``Evaluator.correct`` in float32, as ``fit_predictor`` runs it) for subnets met for the first
    time, then for the same subnets again.  Weights are random and the learning rate 0: only time is measured."""
    setting, began = SETTINGS[args.child], time.perf_counter()
    device, space = torch.device(args.device), get_space(args.space)
    r, gen = max(space.resolutions), torch.Generator().manual_seed(0)
    net = Supernet(space, 10, seed=0).to(device)
    net.set_static_shapes(setting.get("static", False))
    to = net.to  # in place; torch 2.5's type stubs lack Module.to(memory_format=...)
    to(memory_format=torch.channels_last)
    x = torch.randn(args.batch_size, 3, r, r, generator=gen).to(device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch_size,), generator=gen).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    model = torch.compile(net, dynamic=True, **compile_options(setting["compile"])) if setting.get("compile") else net  # as training does

    def train_step(arch) -> None:
        net.activate(arch)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=not setting["fp32"]):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()

    def timed(fn, *a) -> float:
        _sync(device)
        t = time.perf_counter()
        fn(*a)
        _sync(device)
        return time.perf_counter() - t

    subnets = sandwich(space, PROBE_PHASES["sandwich"], step_rng(0, 0), args.subnets, r)[2:]
    largest = [timed(train_step, space.max_arch(r)) for _ in range(1 + args.steps)]
    first = [timed(train_step, a) for a in subnets]
    again = [timed(train_step, a) for a in subnets]
    n = args.calib_images + args.val_images
    images = torch.randint(0, 256, (n, 3, working_size(r), working_size(r)), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=gen)
    classes = [str(i) for i in range(10)]
    split = DataSplit(ImageData(images[: args.calib_images], labels[: args.calib_images], classes),
                      ImageData(images[args.calib_images :], labels[args.calib_images :], classes), (0.5,) * 3, (0.25,) * 3, True, "noise")
    ev = Evaluator(split, calib_images=args.calib_images, device=device, static_shapes=setting.get("static", False))
    scored = sandwich(space, PROBE_PHASES["sandwich"], step_rng(0, 1), args.subnets, r)[2:]  # shapes training did not meet
    eval_first = [timed(ev.correct, net, a) for a in scored]
    eval_again = [timed(ev.correct, net, a) for a in scored]
    rnd = lambda v: [round(t, 4) for t in v]  # noqa: E731
    largest_keys = set(network_keys(space, space.max_arch(r)))
    checked = {}
    if model is not net:  # a compiled setting must compute what eager steps do: two subnets' summed gradients compared

        def grads(run) -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            for a in subnets[:2]:
                net.activate(a)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=not setting["fp32"]):
                    F.cross_entropy(run(x).float(), y).backward()
            return torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).flatten().float() for p in net.parameters()])

        eager = grads(net)
        checked["grad_rel_err"] = round(float((grads(model) - eager).norm() / eager.norm()), 5)
    return {"setting": args.child, **setting, **checked,
            # layer shapes (blocks) the timed subnets met that the largest had not, and how many a space's phases can meet
            "new_shapes": len(set().union(*(network_keys(space, a) for a in subnets)) - largest_keys),
            "space_shapes": len({b.key for b in enumerate_blocks(space, [r])} - largest_keys),
            "largest_first_s": round(largest[0], 4), "largest_step_s": round(float(np.median(largest[1:])), 4),
            "subnet_first_s": rnd(first), "subnet_step_s": rnd(again), "eval_first_s": rnd(eval_first), "eval_again_s": rnd(eval_again),
            "seconds": round(time.perf_counter() - began, 1)}


def setup(args: argparse.Namespace) -> dict:
    """Each of ``--settings`` in a fresh process (a process keeps the plans it built), then ``choose``'s choice
    for training (over ``--train-seconds``) and for predictor labels."""
    rows, began = [], time.perf_counter()
    for name in args.settings:
        left = None if args.deadline is None else args.deadline - (time.perf_counter() - began)
        if left is not None and left < 5:
            rows.append({"setting": name, "error": f"skipped: the set-up probe's --deadline {args.deadline} s had passed"})
            continue
        cmd = [sys.executable, str(Path(__file__).resolve()), "setup", "--child", name, "--space", args.space, "--device", args.device,
               "--subnets", str(args.subnets), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--calib-images", str(args.calib_images), "--val-images", str(args.val_images)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=_child_env(SETTINGS[name]["env"]), timeout=left)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr.strip().splitlines()[-1][:300] if proc.stderr.strip() else f"exit {proc.returncode}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        except (subprocess.TimeoutExpired, RuntimeError, ValueError, IndexError) as exc:
            rows.append({"setting": name, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
    result = {"device": _device_name(), "space": args.space, "batch_size": args.batch_size, "train_seconds": args.train_seconds,
              "rows": rows, **choose(rows, args.train_seconds)}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, result)
    for r in rows:
        if "error" in r:
            print(f"setting {r['setting']:<8} {r['error']}")
            continue
        m = {k: float(np.mean(r[k])) for k in ("subnet_first_s", "subnet_step_s", "eval_first_s", "eval_again_s")}
        print(f"setting {r['setting']:<8} largest step {r['largest_step_s'] * 1e3:6.1f} ms; a new subnet's first training step "
              f"{m['subnet_first_s']:.2f} s, again {m['subnet_step_s'] * 1e3:.1f} ms; a new subnet's label {m['eval_first_s']:.2f} s, "
              f"again {m['eval_again_s']:.2f} s ({r['seconds']:.0f} s in all)")
    print(f"set-up probe: training with {result['train']}, predictor labels with {result['labels']}", flush=True)
    return result


def choose(rows: list[dict], train_seconds: float = TRAIN_SECONDS) -> dict:
    """The settings ``setup`` picks from its rows (bf16 when none ran).

    Training: the least expected time for ``train_seconds`` of bf16's steps (or, where bf16 failed, the
    first setting's that ran), at each setting's step
    speed (its slower ratio, largest network or subnet), plus setting up every layer shape the
    phases meet once in the process (the set-up the probe's subnets paid per new shape, times the
    space's shapes) and the largest network's first step (a compiled setting's compilation).
    Labels: the fastest first evaluations.  A compiled setting whose gradients strayed from eager ones
    (``grad_rel_err`` over 2%: bf16 rounding is far below) is not chosen."""
    ok = {r["setting"]: r for r in rows if "error" not in r and r.get("grad_rel_err", 0.0) <= 0.02}
    if not ok:
        return {"train": "bf16", "labels": "bf16"}
    base = ok.get("bf16") or next(iter(ok.values()))

    def expected_s(r: dict) -> float:
        ratio = max(r["largest_step_s"] / base["largest_step_s"], float(np.mean(r["subnet_step_s"]) / np.mean(base["subnet_step_s"])))
        per_shape = max(0.0, float(np.sum(r["subnet_first_s"]) - np.sum(r["subnet_step_s"]))) / max(1, r["new_shapes"])
        return train_seconds * ratio + per_shape * r["space_shapes"] + max(0.0, r["largest_first_s"] - r["largest_step_s"])

    return {"train": min(ok, key=lambda n: expected_s(ok[n])),
            "labels": min(ok, key=lambda n: float(np.mean(ok[n]["eval_first_s"])))}


def start(args: argparse.Namespace) -> None:
    """``edgenas train`` detached in its own session, log in RUN/train.log; returns at once."""
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    train_args = [a for a in args.train_args if a != "--"]
    cmd = [sys.executable, "-m", "edgenas.cli", "train", *train_args, "--out", str(run), "--time-budget", str(args.time_budget)]
    if (run / "config.yaml").exists():
        cmd.append("--resume")
    with open(run / "train.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=_child_env({**getattr(args, "env", {}), "PYTHONUNBUFFERED": "1"}),
                                start_new_session=True)  # in the caller's directory: relative paths mean what they say
    (run / "train.pid").write_text(str(proc.pid))
    print(f"started pid {proc.pid}: {' '.join(cmd)}")


def poll(args: argparse.Namespace) -> dict:
    """Alive or not, the last metrics row, the log's last lines and the GPU's state.

    With ``--wait S``: a line a minute until training ends or S seconds pass, so one device call
    covers minutes of training (a machine left idle between calls is given back).
    """
    run = Path(args.run)
    alive = _wait(run, args.wait)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()] if (run / "metrics.jsonl").exists() else []
    log = (run / "train.log").read_text(errors="replace") if (run / "train.log").exists() else ""
    lines = [ln for ln in log.replace("\r", "\n").splitlines() if ln.strip()]
    status = {"alive": alive, "epochs_done": len(rows), "last": rows[-1] if rows else None, "log_tail": lines[-args.lines:]}
    try:
        status["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used,memory.total", "--format=csv,noheader"],
                                       capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        status["gpu"] = None
    print("\n".join(status["log_tail"]))
    last = status["last"] or {}
    print(f"alive {alive}; {len(rows)} epochs done; last: {last.get('phase')} {last.get('epoch')} top1 max {last.get('top1_max')} "
          f"min {last.get('top1_min')} {last.get('images_per_s', 0):.0f} img/s; gpu {status['gpu']}")
    return status


def pack(args: argparse.Namespace) -> dict:
    """Write bf16 weights, metrics, config and log to --dest, then evaluate those weights (largest, smallest, random
    subnets; with and without BN recalibration) and fit the predictor on GPU evaluations of them, its labels kept
    beside it (``predictor.labels.npz``)."""
    began = time.perf_counter()
    run, dest = Path(args.run), Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    still_training = _wait(run, args.wait)
    if still_training:
        print(f"warning: training in {run} is still running; packing its last finished epoch", file=sys.stderr, flush=True)
    ckpt_path = run / "latest.pt"
    if not ckpt_path.is_file():
        sys.exit(f"pack: {run} holds no finished epoch yet (its log: {run / 'train.log'}); nothing to pack")
    ckpt = read_checkpoint(ckpt_path)
    save_weights(run, dest, ckpt)  # first: a call cut short still brings them back
    # the weights that ship (bf16, loaded back to fp32) are the ones evaluated and labelled: the card and the predictor
    # describe them, and the labels file's key is theirs, so `edgenas predictor --checkpoint` on them adds to its labels
    shipped = dest / "supernet.bf16.pt"
    net = Supernet.from_checkpoint(read_checkpoint(shipped)).to(args.device)
    space = net.space
    data = checkpoint_data(ckpt.get("data"))
    ev = Evaluator(data, calib_images=args.calib_images, device=args.device, static_shapes=args.static_shapes)  # float32, as the labels
    rng = np.random.default_rng(args.seed)
    r = max(space.resolutions)
    archs = {"largest": space.max_arch(r), "smallest": space.min_arch(r),
             **{f"random-{i}": space.sample(rng) for i in range(args.random)}}
    t, evals, each = time.perf_counter(), {}, []
    for name, a in archs.items():
        t1 = time.perf_counter()
        top1 = ev.top1(net, a)
        each.append(round(time.perf_counter() - t1, 2))  # recalibrate, then score: what one predictor label costs
        evals[name] = {"arch": a.to_dict(), "top1": top1, "top1_stored_bn": ev.top1(net, a, recalibrate=False)}
    eval_s = time.perf_counter() - t
    write_json(dest / "results.json", {"device": _device_name(), "eval": evals, "eval_s": round(eval_s, 1)})  # complete below, if the call lasts
    # Labels until the deadline, not as many as the evaluations above suggest: on a GPU they pay each new layer
    # shape's set-up, and a process meets fewer new shapes the more it evaluates (fit_predictor's time_limit).
    limit = None if args.deadline is None else args.deadline - (time.perf_counter() - began) - FIT_RESERVE_S
    t, pred, why = time.perf_counter(), None, ""
    if limit is not None and limit <= 0:
        why = "no time left before the deadline"
    else:
        try:
            pred = fit_predictor(space, shipped, min(args.predictor_samples, space.n_archs()), seed=args.seed,
                                 stratified=args.predictor_sampling == "stratified", calib_images=args.calib_images,
                                 device=args.device, progress=False, time_limit=limit, static_shapes=args.static_shapes,
                                 labels=labels_path(dest / "predictor.json"))
            pred.save(dest / "predictor.json")
        except SearchError as exc:
            why = str(exc)
    pred_s = time.perf_counter() - t

    finished = not (still_training or getattr(args, "stopped", False))  # a session stops an overrunning training
    result = {"space": space.name, "data": ckpt.get("data"), "device": _device_name(), "training_finished": finished,
              "eval": evals, "eval_s": round(eval_s, 1),
              "eval_each_s": each, "predictor": pred.report if pred else None, "predictor_s": round(pred_s, 1),
              "metrics_last": (ckpt.get("history") or [{}])[-1],
              "weights_bytes": (dest / "supernet.bf16.pt").stat().st_size, "stream": getattr(args, "stream", None),
              "unpacked": getattr(args, "unpacked", None), "setup": getattr(args, "setup", None), "static_shapes": args.static_shapes}
    write_json(dest / "results.json", result)
    h = pred.report["holdout"] if pred else None
    print(f"largest {evals['largest']['top1']:.4f}  smallest {evals['smallest']['top1']:.4f}  random "
          + " ".join(f"{v['top1']:.3f}" for k, v in evals.items() if k.startswith("random"))
          + (f"\npredictor {pred.report['model']} on {pred.report['n_train'] + pred.report['n_holdout']} subnets labelled in "
             f"{pred.report['label_seconds']:.0f} s: held-out Kendall tau {h['kendall_tau']:.3f}" if pred and h else f"\nno predictor: {why}")
          + f"; weights {result['weights_bytes'] / 1e6:.1f} MB; eval {eval_s:.0f} s, predictor {pred_s:.0f} s")
    return result


def save_weights(run: Path, dest: Path, ckpt: dict | None = None) -> None:
    """The run's last finished epoch under ``dest``: bf16 weights without the optimizer state (they load back to
    fp32 with Supernet.load / read_checkpoint), its metrics, config and log, and the device's name."""
    ckpt = read_checkpoint(run / "latest.pt") if ckpt is None else ckpt
    dest.mkdir(parents=True, exist_ok=True)
    compact = {k: v for k, v in ckpt.items() if k not in ("optimizer", "torch_rng", "cuda_rng", "scaler")}
    compact["state_dict"] = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    with atomic_path(dest / "supernet.bf16.pt") as tmp:
        torch.save(compact, tmp)
    for name in ("metrics.csv", "config.yaml", "train.log"):
        if (run / name).exists():
            with atomic_path(dest / name) as tmp:
                tmp.write_bytes((run / name).read_bytes()[-8_000_000:])
    if not (dest / "results.json").exists():
        write_json(dest / "results.json", {"device": _device_name(), "training_finished": False})


def session(args: argparse.Namespace) -> dict:
    """(The set-up probe, if asked,) train, then pack, in one device call ending by ``--deadline`` seconds: training gets a
    ``--time-budget`` of what is left after ``--pack-reserve``, and is stopped ``--grace`` seconds
    after its end if it overruns (its last finished epoch is packed); the pack labels as many
    predictor subnets as the time left holds.  ``--unpack`` comes first, inside the deadline."""
    began = time.perf_counter()
    run = Path(args.run)
    unpacked = unpack(Path(args.unpack)) if args.unpack else None
    probed, train_args = None, list(args.train_args)
    if args.setup_probe:
        train_s = args.deadline - args.pack_reserve - (time.perf_counter() - began) - args.setup_seconds
        probed = setup(argparse.Namespace(settings=args.setup_probe, space=args.setup_space, device=args.device, subnets=3, steps=5,
                                          batch_size=args.setup_batch_size, calib_images=args.calib_images, val_images=5000,
                                          deadline=args.setup_seconds, out=str(Path(args.dest) / "setup.json"),
                                          train_seconds=round(max(train_s, 0.0), 1)))
        if SETTINGS[probed["train"]]["fp32"]:
            train_args.append("--fp32")
        if SETTINGS[probed["train"]].get("static"):
            train_args.append("--static-shapes")
        if SETTINGS[probed["train"]].get("compile"):
            train_args += ["--compile", SETTINGS[probed["train"]]["compile"]]
        os.environ.update(SETTINGS[probed["labels"]]["env"])  # before this process's first convolution: the pack's
    train_end = args.deadline - args.pack_reserve  # seconds from ``began``
    start(argparse.Namespace(run=args.run, time_budget=round((train_end - (time.perf_counter() - began)) / 60, 2),
                             train_args=train_args, env=SETTINGS[probed["train"]]["env"] if probed else {}))
    stopped = _wait(run, train_end + args.grace - (time.perf_counter() - began), save_to=Path(args.dest), save_every=args.save_every)
    if stopped:
        pid = int((run / "train.pid").read_text())
        print(f"session: training overran its {train_end / 60:.1f} min by {args.grace:.0f} s; stopping it", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        _wait(run, 30)
    lines = (run / "train.log").read_text(errors="replace").replace("\r", "\n").splitlines()
    epochs = [i for i, ln in enumerate(lines) if ln.startswith("[")][-8:]  # the plan, its re-fits, errors and the last epochs
    print("\n".join(ln[:400] for i, ln in enumerate(lines) if ln.startswith("edgenas") or i in epochs), flush=True)
    stream = None
    if args.stream_workers:  # does decoding from disk keep the GPU fed? (seconds, before the pack sizes its labels)
        try:
            stream = stream_rate(argparse.Namespace(data=args.stream_data, batch_sizes=[512], stream_workers=args.stream_workers,
                                                    stream_batches=args.stream_batches), torch.device(args.device), _resolution(run))
            print(f"streamed loader, {stream['workers']} workers: {stream['images_per_s']:,.0f} img/s decoded and augmented", flush=True)
        except Exception as exc:  # a loader failure must not cost the call its pack
            stream = {"workers": args.stream_workers, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    left = args.deadline - (time.perf_counter() - began)
    return pack(argparse.Namespace(**{**vars(args), "wait": 0.0, "deadline": left, "stopped": stopped, "stream": stream,
                                      "unpacked": unpacked, "setup": probed,
                                      "static_shapes": _static_labels(run, probed)}))


def unpack(archive: Path) -> dict:
    """Extract a tar archive (``.tar.xz``, ``.tar.gz``, ...) of the training data beside itself.

    Only the working tree travels to a lent machine, 64 MiB of it.  CIFAR-10's 50,000 JPEGs share
    their ~600-byte headers, which only a solid archive compresses: the folder's 47.4 MB travel as
    15.5 MB of ``.tar.xz``, and unpack in seconds.  tarfile's ``data`` filter refuses members that
    would land outside the folder (absolute paths, ``..``, links out of it) or be anything but
    plain files and folders.
    """
    if not hasattr(tarfile, "data_filter"):
        sys.exit("--unpack needs a Python whose tarfile has extraction filters (3.10.12 or later)")
    t = time.perf_counter()
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            tar.extractall(archive.parent, filter="data")
    except (OSError, tarfile.TarError) as exc:
        sys.exit(f"--unpack {archive}: {exc}")
    info = {"archive": str(archive), "bytes": archive.stat().st_size, "files": sum(m.isfile() for m in members),
            "seconds": round(time.perf_counter() - t, 1)}
    print(f"unpacked {info['files']:,} files ({info['bytes'] / 1e6:.1f} MB) from {archive} in {info['seconds']} s", flush=True)
    return info


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment for a child that imports edgenas from this checkout, plus ``extra``."""
    return {**os.environ, **extra, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _run_config(run: Path) -> dict:
    """The run's config.yaml as written by ``edgenas train`` ({} before it wrote one)."""
    import yaml

    cfg = run / "config.yaml"
    return (yaml.safe_load(cfg.read_text()) or {}) if cfg.is_file() else {}


def _static_labels(run: Path, probed: dict | None) -> bool:
    """Whether the pack scores at static shapes: as the set-up probe chose for labels, else as the run trained."""
    if probed:
        return bool(SETTINGS[probed["labels"]].get("static"))
    return bool(_run_config(run).get("static_shapes"))


def _resolution(run: Path) -> int:
    """The largest resolution of the run's space (what its loader decodes for)."""
    return max(get_space(_run_config(run)["space"]).resolutions)


def _wait(run: Path, seconds: float, save_to: Path | None = None, save_every: float = 120.0) -> bool:
    """Wait up to ``seconds`` for the detached training to end, a line a minute; True if it still runs.

    With ``save_to``, the last finished epoch is saved there every ``save_every`` seconds: a call killed
    before its pack (a machine that started late leaves a shorter limit) still brings weights back.
    """
    end = time.time() + seconds
    report = time.time() + 60
    saved, save_at = 0.0, time.time() + save_every
    while True:
        pid = int((run / "train.pid").read_text()) if (run / "train.pid").exists() else None
        if pid is None or not _alive(pid) or time.time() >= end:
            return pid is not None and _alive(pid)
        time.sleep(min(2.0, max(0.0, end - time.time())))  # a finished run is noticed within seconds: device time is scarce
        latest = run / "latest.pt"
        if save_to is not None and time.time() >= save_at and latest.is_file() and latest.stat().st_mtime > saved:
            mtime, save_at = latest.stat().st_mtime, time.time() + save_every
            try:
                save_weights(run, save_to)
                saved = mtime
                print(f"{time.strftime('%H:%M:%S')} saved the last finished epoch under {save_to}", flush=True)
            except Exception as exc:  # the next turn tries again; the pack saves anyway
                print(f"warning: could not save the last epoch under {save_to}: {exc}", file=sys.stderr, flush=True)
        if time.time() < report:
            continue
        report += 60
        rows = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
        last = json.loads(rows[-1]) if rows else {}
        print(f"{time.strftime('%H:%M:%S')} {len(rows)} epochs; {last.get('phase')} {last.get('epoch')} "
              f"top1 max {last.get('top1_max')} min {last.get('top1_min')}", flush=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child not yet reaped is a zombie: not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def _device_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--space", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--val-per-class", type=int)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--compile", nargs="+", choices=("off", "on", "both", *COMPILE_MODES), default=["off"], metavar="MODE",
                   help="probe eager steps (off), torch.compile'd (on, or a torch.compile mode such as reduce-overhead), "
                        "several: off on reduce-overhead; both = off on")
    p.add_argument("--device", default="auto")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="train's --cudnn-benchmark; cuDNN caches a plan per layer shape for the whole process, whichever way it was "
                        "chosen, so compare the two settings in two probe runs")
    p.add_argument("--scratch", default="runs/_probe")
    p.add_argument("--stream-workers", type=int, default=0, help="also time the streamed loader with this many decoding processes")
    p.add_argument("--stream-batches", type=int, default=20)
    p.add_argument("--deadline", type=float, help="seconds: after this, start no further compile mode (the first always runs) nor the loader timing, "
                   "so the training started after the probe in the same call keeps its time")
    p.add_argument("--out", required=True)
    p = sub.add_parser("setup", help="what new layer shapes cost a training step and a predictor label under each setting")
    p.add_argument("--settings", nargs="+", choices=tuple(SETTINGS), default=["bf16", "bf16-static", "bf16-static-graphs", "fp32-v7"])
    p.add_argument("--child", choices=tuple(SETTINGS), help=argparse.SUPPRESS)  # one setting, in this process
    p.add_argument("--space", default="cifar-mbv3")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--subnets", type=int, default=3, help="new subnets timed (then again)")
    p.add_argument("--steps", type=int, default=5, help="steps of the largest network timed after its first")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--calib-images", type=int, default=4000)
    p.add_argument("--val-images", type=int, default=5000)
    p.add_argument("--deadline", type=float, help="seconds: start no further setting after this")
    p.add_argument("--train-seconds", type=float, default=TRAIN_SECONDS, help="training time the choice of a setting weighs step speed over")
    p.add_argument("--out")
    p = sub.add_parser("start")
    p.add_argument("--run", required=True)
    p.add_argument("--time-budget", type=float, required=True, help="minutes")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then edgenas train flags")
    p = sub.add_parser("poll")
    p.add_argument("--run", required=True)
    p.add_argument("--lines", type=int, default=6)
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for training to end, reporting each minute")
    for name in ("pack", "session"):
        p = sub.add_parser(name)
        p.add_argument("--run", required=True)
        p.add_argument("--dest", required=True)
        p.add_argument("--predictor-samples", type=int, default=1000,
                       help="at most this many predictor labels (with --deadline, as many as fit first): labels at static shapes "
                            "pay no set-up per subnet, so the deadline rather than this cap should bound them")
        p.add_argument("--predictor-sampling", choices=SAMPLINGS, default="stratified",
                       help="how the predictor's subnets are drawn (edgenas predictor --sampling)")
        p.add_argument("--random", type=int, default=10)
        p.add_argument("--calib-images", type=int, default=4000,
                       help="BN recalibration images per evaluation; between two calibration draws 4,000 move a label 0.10 points "
                            "on average, 1,000 0.13 (benchmarks/label_noise.py)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        if name == "pack":
            p.add_argument("--static-shapes", action="store_true", help="evaluate and label in the supernet at its largest layer shapes "
                                                                        "(the same results; no set-up per subnet on a GPU)")
            p.add_argument("--wait", type=float, default=600.0, help="seconds to wait for training to end before packing")
            p.add_argument("--deadline", type=float, help="seconds: label only as many predictor subnets as fit before then")
    p.add_argument("--deadline", type=float, required=True, help="seconds from the start by which everything is under --dest")
    p.add_argument("--pack-reserve", type=float, default=150.0, help="seconds kept for the pack (evaluations and predictor labels)")
    p.add_argument("--grace", type=float, default=30.0, help="seconds an overrunning training gets before it is stopped")
    p.add_argument("--save-every", type=float, default=120.0, help="seconds between saves of the last finished epoch under --dest "
                   "while training runs")
    p.add_argument("--stream-workers", type=int, default=0, help="after training, time the streamed loader with this many decoding processes")
    p.add_argument("--stream-data", help="the data the streamed loader reads (with --stream-workers)")
    p.add_argument("--stream-batches", type=int, default=20)
    p.add_argument("--setup-probe", nargs="+", choices=tuple(SETTINGS), metavar="SETTING",
                   help="first time new layer shapes under these settings (gpu_job.py setup: bf16 bf16-static bf16-static-graphs fp32-v7) and train and label "
                        "with the settings it picks")
    p.add_argument("--setup-space", default="cifar-mbv3", help="the space the set-up probe builds")
    p.add_argument("--setup-batch-size", type=int, default=1024, help="the batch the set-up probe trains (the CIFAR-10 recipes' 1024: "
                   "a layer shape's set-up is per batch size)")
    p.add_argument("--setup-seconds", type=float, default=90.0, help="the set-up probe starts no further setting after this")
    p.add_argument("--unpack", help="first extract this tar archive (.tar.xz) of the data beside itself: a solid archive of small "
                   "JPEGs is a third of their folder's size, and only 64 MiB of working tree travel to a lent machine")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then edgenas train flags (--out and --time-budget are set)")
    args = ap.parse_args(argv)
    if args.step == "session" and args.stream_workers and not args.stream_data:
        ap.error("--stream-workers needs --stream-data (the data the loader streams)")
    if args.step == "setup" and args.child:
        print(json.dumps(setup_child(args)))
        return 0
    {"probe": probe, "setup": setup, "start": start, "poll": poll, "pack": pack, "session": session}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
