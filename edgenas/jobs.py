"""One library call per user-facing job, each returning a :class:`Report`: ``to_dict()`` is what
``--json`` prints, ``str()`` what a person reads.  The CLI only parses flags and prints these.

Arguments are plain values (paths, names, numbers), so scripts call the same jobs as the CLI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import EdgeNASError
from .space import Arch, SearchSpace

__all__ = ["Report", "deploy_check", "evaluate", "export", "latency", "latency_recalibrate", "latency_validate", "pick", "predictor", "profile",
           "quickstart", "run_target", "search", "show_space", "spaces", "stats", "train"]


@dataclass(frozen=True)
class Report:
    """A job's result: the JSON object and the human rendering of it."""

    data: dict[str, Any]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def __str__(self) -> str:
        return self.text


def spaces() -> Report:
    from .space.registry import space_summaries

    rows = space_summaries()
    return Report({"spaces": rows}, "\n".join(f"{r['name']:<16} {r['n_archs']:.2e} archs  r={r['resolutions'][0]}..{r['resolutions'][-1]}  "
                                              f"{r['description']}" for r in rows))


def show_space(space: SearchSpace) -> Report:
    """``edgenas spaces --show``: the definition a space file would hold, with what it amounts to."""
    import yaml

    definition = space.definition()
    plain = json.loads(json.dumps(definition))  # tuples as lists, for YAML
    text = yaml.safe_dump(plain, sort_keys=False, default_flow_style=None, width=100)
    return Report({"definition": definition, "digest": space.digest(), "n_archs": space.n_archs()},
                  f"{text.rstrip()}\n# digest {space.digest()}, {space.n_archs():.2e} archs")


def stats(space: SearchSpace, arch: Arch, num_classes: int | None = None) -> Report:
    from .cost import stats as cost_stats

    st = cost_stats(space, arch, num_classes)
    return Report({**st.to_dict(), "space": space.name, "arch": arch.to_dict()},
                  f"params      {st.params:,}\nmacs        {st.macs:,}\nresolution  {st.resolution}")


def export(out: str, *, space: SearchSpace | None = None, arch: Arch | None = None, run: str | None = None, strategy: str = "best",
           limits: dict[str, Any] | None = None, checkpoint: str | None = None, table: str | None = None, int8_table: str | None = None,
           int8: bool = False, check: bool = False, backend=None, **options: Any) -> Report:
    """``edgenas export``: ``space`` + ``arch``, or the model picked from search ``run`` (at its precision)."""
    from .deploy import export_subnet

    precision = "fp32"
    if run:
        space, arch, checkpoint, table, precision = run_target(run, strategy, checkpoint, table, **(limits or {}))
    elif space is None or arch is None:
        raise EdgeNASError("export needs --arch and --space (or a --checkpoint, whose space it takes), or --from RUN")
    int8 = int8 or precision == "int8"  # a run that chose int8 exports it (beside the fp32 model it is made from)
    tables = {"fp32": table, "int8": int8_table} if precision == "fp32" else {"fp32": None, "int8": int8_table or table}
    r = export_subnet(space, arch, out, checkpoint=checkpoint, int8=int8, check_tables=tables if check else {},
                      backend=backend if check else None, **options)
    r["precision"] = precision
    lines = [f"wrote {r['path']} (opset {r['opset']}, {r['size_bytes'] / 1e6:.2f} MB)", f"max |ORT - PyTorch| = {r['max_abs_diff']:.3g}",
             f"params {r['params']:,}  macs {r['macs']:,}  resolution {arch.r}"]
    if "top1_fp32" in r:
        lines.append(f"top1 fp32 {r['top1_fp32']:.4f} on {r['n']} held-out images")
    if "int8_path" in r:
        lines.append(f"wrote {r['int8_path']} (int8 QDQ, {r['int8_size_bytes'] / 1e6:.2f} MB, {r['int8_speedup']:.2f}x fp32's speed here)"
                     + (f"; top1 int8 {r['top1_int8']:.4f} ({100 * (r['top1_int8'] - r['top1_fp32']):+.2f} points)" if "top1_int8" in r else ""))
    lines += [f"wrote {o['ort']} and {o['required_operators']}" for o in r.get("ort", [])]
    lines += [f"{ep}: {m['supported_nodes']}/{m['nodes']} nodes, {m['partitions']} partition(s), {m['suitability']}"
              + (f", unsupported {m['unsupported_ops']}" if m["unsupported_ops"] else "") for ep, m in r.get("mobile", {}).items()
              if "nodes" in m]
    lines += [_check_line(c, str(tables[c["precision"]])) for c in r.get("check", [])]
    return Report(r, "\n".join(lines))


