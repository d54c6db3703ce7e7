"""One function per command: turn flags into a library job's arguments and print its report."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from .. import jobs
from ..errors import EdgeNASError
from ..pretrained import BUILTIN
from ..search.config import LIMITS as SEARCH_LIMITS
from ..space import SearchSpace, get_space
from .args import parse_arch

__all__ = ["COMMANDS"]

LIMITS = tuple(SEARCH_LIMITS)  # max_latency, max_macs, max_params, min_top1
TRAIN_FLAGS = ("space", "data", "val_data", "val_fraction", "val_per_class", "split", "limit", "seed", "batch_size", "lr_base_size",
               "random_subnets", "teacher", "init", "device", "epoch_scale", "bn_calib_images", "time_budget", "memory_budget", "image_size", "workers")
SEARCH_FLAGS = ("space", "objectives", "algorithm", "pop_size", "generations", "sampling", "seed", "table", "checkpoint", "data", "predictor",
                "num_classes", *LIMITS, "resolutions", "device", "precisions", "int8_table", "int8_drop")


def _print(args: argparse.Namespace, report: jobs.Report) -> int:
    """One JSON object on stdout with --json, else the human rendering."""
    print(json.dumps(report.to_dict()) if args.json else str(report))
    return 0


def _backend(args: argparse.Namespace):
    from ..latency.backends import get_backend

    return get_backend(args.device, args.threads, args.runner, args.provider, args.runner_timeout)


def _flags(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    return {k: getattr(args, k) for k in names}


def _space(args: argparse.Namespace) -> SearchSpace:
    """--space, else the space the --checkpoint was trained in (it records its definition)."""
    if args.space:
        return get_space(args.space)
    if not args.checkpoint:
        raise EdgeNASError(f"{args.command_name} needs --space, or a --checkpoint (whose space it takes)")
    from ..supernet.network import checkpoint_space

    return checkpoint_space(args.checkpoint)


def spaces(args: argparse.Namespace) -> int:
    return _print(args, jobs.show_space(get_space(args.show)) if args.show else jobs.spaces())


def stats(args: argparse.Namespace) -> int:
    space = get_space(args.space)
    return _print(args, jobs.stats(space, parse_arch(space, args.arch), args.num_classes))


def export(args: argparse.Namespace) -> int:
    space = _space(args) if not args.from_run and (args.space or args.checkpoint) else None
    arch = parse_arch(space, args.arch) if space is not None and args.arch else None
    return _print(args, jobs.export(
        args.out, space=space, arch=arch, run=args.from_run, strategy=args.pick, limits=_flags(args, LIMITS), checkpoint=args.checkpoint,
        table=args.table, int8_table=args.int8_table, int8=args.int8, check=args.check, backend=_backend(args) if args.check else None,
        data=args.data, num_classes=args.num_classes, seed=args.seed, simplify=args.simplify, calib_images=args.calib_images,
        int8_weight_bits=args.int8_weight_bits, ort_format=args.ort, mobile=args.mobile_report))


def deploy_check(args: argparse.Namespace) -> int:
    return _print(args, jobs.deploy_check(args.model, args.table, _backend(args), args.data))


def profile(args: argparse.Namespace) -> int:
    protocol = {k: getattr(args, k) for k in ("warmup", "rounds", "runs", "statistic") if getattr(args, k) is not None}
    return _print(args, jobs.profile(get_space(args.space), args.out, _backend(args), resolutions=args.resolution,
                                     num_classes=args.num_classes, precision=args.precision, protocol=protocol,
                                     calibrate=args.calibrate, seed=args.seed))


def latency(args: argparse.Namespace) -> int:
    if args.table is None or args.arch is None:
        raise EdgeNASError("latency needs --table and --arch (or: edgenas latency validate --table T)")
    if args.space is None:  # the table's
        from ..latency.table import LatencyTable

        space = LatencyTable.read(args.table).space
    else:
        space = get_space(args.space)
    return _print(args, jobs.latency(args.table, space, lambda resolutions: parse_arch(space, args.arch, resolutions)))


def latency_validate(args: argparse.Namespace) -> int:
    return _print(args, jobs.latency_validate(args.table, args.samples, runner=args.runner, runner_timeout=args.runner_timeout,
                                              out=args.out, seed=args.seed, passes=1 if args.no_noise_floor else 2))


def latency_recalibrate(args: argparse.Namespace) -> int:
    return _print(args, jobs.latency_recalibrate(args.table, out=args.out, runner=args.runner, runner_timeout=args.runner_timeout))


def train(args: argparse.Namespace) -> int:
    overrides = {**_flags(args, TRAIN_FLAGS), "compile": args.compile or None, "stream": args.stream or None,
                 "grad_checkpointing": args.grad_checkpointing or None, "cudnn_benchmark": args.cudnn_benchmark or None,
                 "static_shapes": args.static_shapes or None,
                 "bf16": False if args.fp32 else None}
    return _print(args, jobs.train(args.out, config=args.config, overrides=overrides, resume=args.resume))


def evaluate(args: argparse.Namespace) -> int:
    space = _space(args)
    return _print(args, jobs.evaluate(space, args.checkpoint, parse_arch(space, args.arch), args.data, calib_data=args.calib_data,
                                      calib_images=args.calib_images, recalibrate=not args.no_recalibrate, device=args.device))


def search(args: argparse.Namespace) -> int:
    overrides = {**_flags(args, SEARCH_FLAGS), "baseline": False if args.no_baseline else None, "static_shapes": args.static_shapes or None}
    return _print(args, jobs.search(args.out, config=args.config, overrides=overrides, resume=args.resume))


def pick(args: argparse.Namespace) -> int:
    return _print(args, jobs.pick(args.run, knee=args.knee, out=args.out, **_flags(args, LIMITS)))


def predictor(args: argparse.Namespace) -> int:
    return _print(args, jobs.predictor(_space(args), args.checkpoint, args.samples, args.out, data=args.data,
                                       holdout=args.holdout, seed=args.seed, resolutions=args.resolution,
                                       stratified=args.sampling == "stratified", calib_images=args.calib_images, device=args.device,
                                       time_limit=None if args.time_limit is None else args.time_limit * 60,
                                       static_shapes=args.static_shapes))


def quickstart(args: argparse.Namespace) -> int:
    if args.cifar10 and args.checkpoint not in (None, "cifar10"):
        raise EdgeNASError("quickstart: --cifar10 is --checkpoint cifar10; give one of them")
    checkpoint = "cifar10" if args.cifar10 else args.checkpoint
    if checkpoint is None and (args.predictor or args.data):
        raise EdgeNASError("quickstart: --predictor and --data go with --checkpoint (without it the quickstart trains on digits)")
    out = args.out or ("edgenas-quickstart" if checkpoint is None else
                       f"edgenas-quickstart-{checkpoint if checkpoint in BUILTIN else 'checkpoint'}")
    return _print(args, jobs.quickstart(out, max_latency=args.max_latency, epoch_scale=args.epoch_scale, seed=args.seed,
                                        calibrate=args.calibrate, checkpoint=checkpoint, predictor=args.predictor, data=args.data,
                                        predictor_samples=args.predictor_samples, backend=_backend(args)))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "spaces": spaces, "stats": stats, "export": export, "deploy check": deploy_check, "profile": profile, "latency": latency,
    "latency validate": latency_validate, "latency recalibrate": latency_recalibrate, "train": train, "eval": evaluate,
    "search": search, "pick": pick, "predictor": predictor, "quickstart": quickstart,
}
