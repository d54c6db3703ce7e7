"""Streaming data path: peak memory of training on a folder of 30,000 256x256 JPEGs, what decoding
it whole would take, and loader throughput (decoded + augmented images/s) streamed vs in memory.

    python benchmarks/stream.py [--images 30000] [--limit 6000]

The folder is generated once under benchmarks/_work/stream (seeded; about 0.4 GB of JPEGs).
Peak memory is the summed RSS of the process and its DataLoader workers, sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from _report import machine, update_section

WORK = Path(__file__).resolve().parent / "_work" / "stream"
ROOT = Path(__file__).resolve().parent.parent


def _make(args: tuple[Path, int, int, int]) -> None:
    from PIL import Image

    folder, start, stop, size = args
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        c = i % 10
        base = np.stack([np.sin(xx * (c + 1) * 3 + rng.random() * 6), np.cos(yy * (c + 2) * 2), np.sin((xx + yy) * (c + 3))], -1)
        img = ((base * 0.5 + 0.5) * 200 + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"class{c}" / f"{i:06d}.jpg", quality=90)


def generate(n: int, size: int = 256) -> Path:
    folder = WORK / f"jpeg{n}"
    if (folder / ".done").is_file():
        return folder
    for c in range(10):
        (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
    chunks = [(folder, s, min(n, s + 1000), size) for s in range(0, n, 1000)]
    with Pool(os.cpu_count() or 1) as pool:
        pool.map(_make, chunks)
    (folder / ".done").write_text(str(n))
    return folder


def _tree_rss(pid: int) -> int:
    """Summed resident memory of ``pid`` and all its descendants, in bytes."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def peak_memory(cmd: list[str]) -> tuple[float, float, str]:
    """(seconds, peak GB over the process tree, stderr tail) of a command."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.1)

    th = threading.Thread(target=sample)
    th.start()
    _, err = proc.communicate()
    th.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    return time.perf_counter() - t, peak[0] / 1e9, err[-300:]


def throughput(folder: Path, resolution: int, n: int, workers: int) -> dict[str, float]:
    """images/s decoded (or read from memory) and augmented at ``resolution``, batch 128."""
    import torch

    from edgenas.data import Loader, augment, load_images, materialize, working_size

    size = working_size(resolution)
    files, _, _ = load_images(f"imagefolder:{folder}", size=size, stream=True)
    files = files.subset(np.arange(n))
    gen = torch.Generator().manual_seed(0)
    out = {}
    t = time.perf_counter()
    held = materialize(files, workers)
    out["decode_whole_s"] = time.perf_counter() - t
    for name, data, w in (("streamed", files, workers), ("in_memory", held, 0)):
        t = time.perf_counter()
        for x, _ in Loader(data, 128, shuffle=True, seed=0, workers=w).epoch(0):
            augment(x, resolution, (0.5,) * 3, (0.25,) * 3, generator=gen)
        out[name] = n / (time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=30_000)
    ap.add_argument("--limit", type=int, default=6000, help="training images drawn from the folder (CPU time)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    t = time.perf_counter()
    folder = generate(args.images)
    print(f"folder: {folder} ({time.perf_counter() - t:.0f} s)", flush=True)
    run = WORK / "run"
    subprocess.run(["rm", "-rf", str(run)], check=True)
    train_cmd = [sys.executable, "-m", "edgenas.cli", "train", "--space", "tiny", "--data", f"imagefolder:{folder}", "--stream",
                 "--workers", str(args.workers), "--val-per-class", "100", "--limit", str(args.limit), "--batch-size", "128",
                 "--epoch-scale", "0.25", "--bn-calib-images", "500", "--device", "cpu", "--out", str(run)]
    train_s, train_gb, train_tail = peak_memory(train_cmd)
    print(f"streamed training: {train_s:.0f} s, peak {train_gb:.2f} GB", flush=True)
    whole_cmd = [sys.executable, "-c", f"from edgenas.data import load_images; d = load_images('imagefolder:{folder}', size=256, "
                                       "stream=False)[0]; print(d.images.shape)"]
    whole_s, whole_gb, _ = peak_memory(whole_cmd)
    print(f"decoded whole at 256: {whole_s:.0f} s, peak {whole_gb:.2f} GB", flush=True)
    rates = {r: throughput(folder, r, 2048, args.workers) for r in (224, 32)}
    for r, v in rates.items():
        print(f"@{r}: streamed {v['streamed']:.0f} img/s, in memory {v['in_memory']:.0f} img/s", flush=True)

    decoded = args.images * 3 * 256 * 256 / 1e9
    body = f"""
Folder: {args.images:,} seeded 256x256 JPEGs in 10 classes ({decoded:.1f} GB decoded at full size).

| what | time | peak memory (process + workers) | target |
|---|---|---|---|
| `edgenas train --space tiny --stream` ({args.limit:,} training images drawn from the folder, 1 epoch a phase, \
{args.workers} workers) | {train_s:.0f} s | {train_gb:.2f} GB | < 3 GB |
| the same folder decoded whole at 256 px (the in-memory path without a working size) | {whole_s:.0f} s | {whole_gb:.2f} GB | (exceeds it) |

Loader throughput, 2,048 images, batch 128, decoded + augmented (random translation, flip, resize):

| resolution (working size) | streamed, {args.workers} workers | in memory (decoded first) | decoding them whole first |
|---|---|---|---|
""" + "\n".join(f"| {r} ({int(np.ceil(r * 1.15))} px) | {v['streamed']:,.0f} images/s | {v['in_memory']:,.0f} images/s | "
                f"{v['decode_whole_s']:.1f} s |" for r, v in rates.items())
    update_section("Streaming data", body, "python benchmarks/stream.py " + " ".join(argv or sys.argv[1:]), machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
