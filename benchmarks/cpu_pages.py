"""CPU memory pages: plain 4 KiB pages, transparent huge pages, and huge pages with glibc's heap kept during evaluation.

    python benchmarks/cpu_pages.py      # ~12 min on 2 cores; needs no dataset

On CPU every layer allocates its activations (hundreds of MB at batch 256-1,000) and frees them when the next
layer is done.  glibc returns such blocks to the kernel at once, so the next allocation page-faults every page
back in, zero-filled.  Each setting runs in its own process (the page setting must be in place before the
first allocation); the processes take turns per measurement:

- ``THP_MEM_ALLOC_ENABLE=0``, heap not kept: edgenas before this change;
- ``THP_MEM_ALLOC_ENABLE=1`` (what ``import edgenas`` sets unless the variable is set already): PyTorch puts
  allocations of 2 MiB and more on transparent huge pages, a 512th of the page faults;
- and ``edgenas.heap.kept_heap`` around each evaluation (the default): freed blocks stay in glibc's heap.

Measured: evaluation (the shipped CIFAR-10 supernet's largest, smallest and 4 random subnets, BN recalibrated on
500 images, 1,000 shipped held-out images; top-1 must be identical), training steps (the time-budget probe), and
each process's peak resident memory.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import sys
import time
from typing import Any

SETTINGS: dict[str, tuple[str, bool]] = {  # name: (THP_MEM_ALLOC_ENABLE, heap kept during evaluation)
    "4 KiB pages": ("0", False),
    "huge pages": ("1", False),
    "huge pages, heap kept (default)": ("1", True),
}
TRAIN = (("tiny", 128), ("cifar-mbv3", 64))


def worker(conn: Any, keep: bool) -> None:
    import contextlib
    import tempfile
    from pathlib import Path

    import numpy as np

    from edgenas import Supernet, evaluate, get_space
    from edgenas.data import checkpoint_data
    from edgenas.evaluate import Evaluator
    from edgenas.supernet import read_checkpoint
    from edgenas.train import Trainer, load_config

    if not keep:
        evaluate.kept_heap = contextlib.nullcontext
    space = get_space("cifar-mbv3")
    ckpt = read_checkpoint("cifar10")
    net, data = Supernet.from_checkpoint(ckpt), checkpoint_data(ckpt["data"])
    ev = Evaluator(data, calib_images=500)
    for r in space.resolutions:  # fill the evaluator's per-resolution caches before timing
        ev.top1(net, space.min_arch(r))
    rng = np.random.default_rng(0)
    archs = {"largest": space.max_arch(32), "smallest": space.min_arch(24), **{f"random-{i}": space.sample(rng) for i in range(4)}}
    scratch = tempfile.TemporaryDirectory()
    trainers = {s: Trainer(load_config(None, {"space": s, "data": "digits", "batch_size": bs, "device": "cpu"}),
                           Path(scratch.name) / s, progress=False) for s, bs in TRAIN}
    conn.send(list(archs))
    while (msg := conn.recv()) is not None:
        kind, name = msg
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.perf_counter()
        if kind == "eval":
            arch = archs[name]
            result: Any = (ev.top1(net, arch), time.perf_counter() - t, arch.r)
        else:
            m = trainers[name].probe(steps=2)
            result = (m["one_network_step_s"], m["sandwich_step_s"])
        conn.send((result, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults))
    conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)  # KiB -> GB


def start(thp: str, keep: bool) -> tuple[Any, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    os.environ["THP_MEM_ALLOC_ENABLE"] = thp  # a spawned process starts with the parent's environment as it is now
    proc = ctx.Process(target=worker, args=(child, keep))
    proc.start()
    return proc, parent


def main() -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _report import machine, update_section

    workers = {name: start(*setting) for name, setting in SETTINGS.items()}
    archs = [conn.recv() for _, conn in workers.values()][0]
    names = list(SETTINGS)
    ev: dict[str, dict[str, Any]] = {a: {} for a in archs}
    tr: dict[str, dict[str, list]] = {s: {n: [] for n in names} for s, _ in TRAIN}
    jobs = [("eval", a) for a in archs] + [("probe", s) for s, _ in TRAIN for _ in range(2)]
    for i, job in enumerate(jobs):
        order = names[i % len(names):] + names[: i % len(names)]  # each setting goes first in turn
        for name in order:
            workers[name][1].send(job)
            result, faults = workers[name][1].recv()
            if job[0] == "eval":
                ev[job[1]][name] = (*result, faults)
            else:
                tr[job[1]][name].append(result)
            print(job, name, result, faults, flush=True)
    rss = {}
    for name, (proc, conn) in workers.items():
        conn.send(None)
        rss[name] = conn.recv()
        proc.join()

    base, thp, keep = names
    rows = []
    total = {n: 0.0 for n in names}
    for a, by in ev.items():
        top1 = {by[n][0] for n in names}
        assert len(top1) == 1, (a, by)
        for n in names:
            total[n] += by[n][1]
        rows.append(f"| {a} (r={by[base][2]}) | {by[base][0]:.4f} | " + " | ".join(f"{by[n][1]:.1f} s ({by[n][3] / 1e6:.2f} M)" for n in names) + " |")
    train_rows = []
    for (s, bs) in TRAIN:
        one = {n: min(r[0] for r in tr[s][n]) for n in names}
        sand = {n: min(r[1] for r in tr[s][n]) for n in names}
        train_rows.append(f"| {s} | {bs} | " + " | ".join(f"{one[n] * 1e3:,.0f} / {sand[n] * 1e3:,.0f} ms" for n in names) + " |")
    head = " | ".join(names)
    body = "\n".join([
        "Each setting in its own process, the processes taking turns per measurement: `THP_MEM_ALLOC_ENABLE=0`; `=1` (what "
        "`import edgenas` sets unless the variable is already set); `=1` and glibc's heap kept during each evaluation "
        "(`edgenas.heap.kept_heap`, the default).", "",
        "Evaluation: the shipped CIFAR-10 supernet, BN recalibrated on 500 training images (one batch), 1,000 shipped "
        "held-out images in batches of 256; seconds (minor page faults). Top-1 identical in all three.", "",
        f"| subnet | top-1 | {head} |", "|---|---|---|---|---|", *rows, "",
        f"All six evaluations: {total[base]:.1f} s, {total[thp]:.1f} s, {total[keep]:.1f} s: huge pages "
        f"{total[base] / total[thp]:.2f}x faster than 4 KiB pages;\n"
        f"huge pages and the heap kept {total[base] / total[keep]:.2f}x ({total[thp] / total[keep]:.2f}x over huge pages alone).", "",
        "Training steps (the time-budget probe on digits upscaled; one-network / sandwich step, the faster of two turns):", "",
        f"| space | batch | {head} |", "|---|---|---|---|---|", *train_rows, "",
        "Peak resident memory of each process over all of the above: " + ", ".join(f"{n} {rss[n]:.2f} GB" for n in names) + ".",
    ])
    update_section("CPU memory pages", body, "python benchmarks/cpu_pages.py", machine())
    print(body)


if __name__ == "__main__":
    main()
