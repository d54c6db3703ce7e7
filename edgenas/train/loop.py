"""Progressive shrinking with the sandwich rule and in-place distillation; resumable, DDP-ready.

Determinism: the data order of an epoch depends on (seed, epoch), each step's resolution,
subnets and augmentation on (seed, step); dropout's global torch RNG is seeded once and stored in
every checkpoint.  So a run resumed from ``latest.pt`` continues exactly as if never stopped.

Multi-GPU or multi-node: launch the same command under ``torchrun``.  Every rank samples the
same subnets (seeded by the step) and takes an interleaved share of each global batch (with the
augmentation draws its images get in one process); batch norm uses global-batch statistics and
gradients are averaged with one flat all-reduce per step, so N processes of batch B train as one
process of batch N x B (tested to float tolerance).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..checks import torch_device
from ..data import ImageData, Loader, augment, load_data, materialize, working_size
from ..errors import CheckpointError, EdgeNASError
from ..evaluate import Evaluator, default_channels_last
from ..io import atomic_path, run_directory
from ..progress import bar as progress_bar
from ..space import get_space
from ..supernet import Supernet, read_checkpoint
from .budget import PROBE_PHASES, epoch_seconds, plan_epochs, refits_after, replan, work
from .config import TrainConfig, compile_options
from .distributed import all_reduce_grads, check_in_sync, sync_batchnorm
from .sampling import sandwich, smallest, step_rng
from .warmstart import load_init, reached, widen

__all__ = ["Trainer", "compile_errors", "kd_loss"]


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) on temperature-softened distributions, scaled by T^2."""
    t = temperature
    return F.kl_div(F.log_softmax(student.float() / t, 1), F.log_softmax(teacher.float() / t, 1), reduction="batchmean", log_target=True) * t * t


@contextlib.contextmanager
def compile_errors(active: bool) -> Iterator[None]:
    """A torch.compile failure (no C++ compiler, an unsupported Python or GPU) as one clear line, not
    a compiler traceback from inside the first training step."""
    if not active:
        yield
        return
    from torch._dynamo.exc import TorchDynamoException

    try:
        yield
    except TorchDynamoException as exc:
        inner = getattr(exc, "inner_exception", None) or exc  # what the backend raised, not dynamo's wrapper
        reason = next(ln.strip() for ln in f"{type(inner).__name__}: {inner}".splitlines() if ln.strip())
        raise EdgeNASError(f"--compile: torch.compile failed on this machine ({reason[:300]}); train without --compile") from None


def _fewer_images(plan: dict[str, Any], images_per_step: int) -> str:
    """What an over-budget plan's one epoch a phase would fit in: a hint, since the data, not the schedule, is too large."""
    steps = plan.get("fits_steps_per_epoch", 0)
    if steps < 1:
        return ""
    return f"; about --limit {steps * images_per_step:,} training images would fit one epoch a phase in the budget"


