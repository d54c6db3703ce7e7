"""``edgenas`` command line: thin wrappers over the library (contracts in README, 'CLI')."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from . import __version__
from .checks import Range
from .errors import EdgeNASError

__all__ = ["main"]


def _emit(args: argparse.Namespace, result: dict[str, Any], lines: Sequence[str]) -> None:
    """One JSON object on stdout with --json, else human-readable lines."""
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(lines))


def _space_and_arch(args: argparse.Namespace):
    from .space import get_space

    space = get_space(args.space)
    return space, space.parse_arch(args.arch)


def cmd_spaces(args: argparse.Namespace) -> int:
    from .space import get_space, list_spaces

    rows = []
    for name in list_spaces():
        sp = get_space(name)
        rows.append({
            "name": name, "digest": sp.digest(), "n_archs": sp.n_archs(),
            "resolutions": list(sp.resolutions), "ks": list(sp.ks_choices), "e": list(sp.e_choices),
            "d": list(sp.d_choices), "num_classes": sp.num_classes, "description": sp.description,
        })
    _emit(args, {"spaces": rows}, [f"{r['name']:<12} {r['n_archs']:.2e} archs  r={r['resolutions'][0]}..{r['resolutions'][-1]}  {r['description']}" for r in rows])
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from .cost import stats

    space, arch = _space_and_arch(args)
    st = stats(space, arch, args.num_classes)
    result = {**st.to_dict(), "space": space.name, "arch": arch.to_dict()}
    _emit(args, result, [f"params      {st.params:,}", f"macs        {st.macs:,}", f"resolution  {st.resolution}"])
    return 0


def _export_target(args: argparse.Namespace):
    """(space, arch, checkpoint, table) from --space/--arch or from a search run (--from RUN)."""
    from .space import get_space

    if not args.from_run:
        if not args.space or not args.arch:
            raise EdgeNASError("export needs --space and --arch, or --from RUN")
        space, arch = _space_and_arch(args)
        return space, arch, args.checkpoint, args.table
    from pathlib import Path

    from .io import read_yaml
    from .search import pick

    chosen = pick(args.from_run, args.pick, max_latency=args.max_latency, max_macs=args.max_macs, max_params=args.max_params,
                  min_top1=args.min_top1)
    cfg = read_yaml(Path(args.from_run) / "config.yaml", "search run config")
    space = get_space(cfg["space"])
    ckpt = args.checkpoint or cfg.get("checkpoint")
    if not ckpt and cfg.get("predictor"):
        from .search import AccuracyPredictor

        ckpt = AccuracyPredictor.load(cfg["predictor"], space).report.get("checkpoint")
    return space, space.arch(chosen["arch"]), ckpt, args.table or cfg.get("table")


def cmd_export(args: argparse.Namespace) -> int:
    from .deploy import export_subnet
    from .latency.backends import get_backend

    space, arch, checkpoint, table = _export_target(args)
    tables = {"fp32": table, "int8": args.int8_table} if args.check else {}
    backend = get_backend(args.device, args.threads, args.runner, args.provider, args.runner_timeout) if args.check else None
    r = export_subnet(space, arch, args.out, checkpoint=checkpoint, data=args.data, num_classes=args.num_classes, seed=args.seed,
                      simplify=args.simplify, int8=args.int8, calib_images=args.calib_images, ort_format=args.ort,
                      mobile=args.mobile_report, check_tables=tables, backend=backend)
    lines = [f"wrote {r['path']} (opset {r['opset']}, {r['size_bytes'] / 1e6:.2f} MB)", f"max |ORT - PyTorch| = {r['max_abs_diff']:.3g}",
             f"params {r['params']:,}  macs {r['macs']:,}  resolution {arch.r}"]
    if "top1_fp32" in r:
        lines.append(f"top1 fp32 {r['top1_fp32']:.4f} on {r['n']} held-out images")
    if "int8_path" in r:
        lines.append(f"wrote {r['int8_path']} (int8 QDQ, {r['int8_size_bytes'] / 1e6:.2f} MB)" + (
            f"; top1 int8 {r['top1_int8']:.4f} ({100 * (r['top1_int8'] - r['top1_fp32']):+.2f} points)" if "top1_int8" in r else ""))
    lines += [f"wrote {o['ort']} and {o['required_operators']}" for o in r.get("ort", [])]
    lines += [f"{ep}: {m['supported_nodes']}/{m['nodes']} nodes, {m['partitions']} partition(s), {m['suitability']}"
              + (f", unsupported {m['unsupported_ops']}" if m["unsupported_ops"] else "") for ep, m in r.get("mobile", {}).items() if "nodes" in m]
    lines += [_check_line(c) for c in r.get("check", [])]
    _emit(args, r, lines)
    return 0


def _check_line(c: dict) -> str:
    line = (f"{c['model']}: measured {c['measured_ms']:.3f} ms, predicted {c['predicted_ms']:.3f} ms ({100 * c['error']:+.1f}%), "
            f"{c['size_bytes'] / 1e6:.2f} MB")
    return line + (f", top1 {c['top1']:.4f}" if "top1" in c else "")


def cmd_deploy_check(args: argparse.Namespace) -> int:
    from .deploy import deploy_check
    from .latency.backends import get_backend
    from .latency.table import LatencyTable

    backend = get_backend(args.device, args.threads, args.runner, args.provider, args.runner_timeout)
    c = deploy_check(args.model, LatencyTable.load(args.table), backend, args.data)
    _emit(args, c, [_check_line(c)])
    return 0


def _protocol(args: argparse.Namespace) -> dict[str, int]:
    return {k: getattr(args, k) for k in ("warmup", "rounds", "runs") if getattr(args, k) is not None}


def cmd_profile(args: argparse.Namespace) -> int:
    from .latency.backends import get_backend
    from .latency.profile import profile
    from .space import get_space

    space = get_space(args.space)
    backend = get_backend(args.device, args.threads, args.runner, args.provider, args.runner_timeout)
    table, seconds = profile(space, args.resolution or space.resolutions, backend, args.out, num_classes=args.num_classes,
                             precision=args.precision, protocol=_protocol(args), calibrate=args.calibrate, seed=args.seed)
    cal = table.calibration or {}
    result = {"path": str(args.out), "entries": len(table.entries), "seconds": round(seconds, 2), "space": space.name,
              "resolutions": list(table.resolutions), "precision": table.meta["precision"], "provider": table.meta["provider"],
              "threads": table.meta["threads"], "overhead_ms": table.overhead_ms,
              "calibration": {k: v for k, v in cal.items() if k != "points"}}
    _emit(args, result, [f"wrote {args.out}: {len(table.entries)} entries in {seconds:.1f} s",
                         f"per-call overhead {table.overhead_ms:.4f} ms; calibration {result['calibration'] or 'none'}"])
    return 0


def cmd_latency(args: argparse.Namespace) -> int:
    from .latency.table import LatencyTable

    space, arch = _space_and_arch(args)
    table = LatencyTable.load(args.table, space)
    ms, raw = table.predict(arch), table.predict(arch, calibrated=False)
    result = {"latency_ms": ms, "uncalibrated_ms": raw, "resolution": arch.r, "space": space.name,
              "precision": table.meta["precision"], "provider": table.meta["provider"], "threads": table.meta["threads"],
              "cpu_model": table.meta["cpu_model"], "arch": arch.to_dict()}
    _emit(args, result, [f"{ms:.3f} ms  ({table.meta['cpu_model']}, {table.meta['provider']}, {table.meta['threads']} thread(s), "
                         f"{table.meta['precision']}, r={arch.r})"])
    return 0


def cmd_latency_validate(args: argparse.Namespace) -> int:
    from .latency.backends import get_backend
    from .latency.table import LatencyTable
    from .latency.validate import validate

    table = LatencyTable.load(args.table)
    meta = table.meta
    device = "remote" if meta["device"].get("device") == "remote" else meta["provider"]
    if device == "remote" and not args.runner:  # a table records its runner as text; it never chooses what runs
        raise EdgeNASError(f"{args.table} was measured on a remote device (runner recorded: {str(meta['device'].get('runner'))!r}); "
                           "give --runner 'COMMAND' to reach it")
    backend = get_backend(device, meta["threads"], args.runner if device == "remote" else None, meta["provider"],
                          args.runner_timeout)
    here = backend.info()["cpu_model"]
    if here != meta["cpu_model"]:
        print(f"edgenas: warning: table measured on '{meta['cpu_model']}', validating on '{here}'", file=sys.stderr)
    prefix = args.out or str(args.table).removesuffix(".json") + ".validation"
    rep = validate(table, backend, args.samples, prefix, seed=args.seed, passes=1 if args.no_noise_floor else 2)
    o, nf = rep["overall"], rep["noise_floor"]
    result = {k: rep[k] for k in ("overall", "uncalibrated", "by_resolution", "noise_floor", "report", "plot", "samples")}
    lines = [f"{o['n']} networks: {o['within_5pct']:.0%} within ±5%, {o['within_10pct']:.0%} within ±10%, "
             f"MAPE {o['mape']:.1%}, Spearman {o['spearman']:.3f}"]
    if nf:
        lines.append(f"noise floor (same networks measured twice): {nf['within_5pct']:.0%} within ±5%, MAPE {nf['mape']:.1%}")
    lines.append(f"report {rep['report']}, plot {rep['plot']}")
    _emit(args, result, lines)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .train import Trainer, load_config

    saved = Path(args.out) / "config.yaml"
    resume = args.resume and saved.is_file()
    if args.resume and not resume and not (args.space or args.config):
        raise EdgeNASError(f"--resume: {args.out} holds no run yet; run the original command (it may keep --resume)")
    if resume:
        cfg = load_config(saved, {"device": args.device})
    else:  # a fresh run, or --resume of one killed before it wrote anything: start it from the flags
        overrides = {k: getattr(args, k) for k in ("space", "data", "val_data", "val_fraction", "val_per_class", "split", "limit", "seed",
                                                   "batch_size", "random_subnets", "teacher", "device", "epoch_scale", "bn_calib_images",
                                                   "time_budget")}
        overrides["compile"] = args.compile or None
        cfg = load_config(args.config, overrides)
    summary = Trainer(cfg, args.out, resume=resume).run()
    result = {"out": str(args.out), "checkpoint": str(Path(args.out) / "latest.pt"), "best": str(Path(args.out) / "best.pt"), **summary}
    _emit(args, result, [f"trained {cfg.space} on {cfg.data}: top1 max {summary.get('top1_max', float('nan')):.3f}, "
                         f"min {summary.get('top1_min', float('nan')):.3f}; checkpoints in {args.out}"])
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_checkpoint

    space, arch = _space_and_arch(args)
    r = evaluate_checkpoint(space, args.checkpoint, arch, args.data, calib_data=args.calib_data, calib_images=args.calib_images,
                            recalibrate=not args.no_recalibrate, device=args.device)
    _emit(args, r.to_dict(), [str(r)])
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .search import SearchRun, load_search_config

    saved = Path(args.out) / "config.yaml"
    resume = args.resume and saved.is_file()
    if args.resume and not resume and not (args.space or args.config):
        raise EdgeNASError(f"--resume: {args.out} holds no search run yet; run the original command (it may keep --resume)")
    if resume:
        cfg = load_search_config(saved, {}, saved_run=True)
    else:  # a fresh run, or --resume of one killed before it wrote anything: start it from the flags
        keys = ("space", "objectives", "algorithm", "pop_size", "generations", "seed", "table", "checkpoint", "data", "predictor",
                "num_classes", "max_latency", "max_macs", "max_params", "min_top1", "resolutions", "device")
        overrides = {k: getattr(args, k) for k in keys}
        if args.no_baseline:
            overrides["baseline"] = False
        cfg = load_search_config(args.config, overrides)
    summary = SearchRun(cfg, args.out, resume=resume).run()
    lines = [f"{summary['evaluations']} archs evaluated in {summary['seconds']:.1f} s; front of {summary['front_size']} in {summary['front']}",
             f"hypervolume {summary['hypervolume']:.4f}" + (f" (random search, same budget: {summary['baseline_hypervolume']:.4f})"
                                                             if summary["baseline_hypervolume"] is not None else ""),
             f"plots: {summary['plot_png']}, {summary['plot_html']}"]
    _emit(args, summary, lines)
    return 0


def cmd_pick(args: argparse.Namespace) -> int:
    from .search import pick

    chosen = pick(args.run, "knee" if args.knee else "best", max_latency=args.max_latency, max_macs=args.max_macs,
                  max_params=args.max_params, min_top1=args.min_top1)
    if args.out:
        from .io import write_json

        write_json(args.out, chosen["arch"])
    values = "  ".join(f"{k} {v:.4g}" for k, v in chosen.items() if isinstance(v, float))
    _emit(args, chosen, [json.dumps(chosen["arch"]), values] + ([f"wrote {args.out} (use --arch @{args.out})"] if args.out else []))
    return 0


def cmd_predictor(args: argparse.Namespace) -> int:
    from .io import check_writable
    from .search.predictor import fit_predictor
    from .space import get_space

    space = get_space(args.space)
    check_writable(args.out)
    pred = fit_predictor(space, args.checkpoint, args.samples, data=args.data, holdout=args.holdout, seed=args.seed,
                         resolutions=args.resolution, calib_images=args.calib_images, device=args.device)
    pred.save(args.out)
    rep = pred.report
    h = rep["holdout"]
    _emit(args, {"path": args.out, **rep}, [f"{rep['model']} on {rep['n_train'] + rep['n_holdout']} archs: held-out Kendall tau "
                                            f"{h['kendall_tau']:.3f}, Spearman {h['spearman']:.3f}, RMSE {h['rmse']:.4f}; wrote {args.out}"])
    return 0

def cmd_quickstart(args: argparse.Namespace) -> int:
    from .quickstart import quickstart, report
    from .search import parse_limit

    budget = parse_limit(args.max_latency, "latency") if args.max_latency is not None else None
    result = quickstart(args.out, epoch_scale=args.epoch_scale, max_latency=budget, seed=args.seed)
    _emit(args, result, [report(result)])
    return 0


SEED = Range(0, 2**31 - 1).arg("--seed")
CLASSES = Range(1, 100_000).arg("--num-classes")
IMAGES = Range(1, 10_000_000).arg("--calib-images")
THREADS = Range(1, 1024).arg("--threads")


def _timeout_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runner-timeout", type=Range(1, 86_400, integer=False).arg("--runner-timeout"), default=600.0,
                   help="seconds one runner call may take before it and its children are stopped (default 600)")


def _device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu (default), another ORT provider, or remote")
    p.add_argument("--threads", type=THREADS, default=1)
    p.add_argument("--runner", help="with --device remote: command that runs deploy/agent.py on the device")
    p.add_argument("--provider", default="cpu", help="with --device remote: provider on the device")
    _timeout_arg(p)


ARCH_HELP = "inline JSON {\"ks\":[...],\"e\":[...],\"d\":[...],\"r\":R}, @file.json, max, min or random:SEED"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgenas", description="Hardware-aware multi-objective NAS for edge devices.")
    parser.add_argument("--version", action="version", version=f"edgenas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        return p

    add("spaces", cmd_spaces, "list the registered search spaces")

    p = add("quickstart", cmd_quickstart, "the whole pipeline on the offline default (tiny space, digits, this CPU)")
    p.add_argument("--out", default="edgenas-quickstart", help="working directory (re-running skips finished steps)")
    p.add_argument("--max-latency", help="latency budget for the pick, e.g. 0.05ms or 50us (default: the front's median)")
    p.add_argument("--epoch-scale", type=Range(0.001, 1000, integer=False).arg("--epoch-scale"), default=2.5,
                   help="scale the training schedule")
    p.add_argument("--seed", type=SEED, default=0)

    p = add("stats", cmd_stats, "parameters and MACs of a subnet")
    p.add_argument("--space", required=True)
    p.add_argument("--arch", required=True, help=ARCH_HELP)
    p.add_argument("--num-classes", type=CLASSES, help="classifier size (default: the space's)")

    p = add("export", cmd_export, "extract a subnet, export it to ONNX and check ORT against PyTorch")
    p.add_argument("--space")
    p.add_argument("--arch", help=ARCH_HELP)
    p.add_argument("--from", dest="from_run", metavar="RUN", help="export the model picked from a search run")
    p.add_argument("--pick", default="best", choices=["best", "knee"], help="with --from: which front member")
    for name in ("--max-latency", "--max-macs", "--max-params", "--min-top1"):
        p.add_argument(name, help="with --from: budget for the pick")
    p.add_argument("--checkpoint", help="supernet checkpoint (default: seeded random weights)")
    p.add_argument("--data", help="evaluation/calibration data (default: the checkpoint's training data)")
    p.add_argument("--num-classes", type=CLASSES, help="classifier size without a checkpoint (default: the space's)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the random weights without a checkpoint")
    p.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim (parity re-checked)")
    p.add_argument("--int8", action="store_true", help="also write MODEL.int8.onnx (static QDQ, calibrated on training images)")
    p.add_argument("--calib-images", type=IMAGES, default=256, help="training images for int8 calibration")
    p.add_argument("--ort", action="store_true", help="also convert to ORT format for ONNX Runtime Mobile")
    p.add_argument("--mobile-report", action="store_true", help="report which ops NNAPI / CoreML would take")
    p.add_argument("--check", action="store_true", help="measure the exported model(s) on the device (deploy check)")
    p.add_argument("--table", help="latency table for --check (with --from: the run's table by default)")
    p.add_argument("--int8-table", help="int8 latency table to check the int8 model against")
    _device_args(p)
    p.add_argument("--out", required=True, help="output .onnx path")

    p = add("deploy-check", cmd_deploy_check, "measure an exported model on a device vs its predicted latency")
    p.add_argument("model", help="ONNX model exported by edgenas")
    p.add_argument("--table", required=True, help="latency table of the device (same precision as the model)")
    p.add_argument("--data", help="labelled data for top-1: the training data (its held-out split) or other data (all of it)")
    _device_args(p)

    p = add("profile", cmd_profile, "measure every block of a space on a device and write a latency table")
    p.add_argument("--device", required=True, help="cpu, another ONNX Runtime provider (cuda, xnnpack, ...) or remote")
    p.add_argument("--threads", type=THREADS, default=1, help="intra-op threads (default 1)")
    p.add_argument("--runner", help="with --device remote: command that runs deploy/agent.py on the device")
    p.add_argument("--provider", default="cpu", help="with --device remote: the provider to use there (default cpu)")
    _timeout_arg(p)
    p.add_argument("--space", required=True)
    p.add_argument("--resolution", type=Range(1, 4096).arg("--resolution"), nargs="+", help="input resolutions (default: all of the space)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8"])
    p.add_argument("--num-classes", type=CLASSES, help="classifier size (default: the space's)")
    p.add_argument("--calibrate", type=Range(0, 10_000).arg("--calibrate"), default=30,
                   help="whole networks measured end to end to calibrate (0: none)")
    p.add_argument("--seed", type=SEED, default=0)
    for name, lo, help in (("--warmup", 0, "warm-up runs"), ("--rounds", 1, "interleaved rounds"), ("--runs", 1, "timed runs per round")):
        p.add_argument(name, type=Range(lo, 100_000).arg(name), help=f"{help} (protocol default if omitted)")
    p.add_argument("--out", required=True, help="table path (.json); an unfinished one is resumed")

    p = add("latency", cmd_latency, "predicted latency of a subnet from a table (or: latency validate ...)")
    p.add_argument("--table", required=True)
    p.add_argument("--space", required=True)
    p.add_argument("--arch", required=True, help=ARCH_HELP)

    p = add("latency-validate", cmd_latency_validate, "measure random subnets end to end and compare with a table")
    p.add_argument("--table", required=True)
    p.add_argument("--samples", type=Range(1, 10_000).arg("--samples"), default=100, help="random subnets to measure")
    p.add_argument("--seed", type=SEED, default=12345)
    p.add_argument("--runner", help="remote tables: the command that runs deploy/agent.py on the device (required)")
    _timeout_arg(p)
    p.add_argument("--no-noise-floor", action="store_true", help="measure once (skip the repeat pass)")
    p.add_argument("--out", help="report prefix (default: TABLE.validation -> .json and .png)")
    p = add("train", cmd_train, "train a supernet with progressive shrinking (same command under torchrun for multi-GPU)")
    p.add_argument("--space", help="search space (or 'space:' in --config)")
    p.add_argument("--data", help="digits (default), cifar10, cifar100 or imagefolder:PATH (folder or .zip)")
    p.add_argument("--val-data", help="separate validation data (default: split --data)")
    p.add_argument("--config", help="YAML training config; flags override it")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from latest.pt")
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--val-per-class", type=int, help="hold out this many images per class")
    p.add_argument("--split", choices=["random", "last"], help="which images per class are held out")
    p.add_argument("--limit", type=int, help="use at most this many training images")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--random-subnets", type=int, help="random subnets per step besides largest and smallest")
    p.add_argument("--teacher", help="supernet checkpoint whose largest subnet distils (default: in-place)")
    p.add_argument("--epoch-scale", type=float, help="multiply the default schedule's epochs")
    p.add_argument("--time-budget", type=float, metavar="MIN",
                   help="minutes for the whole schedule: step times are probed first and every phase's epochs scaled to fit")
    p.add_argument("--bn-calib-images", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1")
    p.add_argument("--compile", action="store_true", help="torch.compile the supernet")

    p = add("eval", cmd_eval, "top-1 of a subnet after BN recalibration")
    p.add_argument("--space", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--arch", required=True, help=ARCH_HELP)
    p.add_argument("--data", required=True, help="training data (its held-out split is used) or other labelled data")
    p.add_argument("--calib-data", help="training images for BN recalibration (default: the checkpoint's training split)")
    p.add_argument("--calib-images", type=IMAGES, default=1000)
    p.add_argument("--no-recalibrate", action="store_true", help="use the BN statistics stored in the supernet")
    p.add_argument("--device", default="cpu")
    p = add("search", cmd_search, "multi-objective search (NSGA-II by default) over a space")
    p.add_argument("--config", help="search recipe (YAML, see search/); flags override it")
    p.add_argument("--space")
    p.add_argument("--objectives", help="comma-separated: top1, latency, macs, params (default top1,latency)")
    p.add_argument("--algorithm", help="nsga2 (default), nsga3, agemoea, random, reinforce")
    p.add_argument("--pop-size", type=int)
    p.add_argument("--generations", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--table", help="latency table (for the latency objective or --max-latency)")
    p.add_argument("--checkpoint", help="supernet checkpoint: top1 from the supernet (with --data)")
    p.add_argument("--data", help="the data the supernet was trained on")
    p.add_argument("--predictor", help="accuracy predictor (edgenas predictor): fast top1")
    p.add_argument("--num-classes", type=int)
    for name in ("--max-latency", "--max-macs", "--max-params", "--min-top1"):
        p.add_argument(name, help="constraint, e.g. 5ms, 300M, 3.5M, 0.8")
    p.add_argument("--resolutions", type=int, nargs="+", help="resolutions to search (default: the table's, else all)")
    p.add_argument("--no-baseline", action="store_true", help="skip the random-search baseline run")
    p.add_argument("--device", help="device for supernet evaluation (default cpu)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")

    p = add("pick", cmd_pick, "choose a model from a search run's front")
    p.add_argument("run", help="search run directory")
    for name in ("--max-latency", "--max-macs", "--max-params", "--min-top1"):
        p.add_argument(name)
    p.add_argument("--knee", action="store_true", help="the knee point instead of the most accurate")
    p.add_argument("--out", help="write the chosen arch (OFA JSON) here")

    p = add("predictor", cmd_predictor, "fit an accuracy predictor on supernet evaluations")
    p.add_argument("--space", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", help="the data the checkpoint was trained on (default: as recorded in it)")
    p.add_argument("--samples", type=Range(10, 100_000).arg("--samples"), default=300, help="archs evaluated with the supernet")
    p.add_argument("--holdout", type=Range(0.05, 0.9, integer=False).arg("--holdout"), default=0.2)
    p.add_argument("--resolution", type=Range(1, 4096).arg("--resolution"), nargs="+", help="sample archs at these resolutions only")
    p.add_argument("--calib-images", type=IMAGES, default=500)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="predictor file (.json)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] in (["latency", "validate"], ["deploy", "check"]):  # two-word commands
        argv = [f"{argv[0]}-{argv[1]}", *argv[2:]]
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except EdgeNASError as exc:
        print(f"edgenas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgenas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