def run_target(run: str | os.PathLike, strategy: str = "best", checkpoint: str | None = None, table: str | None = None,
               **limits: Any) -> tuple[Any, Arch, str | None, str | None, str]:
    """(space, arch, checkpoint, table, precision) of the model picked from search run ``run`` (``export --from``).

    The checkpoint is the run's (or its predictor's); explicit ``checkpoint`` / ``table`` win.  The
    table is the one of the chosen precision.
    """
    from .io import read_yaml
    from .search import AccuracyPredictor, pick
    from .space import get_space

    chosen = pick(run, strategy, **limits)
    cfg = read_yaml(Path(run) / "config.yaml", "search run config")
    space = get_space(cfg["space"], cfg.get("space_def"))
    ckpt = checkpoint or cfg.get("checkpoint")
    if not ckpt and cfg.get("predictor"):
        ckpt = AccuracyPredictor.load(cfg["predictor"], space).report.get("checkpoint")
    precision = chosen.get("precision", (cfg.get("precisions") or ["fp32"])[0])
    run_table = cfg.get("int8_table") if precision == "int8" and cfg.get("int8_table") else cfg.get("table")
    return space, space.arch(chosen["arch"]), ckpt, table or run_table, precision


#: a device whose speed moved more than this since profiling gets the advice to recalibrate the table
DRIFT_NOTE = 0.03


def _check_line(c: dict, table: str = "TABLE") -> str:
    line = (f"{c['model']}: measured {c['measured_ms']:.3f} ms ({c['statistic']} run), predicted {c['predicted_ms']:.3f} ms ({100 * c['error']:+.1f}%), "
            f"{c['size_bytes'] / 1e6:.2f} MB")
    line += f", top1 {c['top1']:.4f}" if "top1" in c else ""
    line += f"; int8 {c['int8_speedup']:.2f}x the fp32 model's speed" if "int8_speedup" in c else ""
    if "drift" in c:
        line += (f"\ndrift since profiling ({c['drift']['networks']} of the table's calibration networks, time now over then): "
                 f"{c['drift']['ratio']:.3f}x; corrected for it, the error is {100 * c['drift_corrected_error']:+.1f}%")
        line += f"; `edgenas latency recalibrate --table {table}` refits the table to it" if abs(c["drift"]["ratio"] - 1) > DRIFT_NOTE else ""
    return line


def deploy_check(model: str, table: str, backend, data: str | None = None) -> Report:
    from .deploy import deploy_check as check
    from .latency.table import LatencyTable

    c = check(model, LatencyTable.load(table), backend, data)
    return Report(c, _check_line(c, table))


def profile(space: SearchSpace, out: str, backend, *, resolutions: list[int] | None = None, **options: Any) -> Report:
    from .latency.profile import profile as measure
    from .latency.profile import profile_summary

    table, seconds = measure(space, resolutions or space.resolutions, backend, out, **options)
    r = profile_summary(table, out, seconds)
    return Report(r, f"wrote {out}: {r['entries']} entries in {seconds:.1f} s\n"
                     f"per-call overhead {r['overhead_ms']:.4f} ms; calibration {r['calibration'] or 'none'}")


