"""Training memory on CPU: where `cifar-mbv3`'s peak comes from, and what brings it down.

    python benchmarks/train_memory.py [--batch-size 64] [--large 512]

One sandwich-phase epoch of 2 steps on CIFAR-sized images, peak RSS of the process: with 0 and 2
random subnets per step (if activations were kept across a step's subnets, the peak would grow with
them), in fp32 and with bf16 autocast, each with and without gradient checkpointing; at --large,
fp32 and bf16 with and without checkpointing.
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
bs, k, bf16, ckpt = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
torch.set_num_threads(2)
cfg = load_config(None, dict(space="cifar-mbv3", data="digits", limit=2 * bs, batch_size=bs, random_subnets=k, bf16=bf16,
                             grad_checkpointing=ckpt,
                             bn_calib_images=bs, device="cpu", resolutions=[32], image_size=32,
                             phases=[dict(name="expand", epochs=1, lr=0.01)]))
Trainer(cfg, tempfile.mkdtemp(), progress=False).run()
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--large", type=int, help="a second, larger batch size (fp32 and bf16, 2 random subnets)")
    args = ap.parse_args(argv)
    runs = [(args.batch_size, k, bf16, ckpt) for k, bf16 in ((0, False), (2, False), (2, True)) for ckpt in (False, True)]
    runs += [(args.large, 2, bf16, ckpt) for bf16 in (False, True) for ckpt in (False, True)] if args.large else []
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/run.py"
        with open(path, "w") as f:
            f.write(SCRIPT)
        for run in runs:
            seconds, gb, _ = peak_memory([sys.executable, path, *(str(int(v)) for v in run)])
            rows[run] = (seconds, gb)
            print(run, f"peak {gb:.2f} GB, {seconds:.0f} s", flush=True)
    table = "\n".join(f"| {bs} | {k} | {'bf16 autocast' if b else 'fp32'} | {rows[bs, k, b, False][1]:.2f} GB | "
                      f"{rows[bs, k, b, True][1]:.2f} GB | {rows[bs, k, b, False][0]:.0f} s | {rows[bs, k, b, True][0]:.0f} s |"
                      for bs, k, b, c in runs if not c)
    bs = args.batch_size
    change = lambda a, b: f"{100 * (rows[b][1] / rows[a][1] - 1):+.0f}%"  # noqa: E731
    body = f"""cifar-mbv3 at 32x32 (digits upscaled: the data is not what costs memory), one sandwich-phase epoch of 2 steps
(plus BN recalibration and evaluation), peak RSS of the training process; `--grad-checkpointing` keeps each
elastic block's input only and recomputes the block in backward.

| batch | random subnets per step | precision | peak | peak, grad checkpointing | time | time, grad checkpointing |
|---|---|---|---|---|---|---|
{table}

Two more subnets per step change the peak by {change((bs, 0, False, False), (bs, 2, False, False))}: each backward frees its
subnet's activations before the next subnet runs, so the peak is the largest network's activations at the batch
size. bf16 autocast changes it by {change((bs, 2, False, False), (bs, 2, True, False))}, gradient checkpointing by
{change((bs, 2, False, False), (bs, 2, False, True))} (fp32) at batch {bs}{
    f", and by {change((args.large, 2, False, False), (args.large, 2, False, True))} at batch {args.large}" if args.large else ""}.
"""
    update_section("Training memory on CPU", body, "python benchmarks/train_memory.py " + " ".join(argv or sys.argv[1:]), machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