class Trainer:
    """Trains one supernet through the progressive-shrinking schedule of ``cfg`` into run directory ``out``.

    ``run()`` trains (or, with ``resume``, continues from ``latest.pt``) and returns the last
    epoch's metrics; ``probe()`` times steps without changing anything.  Under ``torchrun`` every
    rank builds a Trainer with the same config; rank 0 writes the files.
    """

    def __init__(self, cfg: TrainConfig, out: str | Path, *, resume: bool = False, progress: bool = True):
        self.started = time.perf_counter()  # --time-budget counts from here: data loading and set-up spend it too
        self.cfg, self.out, self.progress = cfg, Path(out), progress
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() and cfg.device != "cpu" else "gloo")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if cfg.device == "auto":
            self.device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch_device(cfg.device)
        cuda = self.device.type == "cuda"
        self.bf16 = cuda if cfg.bf16 is None else cfg.bf16
        self.channels_last = default_channels_last(self.device) if cfg.channels_last is None else cfg.channels_last
        resident = cuda if cfg.resident is None else cfg.resident
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark  # process-wide in torch; without cuDNN it changes nothing

        self.ckpt_path = self.out / "latest.pt"
        if resume and not self.ckpt_path.is_file():
            if not (self.out / "config.yaml").is_file():
                raise CheckpointError(f"--resume: {self.out} holds no run to resume")
            resume = False  # killed before its first checkpoint: start it over, nothing is lost
            if self.progress and self.rank == 0:
                print(f"edgenas: {self.out} has no checkpoint yet; starting the run from the beginning", file=sys.stderr)
        self.resume = resume
        self._check_out()

        self.space = get_space(cfg.space, cfg.space_def)
        res = cfg.resolutions or list(self.space.resolutions)
        self.data = load_data(cfg.data, val_spec=cfg.val_data, val_fraction=cfg.val_fraction, val_per_class=cfg.val_per_class,
                              split=cfg.split, seed=cfg.seed, limit=cfg.limit, size=cfg.image_size or working_size(max(res)),
                              stream=cfg.stream, memory_budget=cfg.memory_budget * 1e9 if cfg.memory_budget else None)
        streamed = not isinstance(self.data.train, ImageData)
        workers = (cfg.workers if cfg.workers is not None else min(8, os.cpu_count() or 1)) if streamed else 0
        train = self.data.train.to(self.device) if resident and not streamed else self.data.train
        self.loader = Loader(train, cfg.batch_size, shuffle=True, seed=cfg.seed, drop_last=True, rank=self.rank, world=self.world,
                             workers=workers, pin_memory=streamed and cuda)
        if len(self.loader) == 0:
            raise EdgeNASError(f"batch size {cfg.batch_size} x {self.world} rank(s) exceeds the {len(train)} training images")
        # batches as large as training's: at 32x32 an evaluation batch of 256 is bound by kernel launches on a GPU
        self.evaluator = Evaluator(self.data, calib_images=cfg.bn_calib_images, batch_size=max(256, cfg.batch_size), device=self.device,
                                   seed=cfg.seed, bf16=self.bf16, channels_last=self.channels_last, workers=workers,
                                   static_shapes=cfg.static_shapes and self.world == 1)  # in the supernet its BNs would sync ranks

        torch.manual_seed(cfg.seed)  # dropout is the only consumer of torch's global RNG; its state is checkpointed
        self.net = Supernet(self.space, self.data.num_classes, seed=cfg.seed).to(self.device)
        if cfg.init and not resume:  # a resumed run's checkpoint already holds the continued weights
            rec = load_init(self.net, cfg.init, self.data.info)
            self.cfg = cfg = replace(cfg, init_record=rec)
            widen(self.net, rec["elastic"], cfg.phases[0].choices(self.space))
            if self.progress and self.rank == 0:
                print(f"edgenas: starting from {cfg.init} ({rec['epochs']} epochs trained; classifier {rec['classifier']})", file=sys.stderr)
        if self.world > 1:
            sync_batchnorm(self.net)
        self.net.set_grad_checkpointing(cfg.grad_checkpointing)
        self.net.set_static_shapes(cfg.static_shapes)
        if self.channels_last:
            to: Any = self.net.to  # in place; torch 2.5's type stubs lack Module.to(memory_format=...)
            to(memory_format=torch.channels_last)
        # Sliced, only the largest network is compiled: it is the same graph in every step of every phase, while
        # each other subnet is a new graph (a recompilation of tens of seconds, for a few steps' use).  With
        # static shapes every subnet is the same graph (the arch is a tensor), so every subnet runs compiled.
        self.compiled = torch.compile(self.net, dynamic=True, **compile_options(cfg.compile)) if cfg.compile else None
        self.teacher: Any = None  # an external teacher's largest network: a fixed graph, compiled once when --compile is on
        if cfg.teacher:
            t = Supernet.load(cfg.teacher, self.space)
            if t.num_classes != self.data.num_classes:
                raise CheckpointError(f"teacher {cfg.teacher} has {t.num_classes} classes, the data {self.data.num_classes}")
            teacher = t.extract(self.space.max_arch()).eval().requires_grad_(False).to(self.device)
            if self.channels_last:
                to_teacher: Any = teacher.to
                to_teacher(memory_format=torch.channels_last)
            self.teacher = torch.compile(teacher, dynamic=True, **compile_options(cfg.compile)) if cfg.compile else teacher

        self.state: dict[str, Any] = {"phase": 0, "epoch": 0, "step": 0, "best_top1": -1.0}
        self.resolutions: list[int] = list(cfg.resolutions or self.space.resolutions)
        self.history: list[dict[str, Any]] = []  # one metrics row per finished epoch, stored in every checkpoint
        self._resume_opt = None
        if resume:
            ckpt = read_checkpoint(self.ckpt_path, self.space, map_location=str(self.device))
            self.net.load_state_dict(ckpt["state_dict"])
            self.state = {k: ckpt[k] for k in self.state}
            self._resume_opt = ckpt["optimizer"]
            torch.set_rng_state(ckpt["torch_rng"].cpu())
            if self.device.type == "cuda" and ckpt.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(ckpt["cuda_rng"].cpu(), self.device)
            self.history = list(ckpt.get("history") or [])

    def _check_out(self) -> None:
        if self.out.exists() and not self.out.is_dir():
            raise EdgeNASError(f"--out {self.out} is a file; give a directory")
        if not self.resume and self.ckpt_path.exists():
            raise EdgeNASError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")

    # ---- one step --------------------------------------------------------------------------
    def _step(self, phase, x_u8: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, r: int | None = None,
              archs: list | None = None) -> torch.Tensor:
        """One optimizer step; returns the mean loss as a device tensor (reading it would make the
        host wait for the device, so the training loop reads it a few times an epoch)."""
        cfg = self.cfg
        rng = step_rng(cfg.seed, self.state["step"])
        drawn = int(rng.choice(phase.resolutions(self.resolutions)))
        r = drawn if r is None else r
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        x = augment(x_u8, r, self.data.mean, self.data.std, generator=gen, flip=self.data.flip, translate=cfg.translate,
                    shard=(self.rank, self.world))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        archs = archs or sandwich(self.space, phase, rng, cfg.random_subnets, r)
        opt.zero_grad(set_to_none=True)
        total, soft = torch.zeros((), dtype=torch.float64, device=x.device), None
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if self.teacher is not None and len(archs) > 1:
                with torch.no_grad(), compile_errors(bool(cfg.compile)):
                    soft = self.teacher(x).float()
            for i, arch in enumerate(archs):
                self.net.activate(arch)
                model = self.compiled if self.compiled is not None and (cfg.static_shapes or arch == self.space.max_arch(arch.r)) else self.net
                with compile_errors(model is not self.net):  # the compiler runs at the first forward and backward
                    logits = model(x)
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
                    if i == 0 and soft is None:
                        soft = logits.detach().float()
                    elif (i > 0 or self.teacher is not None) and cfg.kd_weight > 0 and soft is not None:  # a teacher's: the largest too
                        loss = loss + cfg.kd_weight * kd_loss(logits, soft, cfg.kd_temperature)
                    loss.backward()
                total += loss.detach().double()
        for p in self.net.idle_parameters(archs):  # static shapes give them zero gradients: keep them out of the step
            p.grad = None
        if self.world > 1:
            all_reduce_grads(self.net, self.world)
        opt.step()
        self.state["step"] += 1
        return total / len(archs)

    def _optimizer(self, phase) -> torch.optim.Optimizer:
        decay = [p for p in self.net.parameters() if p.ndim > 1]
        no_decay = [p for p in self.net.parameters() if p.ndim <= 1]
        return torch.optim.SGD([{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                               lr=phase.lr, momentum=self.cfg.momentum, nesterov=True)

    def _set_lr(self, opt, phase, phase_step: int, phase_steps: int, first: bool) -> float:
        cfg = self.cfg
        peak = phase.lr * (cfg.batch_size * self.world / cfg.lr_base_size if cfg.lr_base_size else 1.0)
        warm = max(1, phase_steps // 10) if first else 0
        if phase_step < warm:
            lr = peak * (phase_step + 1) / warm
        else:
            lr = 0.5 * peak * (1 + math.cos(math.pi * (phase_step - warm) / max(1, phase_steps - warm)))
        for g in opt.param_groups:
            g["lr"] = lr
        return lr

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train (or continue) the schedule; returns the last epoch's metrics.

        Only rank 0 writes, under an exclusive lock on the run directory.  ``latest.pt`` is the
        commit point of an epoch: ``best.pt`` is written before it and the metrics files after
        it, from the history the checkpoint holds, so a kill anywhere leaves files that
        ``--resume`` brings to exactly what an uninterrupted run writes.
        """
        if self.rank != 0:
            self._apply_budget()
            return self._train()
        with run_directory(self.out, "training run", disposable=(".lock", "config.yaml")):
            self._check_out()
            self._apply_budget()
            self.cfg.dump(self.out / "config.yaml")
            self._write_metrics(self.history)
            return self._train()

    # ---- --time-budget ---------------------------------------------------------------------
    def probe(self, steps: int = 2, batch_size: int | None = None) -> dict[str, float]:
        """Seconds per one-network step, per sandwich step and per evaluation, and images/s.

        Runs real steps on the first training images, ``steps`` at each training resolution after
        a warm-up step of the same subnets (a shape's first step pays one-time costs, cuDNN plans
        and allocations, that training pays once per shape, not per step; on a GPU they are 100x
        a step), and times the second of two evaluations for the same reason.  Then puts weights,
        BN statistics, RNG state and step count back exactly as they were.
        """
        train = self.loader.data
        n = min(batch_size or self.cfg.batch_size, len(train))
        first = materialize(train.subset(np.arange(n)))
        x, y = first.images.to(self.device), first.labels.to(self.device)
        snapshot = {k: v.clone() for k, v in self.net.state_dict().items()}
        rng, step = torch.get_rng_state(), self.state["step"]
        cuda_rng = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        out: dict[str, float] = {}
        try:
            for key, phase in PROBE_PHASES.items():
                out[f"{key}_step_s"], out[f"{key}_nets"], out[f"{key}_macs"], out[f"{key}_first_step_s"] = self._time_steps(phase, x, y, steps)
                out[f"{key}_images_per_s"] = n * self.world / out[f"{key}_step_s"]
            if self.compiled is not None and not self.cfg.static_shapes:  # every subnet but the largest runs eagerly: the plan needs both speeds
                compiled, self.compiled = self.compiled, None
                try:
                    out["one_network_eager_step_s"] = self._time_steps(PROBE_PHASES["one_network"], x, y, steps)[0]
                finally:
                    self.compiled = compiled
            self._evaluate()
            t = time.perf_counter()
            self._evaluate()
            out["eval_s"] = time.perf_counter() - t
        finally:
            self.net.load_state_dict(snapshot)
            torch.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state(cuda_rng, self.device)
            self.state["step"] = step
        return out

    def _time_steps(self, phase, x: torch.Tensor, y: torch.Tensor, steps: int) -> tuple[float, float, float, float]:
        """(seconds per step, networks per step, MACs per step, seconds of the first step) of ``phase``'s sandwich,
        averaged over the resolutions; each resolution's subnets run a warm-up step first, timed apart: what
        a step of new layer shapes costs."""
        opt = torch.optim.SGD(self.net.parameters(), lr=0.0, momentum=0.9)
        took, first, nets, macs = 0.0, 0.0, 0, 0
        for r in self.resolutions:
            archs = sandwich(self.space, phase, step_rng(self.cfg.seed, r), self.cfg.random_subnets, r)
            n, m = work(self.space, archs)
            nets, macs = nets + n, macs + m
            self._sync()
            t = time.perf_counter()
            self._step(phase, x, y, opt, r, archs)  # warm-up: allocations, cuDNN plans, compilation
            self._sync()
            first += time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(steps):
                self._step(phase, x, y, opt, r, archs)
            self._sync()
            took += time.perf_counter() - t
        k = len(self.resolutions)
        return took / (steps * k), nets / k, macs / k, first / k

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _apply_budget(self) -> None:
        """With --time-budget on a fresh run: probe, then rescale every phase's epochs to fit."""
        cfg = self.cfg
        if cfg.time_budget is None or cfg.budget_plan is not None:
            return
        measured = self.probe()
        budget_s = cfg.time_budget * 60 - (time.perf_counter() - self.started)
        phases, plan = plan_epochs(cfg.phases, self.space, cfg.random_subnets, len(self.loader), measured, budget_s, self.resolutions)
        if self.world > 1:  # every rank must run the same schedule: rank 0's plan
            box = [(phases, plan)]
            dist.broadcast_object_list(box, src=0)
            phases, plan = box[0]
        self.cfg = replace(cfg, phases=phases, budget_plan=plan)
        if self.progress and self.rank == 0:
            print(f"edgenas: time budget {cfg.time_budget:g} min: one-network step {plan['one_network_step_s'] * 1e3:.1f} ms, "
                  f"sandwich step {plan['sandwich_step_s'] * 1e3:.1f} ms, evaluation {plan['eval_s']:.1f} s -> epochs "
                  + ", ".join(f"{p.name} {p.epochs}" for p in phases) + f" (planned {plan['planned_s'] / 60:.1f} min"
                  + (", over budget: every phase needs at least one epoch" if plan["over_budget"] else "") + ")"
                  + _fewer_images(plan, cfg.batch_size * self.world), file=sys.stderr)

    def _replan(self, pi: int, done: int = 0) -> list:
        """With --time-budget: phases ``pi:`` refitted into the time left, ``done`` epochs into phase
        ``pi`` (recorded in config.yaml)."""
        cfg = self.cfg
        if cfg.budget_plan is None:
            return cfg.phases
        phases = replan(cfg.phases, pi, cfg.budget_plan, self.history, self.space, done) if self.rank == 0 else cfg.phases
        if self.world > 1:  # only rank 0 holds the history
            box = [phases]
            dist.broadcast_object_list(box, src=0)
            phases = box[0]
        if phases != cfg.phases:
            self.cfg = replace(cfg, phases=phases)
            if self.rank == 0:
                self.cfg.dump(self.out / "config.yaml")
                if self.progress:
                    print(f"edgenas: time budget: {sum(map(epoch_seconds, self.history)) / 60:.1f} of "
                          f"{cfg.budget_plan['budget_s'] / 60:.1f} min spent; epochs from {phases[pi].name} on: "
                          + ", ".join(f"{p.name} {p.epochs}" for p in phases[pi:]), file=sys.stderr)
        return self.cfg.phases

    def _train(self) -> dict[str, Any]:
        cfg, phases = self.cfg, self.cfg.phases
        steps_per_epoch = len(self.loader)
        total_epochs = sum(p.epochs for p in phases)
        last: dict[str, Any] = dict(self.history[-1]) if self.history else {}
        mark: float | None = None  # when the previous epoch's evaluation ended in this process
        for pi in range(self.state["phase"], len(phases)):
            phase = phases[pi]
            start_epoch = self.state["epoch"] if pi == self.state["phase"] else 0
            if start_epoch >= phase.epochs:
                continue
            if start_epoch == 0 and pi > 0:  # a later phase starts: re-fitted (with --time-budget), the net widened
                phases = self._replan(pi)
                phase, total_epochs = phases[pi], sum(p.epochs for p in phases)
                widen(self.net, reached(phases[:pi], self.space, cfg.init_record), phase.choices(self.space))
            opt = self._optimizer(phase)
            if self._resume_opt is not None and start_epoch > 0:
                opt.load_state_dict(self._resume_opt)
            self._resume_opt = None
            epoch = start_epoch
            while epoch < phase.epochs:
                if epoch > 0 and refits_after(pi, epoch):  # its epochs so far measured what it costs
                    phases = self._replan(pi, done=epoch)
                    phase, total_epochs = phases[pi], sum(p.epochs for p in phases)
                epoch_index = sum(p.epochs for p in phases[:pi]) + epoch
                self.net.train()
                t0, losses = time.perf_counter(), []
                mark = t0 if mark is None else mark
                bar = progress_bar(self.loader.epoch(epoch_index), total=steps_per_epoch,
                           disable=not self.progress or self.rank != 0,
                           desc=f"{phase.name} {epoch + 1}/{phase.epochs} (epoch {epoch_index + 1}/{total_epochs})")
                for i, (x, y) in enumerate(bar):
                    lr = self._set_lr(opt, phase, epoch * steps_per_epoch + i, phase.epochs * steps_per_epoch, pi == 0)
                    try:
                        losses.append(self._step(phase, x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True), opt))
                    except torch.cuda.OutOfMemoryError:
                        raise EdgeNASError(f"out of GPU memory at batch size {cfg.batch_size}; lower --batch-size") from None
                    if i % 25 == 0:  # reading the loss waits for the device: not every step
                        bar.set_postfix(loss=f"{float(losses[-1]):.3f}", lr=f"{lr:.4f}")
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - t0
                images = steps_per_epoch * cfg.batch_size * self.world
                self.state.update(phase=pi, epoch=epoch + 1)
                last = {"phase": phase.name, "phase_index": pi, "epoch": epoch + 1, "epoch_index": epoch_index + 1,
                        "step": self.state["step"], "lr": lr, "loss": float(torch.stack(losses).sum()) / len(losses),
                        "images_per_s": images / seconds, "train_seconds": seconds}
                if self.world > 1:
                    check_in_sync(self.net)
                if self.rank == 0:
                    last.update(self._evaluate())
                    # the wall clock since the previous epoch's evaluation: its checkpoint writes too (what --time-budget spends)
                    ended = time.perf_counter()
                    last["wall_seconds"], mark = ended - mark, ended
                    best = last["top1_max"] > self.state["best_top1"]
                    if best:
                        self.state["best_top1"] = last["top1_max"]
                    self.history.append(last)
                    self._save(opt, last, best)
                    self._write_metrics(self.history)
                    self._report(last)
                if self.world > 1:
                    dist.barrier()
                epoch += 1
        return last

    def _evaluate(self) -> dict[str, float]:
        r = max(self.resolutions)
        t = time.perf_counter()
        largest, low = self.space.max_arch(r), smallest(self.space, self.cfg.phases[self.state["phase"]], r)
        top_max = self.evaluator.top1(self.net, largest)
        top_min = top_max if low == largest else self.evaluator.top1(self.net, low)  # the full phase: one network
        return {"top1_max": float(top_max), "top1_min": float(top_min), "eval_seconds": time.perf_counter() - t}

    def _save(self, opt, metrics: dict[str, Any], best: bool) -> None:
        cuda_rng = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        extra = dict(self.state, optimizer=opt.state_dict(), scaler=None, torch_rng=torch.get_rng_state(), cuda_rng=cuda_rng,
                     config=self.cfg.to_dict(), metrics=metrics, history=self.history, data=self.data.info)
        if best:  # before latest.pt: a kill in between replays this epoch and writes best.pt again, identically
            self.net.save(self.out / "best.pt", **extra)
        self.net.save(self.ckpt_path, **extra)

    def _report(self, row: dict[str, Any]) -> None:
        if self.progress:
            print(f"[{row['phase']} {row['epoch']}] loss {row['loss']:.3f}  top1 max {row['top1_max']:.3f} "
                  f"min {row['top1_min']:.3f}  {row['images_per_s']:.0f} images/s", file=sys.stderr)

    def _write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """metrics.jsonl / .csv from the history: derived files, rewritten whole (a few hundred rows at most)."""
        with atomic_path(self.out / "metrics.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with atomic_path(self.out / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
            if rows:  # columns: every key of every row (a run resumed by a newer edgenas may add some)
                w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
                w.writeheader()
                w.writerows(rows)