def latency(table_path: str, space: SearchSpace, arch: Arch | Callable[[tuple[int, ...]], Arch]) -> Report:
    """Predicted latency of ``arch`` (or of ``arch(resolutions)``, chosen among the table's resolutions)."""
    from .latency.table import LatencyTable

    table = LatencyTable.load(table_path, space)
    arch = arch if isinstance(arch, Arch) else arch(table.resolutions)
    ms, raw, meta = table.predict(arch), table.predict(arch, calibrated=False), table.meta
    return Report({"latency_ms": ms, "uncalibrated_ms": raw, "resolution": arch.r, "space": space.name, "precision": meta["precision"],
                   "provider": meta["provider"], "threads": meta["threads"], "cpu_model": meta["cpu_model"], "arch": arch.to_dict()},
                  f"{ms:.3f} ms  ({meta['cpu_model']}, {meta['provider']}, {meta['threads']} thread(s), {meta['precision']}, r={arch.r})")


def latency_validate(table: str, samples: int, **options: Any) -> Report:
    from .latency.validate import validate_table

    rep = validate_table(table, samples, **options)
    o, nf, dc = rep["overall"], rep["noise_floor"], rep["drift_corrected"]
    lines = [f"{o['n']} networks: {o['within_5pct']:.0%} within ±5%, {o['within_10pct']:.0%} within ±10%, "
             f"MAPE {o['mape']:.1%}, Spearman {o['spearman']:.3f}"]
    if dc:
        lines.append(f"drift-corrected (the device ran {rep['drift']['p50']:.3f}x its profiling speed): {dc['within_10pct']:.0%} within ±10%")
        if abs(rep["drift"]["p50"] - 1) > DRIFT_NOTE:
            lines.append(f"the device's speed has moved since profiling: `edgenas latency recalibrate --table {table}` refits the "
                         "table to it from its calibration networks")
    if nf:
        lines.append(f"noise floor (same networks measured twice): {nf['within_5pct']:.0%} within ±5%, MAPE {nf['mape']:.1%}")
    if rep["statistic"] != "median":
        lines.append(f"latencies are each network's {rep['statistic']} run; its median run took "
                     f"{rep['median_over_statistic']['p50']:.3f}x that (median over the networks)")
    lines.append(f"report {rep['report']}, plot {rep['plot']}")
    keys = ("overall", "uncalibrated", "by_resolution", "noise_floor", "drift", "drift_corrected", "statistic",
            "median_over_statistic", "report", "plot", "samples")
    return Report({k: rep[k] for k in keys}, "\n".join(lines))


def latency_recalibrate(table: str, **options: Any) -> Report:
    from .latency.recalibrate import recalibrate_table

    r = recalibrate_table(table, **options)
    d, c, p = r["drift"], r["calibration"], r["previous_calibration"]
    return Report(r, f"wrote {r['table']}: its {r['n_networks']} calibration networks ran {d['p50']:.3f}x their previous time "
                     f"(p5 {d['p5']:.3f}, p95 {d['p95']:.3f}); the previous calibration was off by {r['mape_previous']:.1%} "
                     f"on them (MAPE), the refitted one by {r['mape_refitted']:.1%}\n"
                     f"calibration scale {p.get('scale', float('nan')):.3f} -> {c['scale']:.3f}, per Mparam "
                     f"{p.get('per_mparam', float('nan')):.4f} -> {c['per_mparam']:.4f} ms, offset "
                     f"{p.get('offset_ms', float('nan')):.4f} -> {c['offset_ms']:.4f} ms; check it with "
                     f"`edgenas latency validate --table {r['table']}`")


def train(out: str, *, config: str | None = None, overrides: dict[str, Any] | None = None, resume: bool = False) -> Report:
    """``edgenas train``; ``resume`` continues the run in ``out``, or starts it from the settings if it never wrote one."""
    from .train import Trainer, load_config

    overrides = overrides or {}
    saved = _saved_settings(out, config, overrides, resume, "run")
    cfg = load_config(saved, {"device": overrides.get("device")}) if saved else load_config(config, overrides)
    summary = Trainer(cfg, out, resume=saved is not None).run()
    r = {"out": str(out), "checkpoint": str(Path(out) / "latest.pt"), "best": str(Path(out) / "best.pt"), **summary}
    return Report(r, f"trained {cfg.space} on {cfg.data}: top1 max {summary.get('top1_max', float('nan')):.3f}, "
                     f"min {summary.get('top1_min', float('nan')):.3f}; checkpoints in {out}")


