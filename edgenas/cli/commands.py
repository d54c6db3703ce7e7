"""One function per command: parse nothing, compute nothing; call the library, print its result."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import EdgeNASError
from .args import parse_arch

__all__ = ["COMMANDS"]


def _emit(args: argparse.Namespace, result: dict[str, Any], lines: Sequence[str]) -> None:
    """One JSON object on stdout with --json, else human-readable lines."""
    print(json.dumps(result) if args.json else "\n".join(lines))


def _backend(args: argparse.Namespace):
    from ..latency.backends import get_backend

    return get_backend(args.device, args.threads, args.runner, args.provider, args.runner_timeout)


def spaces(args: argparse.Namespace) -> int:
    from ..space.registry import space_summaries

    rows = space_summaries()
    _emit(args, {"spaces": rows}, [f"{r['name']:<12} {r['n_archs']:.2e} archs  r={r['resolutions'][0]}..{r['resolutions'][-1]}  "
                                   f"{r['description']}" for r in rows])
    return 0


def stats(args: argparse.Namespace) -> int:
    from ..cost import stats as cost_stats
    from ..space import get_space

    space = get_space(args.space)
    arch = parse_arch(space, args.arch)
    st = cost_stats(space, arch, args.num_classes)
    _emit(args, {**st.to_dict(), "space": space.name, "arch": arch.to_dict()},
          [f"params      {st.params:,}", f"macs        {st.macs:,}", f"resolution  {st.resolution}"])
    return 0


def export(args: argparse.Namespace) -> int:
    from ..deploy import export_subnet, run_target
    from ..space import get_space

    if args.from_run:
        limits = {k: getattr(args, k) for k in ("max_latency", "max_macs", "max_params", "min_top1")}
        space, arch, checkpoint, table, precision = run_target(args.from_run, args.pick, args.checkpoint, args.table, **limits)
    elif args.space and args.arch:
        space = get_space(args.space)
        arch, checkpoint, table, precision = parse_arch(space, args.arch), args.checkpoint, args.table, "fp32"
    else:
        raise EdgeNASError("export needs --space and --arch, or --from RUN")
    int8 = args.int8 or precision == "int8"  # a run that chose int8 exports it (beside the fp32 model it is made from)
    tables = {"fp32": table, "int8": args.int8_table} if precision == "fp32" else {"fp32": None, "int8": args.int8_table or table}
    r = export_subnet(space, arch, args.out, checkpoint=checkpoint, data=args.data, num_classes=args.num_classes, seed=args.seed,
                      simplify=args.simplify, int8=int8, calib_images=args.calib_images, ort_format=args.ort,
                      mobile=args.mobile_report, check_tables=tables if args.check else {},
                      backend=_backend(args) if args.check else None)
    r["precision"] = precision
    lines = [f"wrote {r['path']} (opset {r['opset']}, {r['size_bytes'] / 1e6:.2f} MB)", f"max |ORT - PyTorch| = {r['max_abs_diff']:.3g}",
             f"params {r['params']:,}  macs {r['macs']:,}  resolution {arch.r}"]
    if "top1_fp32" in r:
        lines.append(f"top1 fp32 {r['top1_fp32']:.4f} on {r['n']} held-out images")
    if "int8_path" in r:
        lines.append(f"wrote {r['int8_path']} (int8 QDQ, {r['int8_size_bytes'] / 1e6:.2f} MB, {r['int8_speedup']:.2f}x fp32's speed here)" + (
            f"; top1 int8 {r['top1_int8']:.4f} ({100 * (r['top1_int8'] - r['top1_fp32']):+.2f} points)" if "top1_int8" in r else ""))
    lines += [f"wrote {o['ort']} and {o['required_operators']}" for o in r.get("ort", [])]
    lines += [f"{ep}: {m['supported_nodes']}/{m['nodes']} nodes, {m['partitions']} partition(s), {m['suitability']}"
              + (f", unsupported {m['unsupported_ops']}" if m["unsupported_ops"] else "") for ep, m in r.get("mobile", {}).items()
              if "nodes" in m]
    lines += [_check_line(c) for c in r.get("check", [])]
    _emit(args, r, lines)
    return 0


def _check_line(c: dict) -> str:
    line = (f"{c['model']}: measured {c['measured_ms']:.3f} ms, predicted {c['predicted_ms']:.3f} ms ({100 * c['error']:+.1f}%), "
            f"{c['size_bytes'] / 1e6:.2f} MB")
    line += f", top1 {c['top1']:.4f}" if "top1" in c else ""
    return line + (f"; int8 {c['int8_speedup']:.2f}x the fp32 model's speed" if "int8_speedup" in c else "")


def deploy_check(args: argparse.Namespace) -> int:
    from ..deploy import deploy_check as check
    from ..latency.table import LatencyTable

    c = check(args.model, LatencyTable.load(args.table), _backend(args), args.data)
    _emit(args, c, [_check_line(c)])
    return 0


def profile(args: argparse.Namespace) -> int:
    from ..latency.profile import profile as measure
    from ..latency.profile import profile_summary
    from ..space import get_space

    space = get_space(args.space)
    protocol = {k: getattr(args, k) for k in ("warmup", "rounds", "runs") if getattr(args, k) is not None}
    table, seconds = measure(space, args.resolution or space.resolutions, _backend(args), args.out, num_classes=args.num_classes,
                             precision=args.precision, protocol=protocol, calibrate=args.calibrate, seed=args.seed)
    r = profile_summary(table, args.out, seconds)
    _emit(args, r, [f"wrote {args.out}: {r['entries']} entries in {seconds:.1f} s",
                    f"per-call overhead {r['overhead_ms']:.4f} ms; calibration {r['calibration'] or 'none'}"])
    return 0


def latency(args: argparse.Namespace) -> int:
    from ..latency.table import LatencyTable
    from ..space import get_space

    if args.table is None or args.space is None or args.arch is None:
        raise EdgeNASError("latency needs --table, --space and --arch (or: edgenas latency validate --table T)")
    space = get_space(args.space)
    table = LatencyTable.load(args.table, space)
    arch = parse_arch(space, args.arch, table.resolutions)
    ms, raw, meta = table.predict(arch), table.predict(arch, calibrated=False), table.meta
    result = {"latency_ms": ms, "uncalibrated_ms": raw, "resolution": arch.r, "space": space.name, "precision": meta["precision"],
              "provider": meta["provider"], "threads": meta["threads"], "cpu_model": meta["cpu_model"], "arch": arch.to_dict()}
    _emit(args, result, [f"{ms:.3f} ms  ({meta['cpu_model']}, {meta['provider']}, {meta['threads']} thread(s), "
                         f"{meta['precision']}, r={arch.r})"])
    return 0


def latency_validate(args: argparse.Namespace) -> int:
    from ..latency.validate import validate_table

    rep = validate_table(args.table, args.samples, runner=args.runner, runner_timeout=args.runner_timeout, out=args.out,
                         seed=args.seed, passes=1 if args.no_noise_floor else 2)
    o, nf = rep["overall"], rep["noise_floor"]
    lines = [f"{o['n']} networks: {o['within_5pct']:.0%} within ±5%, {o['within_10pct']:.0%} within ±10%, "
             f"MAPE {o['mape']:.1%}, Spearman {o['spearman']:.3f}"]
    if nf:
        lines.append(f"noise floor (same networks measured twice): {nf['within_5pct']:.0%} within ±5%, MAPE {nf['mape']:.1%}")
    lines.append(f"report {rep['report']}, plot {rep['plot']}")
    _emit(args, {k: rep[k] for k in ("overall", "uncalibrated", "by_resolution", "noise_floor", "drift", "report", "plot", "samples")},
          lines)
    return 0


def train(args: argparse.Namespace) -> int:
    from ..train import Trainer, load_config

    saved = Path(args.out) / "config.yaml"
    resume = args.resume and saved.is_file()
    if args.resume and not resume and not (args.space or args.config):
        raise EdgeNASError(f"--resume: {args.out} holds no run yet; run the original command (it may keep --resume)")
    if resume:
        cfg = load_config(saved, {"device": args.device})
    else:  # a fresh run, or --resume of one killed before it wrote anything: start it from the flags
        keys = ("space", "data", "val_data", "val_fraction", "val_per_class", "split", "limit", "seed", "batch_size", "random_subnets",
                "teacher", "device", "epoch_scale", "bn_calib_images", "time_budget")
        cfg = load_config(args.config, {**{k: getattr(args, k) for k in keys}, "compile": args.compile or None})
    summary = Trainer(cfg, args.out, resume=resume).run()
    result = {"out": str(args.out), "checkpoint": str(Path(args.out) / "latest.pt"), "best": str(Path(args.out) / "best.pt"), **summary}
    _emit(args, result, [f"trained {cfg.space} on {cfg.data}: top1 max {summary.get('top1_max', float('nan')):.3f}, "
                         f"min {summary.get('top1_min', float('nan')):.3f}; checkpoints in {args.out}"])
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate_checkpoint
    from ..space import get_space

    space = get_space(args.space)
    r = evaluate_checkpoint(space, args.checkpoint, parse_arch(space, args.arch), args.data, calib_data=args.calib_data,
                            calib_images=args.calib_images, recalibrate=not args.no_recalibrate, device=args.device)
    _emit(args, r.to_dict(), [str(r)])
    return 0


def search(args: argparse.Namespace) -> int:
    from ..search import SearchRun, load_search_config

    saved = Path(args.out) / "config.yaml"
    resume = args.resume and saved.is_file()
    if args.resume and not resume and not (args.space or args.config):
        raise EdgeNASError(f"--resume: {args.out} holds no search run yet; run the original command (it may keep --resume)")
    if resume:
        cfg = load_search_config(saved, {}, saved_run=True)
    else:  # a fresh run, or --resume of one killed before it wrote anything: start it from the flags
        keys = ("space", "objectives", "algorithm", "pop_size", "generations", "seed", "table", "checkpoint", "data", "predictor",
                "num_classes", "max_latency", "max_macs", "max_params", "min_top1", "resolutions", "device", "precisions",
                "int8_table", "int8_drop")
        cfg = load_search_config(args.config, {**{k: getattr(args, k) for k in keys}, "baseline": False if args.no_baseline else None})
    s = SearchRun(cfg, args.out, resume=resume).run()
    base = s["baseline_hypervolume"]
    _emit(args, s, [f"{s['evaluations']} archs evaluated in {s['seconds']:.1f} s; front of {s['front_size']} in {s['front']}",
                    f"hypervolume {s['hypervolume']:.4f}" + (f" (random search, same budget: {base:.4f})" if base is not None else ""),
                    f"plots: {s['plot_png']}, {s['plot_html']}"])
    return 0


def pick(args: argparse.Namespace) -> int:
    from ..search import pick as choose

    chosen = choose(args.run, "knee" if args.knee else "best", max_latency=args.max_latency, max_macs=args.max_macs,
                    max_params=args.max_params, min_top1=args.min_top1)
    if args.out:
        from ..io import write_json

        write_json(args.out, chosen["arch"])
    values = "  ".join(f"{k} {v:.4g}" for k, v in chosen.items() if isinstance(v, float))
    _emit(args, chosen, [json.dumps(chosen["arch"]), values] + ([f"wrote {args.out} (use --arch @{args.out})"] if args.out else []))
    return 0


def predictor(args: argparse.Namespace) -> int:
    from ..io import check_writable
    from ..search.predictor import fit_predictor
    from ..space import get_space

    check_writable(args.out)
    pred = fit_predictor(get_space(args.space), args.checkpoint, args.samples, data=args.data, holdout=args.holdout, seed=args.seed,
                         resolutions=args.resolution, calib_images=args.calib_images, device=args.device)
    pred.save(args.out)
    rep, h = pred.report, pred.report["holdout"]
    _emit(args, {"path": args.out, **rep}, [f"{rep['model']} on {rep['n_train'] + rep['n_holdout']} archs: held-out Kendall tau "
                                            f"{h['kendall_tau']:.3f}, Spearman {h['spearman']:.3f}, RMSE {h['rmse']:.4f}; wrote {args.out}"])
    return 0


def quickstart(args: argparse.Namespace) -> int:
    from ..quickstart import quickstart as run
    from ..quickstart import report
    from ..search import parse_limit

    budget = parse_limit(args.max_latency, "latency") if args.max_latency is not None else None
    result = run(args.out, epoch_scale=args.epoch_scale, max_latency=budget, seed=args.seed)
    _emit(args, result, [report(result)])
    return 0


COMMANDS = {"spaces": spaces, "stats": stats, "export": export, "deploy check": deploy_check, "profile": profile,
            "latency": latency, "latency validate": latency_validate, "train": train, "eval": evaluate, "search": search,
            "pick": pick, "predictor": predictor, "quickstart": quickstart}
