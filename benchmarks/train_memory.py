"""Training memory on CPU: where `cifar-mbv3`'s peak comes from, and what brings it down.

    python benchmarks/train_memory.py [--batch-size 128]

One sandwich-phase epoch of 2 steps on CIFAR-sized random images, peak RSS of the process: with
0 and 2 random subnets per step (if activations were kept across a step's subnets, the peak would
grow with them), in fp32 and with bf16 autocast.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from _report import machine, update_section
from stream import peak_memory

SCRIPT = """
import sys, tempfile, torch
from edgenas.train import Trainer, load_config
bs, k, bf16 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
torch.set_num_threads(2)
cfg = load_config(None, dict(space="cifar-mbv3", data="digits", limit=2 * bs, batch_size=bs, random_subnets=k, bf16=bf16,
                             bn_calib_images=bs, device="cpu", resolutions=[32], image_size=32,
                             phases=[dict(name="expand", epochs=1, lr=0.01)]))
Trainer(cfg, tempfile.mkdtemp(), progress=False).run()
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/run.py"
        with open(path, "w") as f:
            f.write(SCRIPT)
        for k, bf16 in ((0, False), (2, False), (2, True)):
            seconds, gb, _ = peak_memory([sys.executable, path, str(args.batch_size), str(k), "1" if bf16 else "0"])
            rows.append((k, bf16, seconds, gb))
            print(f"random subnets {k}, {'bf16' if bf16 else 'fp32'}: peak {gb:.2f} GB, {seconds:.0f} s", flush=True)
    table = "\n".join(f"| {k} | {'bf16 autocast' if b else 'fp32'} | {gb:.2f} GB | {s:.0f} s |" for k, b, s, gb in rows)
    body = f"""cifar-mbv3 at 32x32 (digits upscaled: the data is not what costs memory), batch {args.batch_size}, one sandwich-phase
epoch of 2 steps, peak RSS of the training process.

| random subnets per step | precision | peak memory | time |
|---|---|---|---|
{table}

Two more subnets per step change the peak by {100 * (rows[1][3] / rows[0][3] - 1):+.0f}%: each backward frees its
subnet's activations before the next subnet runs, so the peak is the largest network's activations at
the batch size. bf16 autocast changes the peak by {100 * (rows[2][3] / rows[1][3] - 1):+.0f}%.
"""
    update_section("Training memory on CPU", body, "python benchmarks/train_memory.py " + " ".join(argv or sys.argv[1:]), machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