def _saved_settings(out: str, config: str | None, overrides: dict[str, Any], resume: bool, what: str) -> Path | None:
    """With ``resume``: the run's own settings file, or None to start it from the flags if it never wrote one."""
    saved = Path(out) / "config.yaml"
    if not resume or saved.is_file():
        return saved if resume else None
    if not (overrides.get("space") or config):
        raise EdgeNASError(f"--resume: {out} holds no {what} yet; run the original command (it may keep --resume)")
    return None


def evaluate(space: SearchSpace, checkpoint: str, arch: Arch, data: str | None, **options: Any) -> Report:
    from .evaluate import evaluate_checkpoint

    r = evaluate_checkpoint(space, checkpoint, arch, data, **options)
    return Report(r.to_dict(), str(r))


def search(out: str, *, config: str | None = None, overrides: dict[str, Any] | None = None, resume: bool = False) -> Report:
    """``edgenas search``; ``resume`` continues the run in ``out``, or starts it from the settings if it never wrote one."""
    from .search import SearchRun, load_search_config

    overrides = overrides or {}
    saved = _saved_settings(out, config, overrides, resume, "search run")
    cfg = load_search_config(saved, {}, saved_run=True) if saved else load_search_config(config, overrides)
    s = SearchRun(cfg, out, resume=saved is not None).run()
    base = s["baseline_hypervolume"]
    return Report(s, f"{s['evaluations']} archs evaluated in {s['seconds']:.1f} s; front of {s['front_size']} in {s['front']}\n"
                     f"hypervolume {s['hypervolume']:.4f}" + (f" (random search, same budget: {base:.4f})" if base is not None else "")
                     + f"\nplots: {s['plot_png']}, {s['plot_html']}")


def pick(run: str, *, knee: bool = False, out: str | None = None, **limits: Any) -> Report:
    from .search import pick as choose

    chosen = choose(run, "knee" if knee else "best", **limits)
    if out:
        from .io import write_json

        write_json(out, chosen["arch"])
    values = "  ".join(f"{k} {v:.4g}" for k, v in chosen.items() if isinstance(v, float))
    return Report(chosen, "\n".join([json.dumps(chosen["arch"]), values] + ([f"wrote {out} (use --arch @{out})"] if out else [])))


def predictor(space: SearchSpace, checkpoint: str, samples: int, out: str, **options: Any) -> Report:
    from .io import check_writable, exclusive
    from .search.labels import labels_path
    from .search.predictor import fit_predictor

    check_writable(out)
    labels = labels_path(out)
    with exclusive(out, "accuracy predictor"):
        pred = fit_predictor(space, checkpoint, samples, labels=labels, **options)
        pred.save(out)
    rep, h, ceiling = pred.report, pred.report["holdout"], pred.report["labels"]["tau_ceiling"]
    limit = "" if ceiling is None else (f" (a perfect predictor would score about {ceiling:.2f} against labels measured on "
                                        f"{rep['labels']['images']:,} images)")
    return Report({"path": out, **rep}, f"{rep['model']} on {rep['n_train'] + rep['n_holdout']} archs: held-out Kendall tau "
                                        f"{h['kendall_tau']:.3f}{limit}, Spearman {h['spearman']:.3f}, RMSE {h['rmse']:.4f}; wrote {out} "
                                        f"(labels kept in {labels}: a rerun with more --samples labels only the new subnets)")


def quickstart(out: str, *, max_latency: str | None = None, **options: Any) -> Report:
    from .quickstart import quickstart as run
    from .quickstart import report
    from .search import parse_limit

    result = run(out, max_latency=parse_limit(max_latency, "latency") if max_latency is not None else None, **options)
    return Report(result, report(result))
