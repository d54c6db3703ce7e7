"""Build a shipped supernet's folder (``edgenas/pretrained/NAME/``) from a GPU job's pack.

    python benchmarks/pretrained_card.py --pack GPU_PACK_DIR --data imagefolder:.data/cifar10-train.zip \\
        --dest edgenas/pretrained/cifar10 [--predictor OTHER/predictor.json] [--gpu-results OTHER/results.json]
    python benchmarks/pretrained_card.py --dest edgenas/pretrained/cifar10 --replace-predictor NEW/predictor.json [--note ...]

Writes ``supernet.pt`` (the pack's bf16 weights, the data record given its fingerprints so the
held-out split is found at any path), ``predictor.json``, ``metrics.csv``, ``train-config.yaml``,
and the model card: top-1 on the held-out split of the largest, smallest and 10 seeded random
subnets, with and without BN recalibration, measured here on the CPU in fp32 (cached in
``DEST/.evaluations-<weights digest>.json`` so an interrupted build of the same weights resumes), and reference logits on a fixed
input that the tests reproduce.  A pack that continued the folder's weights (``--init cifar10``)
keeps the earlier sessions on the card, their metrics and settings beside.  ``--replace-predictor`` swaps a built folder's predictor for another one
fitted on the same weights, and brings the card's predictions and predictor quality up to date.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _report import keep_section, machine, replace_body, update_section  # noqa: E402  (the script's folder is on sys.path)

from edgenas import get_space  # noqa: E402
from edgenas.data import checkpoint_data, data_digests, load_images  # noqa: E402
from edgenas.evaluate import Evaluator, reference_logits  # noqa: E402
from edgenas.io import atomic_path, write_json  # noqa: E402
from edgenas.search import AccuracyPredictor  # noqa: E402
from edgenas.supernet import Supernet, read_checkpoint  # noqa: E402


def write_samples(spec: str, info: dict, dest: Path, per_class: int = 100, seed: int = 0) -> None:
    """calibration.zip (training images, for BN recalibration and int8 calibration) and heldout.zip
    (held-out images, to score exported models) of ``per_class`` images a class, the original files.

    With them a built-in supernet is recalibrated, exported and scored where the dataset is not.
    """
    import zipfile

    from edgenas.data import _entries, split_indices

    path = Path(spec.split(":", 1)[1])
    entries = _entries(path)  # (class, member) in the order and with the labels the loader gives them
    classes = sorted({c for c, _ in entries})
    labels = np.array([classes.index(c) for c, _ in entries])
    train, val = split_indices(labels, val_per_class=info["val_per_class"], mode=info["split"], seed=info["seed"])
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path) as zf:
        for file, pool in (("calibration.zip", train), ("heldout.zip", val)):
            pick = np.concatenate([rng.choice(pool[labels[pool] == c], per_class, replace=False) for c in range(len(classes))])
            with atomic_path(dest / file) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as out:
                for i in sorted(pick):
                    c, member = entries[i]
                    out.writestr(f"{c}/{member.split('/')[-1]}", zf.read(member))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", help="folder written by gpu_job.py pack")
    ap.add_argument("--data", help="the training data, at its path here")
    ap.add_argument("--replace-predictor", metavar="PREDICTOR",
                    help="only swap the predictor of the folder --dest holds for this one (fitted on the same weights)")
    ap.add_argument("--dest", required=True)
    ap.add_argument("--predictor", help="predictor.json (default: the pack's)")
    ap.add_argument("--gpu-results", help="results.json of a GPU pack (default: the pack's, if any)")
    ap.add_argument("--probe", nargs="+", help="probe.json of each gpu_job.py probe run (for BENCHMARKS.md)")
    ap.add_argument("--note", help="a sentence for the card (how the run went)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.replace_predictor:
        replace_predictor(Path(args.dest), Path(args.replace_predictor), args.note)
        return 0
    if not (args.pack and args.data):
        ap.error("--pack and --data are needed to build a folder")
    pack, dest = Path(args.pack), Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    ckpt = torch.load(pack / "supernet.bf16.pt", map_location="cpu", weights_only=True)
    earlier = earlier_sessions(dest, (ckpt.get("config") or {}).get("init_record"))
    images, _, _ = load_images(args.data, size=ckpt["data"].get("size"))  # decoded as training decoded them
    digests = data_digests(images)  # decoded content, and the files (the same in memory or streamed)
    ckpt["data"] = dict(ckpt["data"], **digests)
    with atomic_path(dest / "supernet.pt") as tmp:
        torch.save(ckpt, tmp)
    ckpt = read_checkpoint(dest / "supernet.pt")
    net = Supernet.from_checkpoint(ckpt)
    space = net.space
    data = checkpoint_data(ckpt["data"], args.data)
    assert data.own, "the data given is not the data the supernet was trained on"

    write_samples(args.data, ckpt["data"], dest)
    pred_src = Path(args.predictor) if args.predictor else pack / "predictor.json"
    pred = AccuracyPredictor.load(pred_src, space)
    shutil.copyfile(pred_src, dest / "predictor.json")
    shutil.copyfile(pack / "metrics.csv", dest / "metrics.csv")
    shutil.copyfile(pack / "config.yaml", dest / "train-config.yaml")

    digest = hashlib.sha256((dest / "supernet.pt").read_bytes()).hexdigest()
    cache_path = dest / f".evaluations-{digest[:12]}.json"  # other weights: other file
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    ev = Evaluator(data, calib_images=1000, seed=args.seed)
    rng = np.random.default_rng(args.seed)  # the same subnets as gpu_job.py pack
    r = max(space.resolutions)
    archs = {"largest": space.max_arch(r), "smallest": space.min_arch(r),
             **{f"random-{i}": space.sample(rng) for i in range(10)}}
    for name, arch in archs.items():
        if name not in cache:
            t = time.perf_counter()
            cache[name] = {"arch": arch.to_dict(), "top1": ev.top1(net, arch), "top1_stored_bn": ev.top1(net, arch, recalibrate=False)}
            predict(pred, {name: cache[name]})
            write_json(cache_path, cache)
            print(f"{name}: top1 {cache[name]['top1']:.4f} (stored BN {cache[name]['top1_stored_bn']:.4f}) "
                  f"predicted {cache[name]['predicted_top1']:.4f}  {time.perf_counter() - t:.0f} s", flush=True)

    gpu_path = Path(args.gpu_results) if args.gpu_results else pack / "results.json"
    gpu = json.loads(gpu_path.read_text()) if gpu_path.exists() else {}
    with open(pack / "metrics.csv") as f:
        metrics = list(csv.DictReader(f))
    phases: dict[str, dict] = {}
    for row in metrics:
        p = phases.setdefault(row["phase"], {"epochs": 0, "train_s": 0.0, "eval_s": 0.0, "images_per_s": []})
        p["epochs"] += 1
        p["train_s"] += float(row["train_seconds"])
        p["eval_s"] += float(row["eval_seconds"])
        p["images_per_s"].append(float(row["images_per_s"]))
    schedule = {k: {"epochs": v["epochs"], "gpu_minutes": round((v["train_s"] + v["eval_s"]) / 60, 2),
                    "median_images_per_s": round(float(np.median(v["images_per_s"])))} for k, v in phases.items()}
    config = ckpt.get("config") or {}
    weights = dest / "supernet.pt"
    card = {
        "name": dest.name, "space": space.name, "space_digest": space.digest(), "num_classes": net.num_classes,
        "classes": ckpt["data"]["classes"],
        "data": {"trained_on": "CIFAR-10 training split (50,000 images)", "held_out": "last 500 images of each class (5,000), never trained on",
                 **digests, "val_per_class": ckpt["data"].get("val_per_class"), "split": ckpt["data"].get("split")},
        "training": {"gpu": gpu.get("device", "a GPU (its name was not recorded)"), "batch_size": config.get("batch_size"),
                     "time_budget_min": config.get("time_budget"), "recipe": "train-config.yaml",
                     "gpu_minutes": round(sum(v["gpu_minutes"] for v in schedule.values()), 2), "phases": schedule,
                     "budget_plan": config.get("budget_plan"), "earlier": earlier, "streamed_loader": gpu.get("stream"),
                     "setup_probe": gpu.get("setup"),
                     "gpu_minutes_all_sessions": round(sum(v["gpu_minutes"] for v in schedule.values())
                                                       + sum(e["gpu_minutes"] for e in earlier), 2)},
        "weights": {"file": "supernet.pt", "dtype": "bfloat16 (loaded back to float32)", "bytes": weights.stat().st_size,
                    "sha256": digest},
        "top1": {"measured_on": f"CPU, float32 ({machine().split(',')[0]}), held-out 5,000 images; "
                                "BN recalibrated on 1,000 training images", "subnets": cache},
        "top1_gpu_previous_epoch": {k: {"top1": v["top1"], "top1_stored_bn": v["top1_stored_bn"]} for k, v in (gpu.get("eval") or {}).items()},
        "predictor": pred.report,
        "reference_logits": {"input": "torch.randint(0, 256, (2, 3, R, R), uint8, Generator seed 0), normalised with the data's mean/std; "
                                      "supernet in eval mode (stored BN)", "resolution": r, **reference_logits(net, ckpt["data"])},
        "note": args.note or "",
    }
    write_json(dest / "card.json", card)
    (dest / "MODEL_CARD.md").write_text(render(card))
    print(render(card))
    probe = _probes(args.probe) if args.probe else None
    title = f"Supernet on one GPU: {card['name']}"
    if earlier:  # the section of the weights this pack continued stays, as its session's record
        keep_section(title, f"{title}, session {len(earlier)}")
    shown = [a if i == 0 or (argv or sys.argv[1:])[i - 1] != "--note" else '"..."' for i, a in enumerate(argv or sys.argv[1:])]
    update_section(title, benchmark_body(card, probe), "python benchmarks/gpu_job.py probe|start|poll|pack "
                   "(README, section 5), then python " + " ".join(["benchmarks/pretrained_card.py", *shown]),
                   f"training: {card['training']['gpu']} (lent, bf16 autocast, channels_last, data resident on the GPU); "
                   f"evaluation: {machine()}")
    return 0


def earlier_sessions(dest: Path, init: dict | None) -> list[dict]:
    """The training sessions before this pack's, when it continued (``--init``) the weights ``dest``
    holds: their card entries, their metrics and settings kept beside as ``*-session-N.*``."""
    if not init:
        return []
    prev = json.loads((dest / "card.json").read_text()) if (dest / "card.json").is_file() else None
    if prev is None or not prev["weights"]["sha256"].startswith(init["sha256"]):
        sys.exit(f"the pack continues {init['checkpoint']} (sha256 {init['sha256']}...), not the weights in {dest}: "
                 "build it into the folder of the weights it continued")
    before = prev["training"].get("earlier", [])
    n = len(before) + 1
    last = {k: v for k, v in prev["training"].items() if k not in ("earlier", "gpu_minutes_all_sessions")}
    for src, name in (("metrics.csv", f"metrics-session-{n}.csv"), ("train-config.yaml", f"train-config-session-{n}.yaml")):
        if (dest / src).is_file():
            shutil.copyfile(dest / src, dest / name)
    return [*before, {**last, "recipe": f"train-config-session-{n}.yaml", "metrics": f"metrics-session-{n}.csv"}]


def predict(pred: AccuracyPredictor, subnets: dict) -> None:
    """Each card subnet's ``predicted_top1``, and whether the predictor was fitted on it (``predictor_saw``)."""
    seen = {x.tobytes() for x in pred.X}
    for v in subnets.values():
        x = pred.space.canonical_vectors(pred.space.encode(pred.space.arch(v["arch"]))[None])
        v["predicted_top1"], v["predictor_saw"] = float(pred.top1_vectors(x)[0]), x[0].tobytes() in seen


def replace_predictor(dest: Path, src: Path, note: str | None) -> None:
    """The folder's predictor swapped for ``src`` (fitted on the same weights); card.json and MODEL_CARD.md follow."""
    card = json.loads((dest / "card.json").read_text())
    pred = AccuracyPredictor.load(src, card["space"])
    predict(pred, card["top1"]["subnets"])
    card["predictor"] = pred.report
    if note is not None:
        card["note"] = note
    if src.resolve() != (dest / "predictor.json").resolve():
        shutil.copyfile(src, dest / "predictor.json")
    write_json(dest / "card.json", card)
    (dest / "MODEL_CARD.md").write_text(render(card))
    print(render(card))
    replace_body(f"Supernet on one GPU: {card['name']}", benchmark_body(card, None))


def _probes(paths: list[str]) -> dict:
    """The rows of several probe runs (one per cuDNN setting) as one probe; the first run's loader timing."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    return {**runs[0], "rows": [r for run in runs for r in run["rows"]], "same_subnets": all(run.get("same_subnets") for run in runs)}


def _probe_row(r: dict) -> str:
    mode = {False: "off", True: "on"}.get(r["compile"], r["compile"])
    cudnn = "on" if r.get("cudnn_benchmark") else "off"
    if "error" in r:
        return f"| {r.get('batch_size', '')} | {mode} | {cudnn} | {r['error']} | | | | |"
    syncs, peak, first = r.get("host_syncs_per_step"), r.get("peak_gpu_gb"), r.get("sandwich_first_step_s")
    return (f"| {r['batch_size']} | {mode} | {cudnn} | {r['one_network_images_per_s']:,.0f} | {r['sandwich_images_per_s']:,.0f} | "
            f"{'' if first is None else f'{first:.2f} s'} | {'' if syncs is None else f'{syncs:g}'} | {'' if peak is None else f'{peak:.1f} GB'} |")


def setup_lines(setup: dict) -> list[str]:
    """The set-up probe of a session (``gpu_job.py session --setup-probe``): what new layer shapes cost each setting, and its choice."""
    rows = []
    for r in setup["rows"]:
        if "error" in r:
            rows.append(f"| {r['setting']} | {r['error']} | | | | | | |")
            continue
        m = {k: float(np.mean(r[k])) for k in ("subnet_step_s", "subnet_first_s", "eval_first_s", "eval_again_s")}
        checked = f" (gradients {r['grad_rel_err']:.1%} from eager)" if "grad_rel_err" in r else ""
        rows.append(f"| {r['setting']}{checked} | {r.get('largest_first_s', 0.0):.2f} s | {r['largest_step_s'] * 1e3:,.0f} ms "
                    f"| {m['subnet_step_s'] * 1e3:,.0f} ms | {m['subnet_first_s']:.2f} s "
                    f"| {r.get('new_shapes', '')} of {r.get('space_shapes', '')} | {m['eval_first_s']:.2f} s | {m['eval_again_s']:.2f} s |")
    weighed = f", weighed over {setup['train_seconds']:.0f} s of training" if setup.get("train_seconds") else ""
    return [f"Set-up probe (`--setup-probe`: each setting in a fresh process, batch {setup.get('batch_size')}, random weights; new subnets "
            f"timed, then the same again{weighed}): trained with `{setup['train']}`, labelled with `{setup['labels']}`.", "",
            "| setting | largest network's first step | its step | a subnet's step | a new subnet's first step "
            "| its new layer shapes, of the space's | a new subnet's label | the same again |", "|---|---|---|---|---|---|---|---|", *rows, ""]


def benchmark_body(card: dict, probe: dict | None) -> str:
    t, sub = card["training"], card["top1"]["subnets"]
    h = card["predictor"].get("holdout", {})
    plan = t.get("budget_plan") or {}
    setup_s = t["time_budget_min"] * 60 - plan.get("budget_s", t["time_budget_min"] * 60)  # the plan's budget is what set-up left
    lines = []
    if probe:
        res = "/".join(map(str, get_space(probe["space"]).resolutions))
        lines += [f"Throughput probe (`gpu_job.py probe`, timed steps per resolution {res} after one warm-up step; compile: "
                  "`--compile` mode of the largest network, off = eager; cuDNN benchmark: `--cudnn-benchmark`; first sandwich step: "
                  "the warm-up, a step of new layer shapes):", "",
                  "| batch | compile | cuDNN benchmark | one network, images/s | sandwich, images/s | first sandwich step | host syncs per step "
                  "| peak GPU memory |", "|---|---|---|---|---|---|---|---|",
                  *[_probe_row(r) for r in probe["rows"]], ""]
        st = probe.get("stream")
        if st:
            lines += [f"Streamed loader ({st['workers']} decoding processes, batch {st['batch_size']}, augmented on the GPU): "
                      f"{st['images_per_s']:,.0f} images/s." if "error" not in st else f"Streamed loader: {st['error']}.", ""]
        if not probe.get("same_subnets"):
            lines += ["This probe ran before the probe's fix: each timed sandwich step trained subnets it had not run before, and on "
                      "the GPU a layer shape's first step costs about 100x a step, so its sandwich column measures that set-up, not "
                      "training. The budget's own probe (below) times the same subnets it warmed up with.", ""]
    if t.get("setup_probe"):
        lines += setup_lines(t["setup_probe"])
    lines += [f"Training: `--time-budget {t['time_budget_min']}` (minutes, set-up included), batch {t['batch_size']}; the budget's own probe "
              f"measured one-network {plan.get('one_network_images_per_s', 0):,.0f} and sandwich {plan.get('sandwich_images_per_s', 0):,.0f} "
              f"images/s and planned {plan.get('planned_s', 0) / 60:.1f} min of epochs; they took {t['gpu_minutes']:.1f} GPU-minutes. "
              f"Set-up before the first epoch (data loading, the probe) took {setup_s / 60:.1f} min, so the run took "
              f"{setup_s / 60 + t['gpu_minutes']:.1f} min in all for a {t['time_budget_min']}-minute budget."
              + (f" It continued the weights of {len(t['earlier'])} earlier session(s) (`--init`): "
                 f"{t['gpu_minutes_all_sessions']:.1f} GPU-minutes of training in all." if t.get("earlier") else ""), "",
              "| phase | epochs | GPU minutes | images/s (median) |", "|---|---|---|---|",
              *[f"| {k} | {v['epochs']} | {v['gpu_minutes']:.2f} | {v['median_images_per_s']:,} |" for k, v in t["phases"].items()], ""]
    st = t.get("streamed_loader")
    if st and "error" not in st:  # does decoding from disk keep this GPU fed? (timed after training, on the same machine)
        need = max(v["median_images_per_s"] for v in t["phases"].values())
        lines += [f"Streamed loader on the same machine after training (`--stream-workers {st['workers']}`: JPEGs decoded in "
                  f"{st['workers']} processes, batch {st['batch_size']}, pinned copies augmented on the GPU, {st['images']:,} images timed): "
                  f"{st['images_per_s']:,.0f} images/s, {st['images_per_s'] / need:.1f}x the fastest phase's training rate "
                  f"({need:,} images/s): streaming from disk "
                  + ("keeps this GPU fed." if st["images_per_s"] >= need else "cannot keep this GPU fed."), ""]
    elif st:
        lines += [f"Streamed loader on the same machine after training: {st['error']}.", ""]
    lines += [f"Top-1 on the 5,000 held-out images ({card['top1']['measured_on']}):", "",
              "| subnet | BN recalibrated | stored BN | predictor | target |", "|---|---|---|---|---|"]
    for k, v in sub.items():
        target = {"largest": ">= 0.94", "smallest": ">= 0.90"}.get(k, "")
        miss = " **missed**" if target and v["top1"] < float(target[3:]) else ""
        lines.append(f"| {k} | {v['top1']:.4f}{miss} | {v['top1_stored_bn']:.4f} | {v['predicted_top1']:.4f} | {target} |")
    tau = h.get("kendall_tau", float("nan"))
    lines += ["", f"Accuracy predictor ({card['predictor'].get('model')}, {card['predictor'].get('n_train', 0)} + {h.get('n')} subnets "
                  f"evaluated {card['predictor'].get('labelled_on', 'on the GPU')}): held-out Kendall tau {tau:.3f}"
                  f"{' **missed**' if tau < 0.8 else ''} (target >= 0.8), "
                  f"Spearman {h.get('spearman', float('nan')):.3f}, RMSE {100 * h.get('rmse', float('nan')):.2f} points.", ""]
    if card.get("note"):
        lines += [card["note"], ""]
    return "\n".join(lines)


def render(card: dict) -> str:
    t, sub = card["training"], card["top1"]["subnets"]
    rnd = [v for k, v in sub.items() if k.startswith("random")]
    h = card["predictor"].get("holdout", {})
    lines = [
        f"# Built-in supernet `{card['name']}` ({card['space']}, {card['num_classes']} classes)",
        "",
        f"Use it with `--checkpoint {card['name']}` (and `--predictor {card['name']}`) in `eval`, `predictor`, `search`, "
        f"`export`, or `edgenas quickstart --{card['name']}`.",
        "",
        f"- Space: `{card['space']}` (digest `{card['space_digest']}`)",
        f"- Data: {card['data']['trained_on']}; held out: {card['data']['held_out']}; data fingerprint `{card['data']['fingerprint']}`",
        f"- Training: {t['gpu']}, {t['gpu_minutes']:.1f} GPU-minutes (time budget {t['time_budget_min']} min), batch {t['batch_size']}, "
        f"settings `{t['recipe']}` (beside this card)",
        *(["- Continued from earlier sessions (`--init`): " + "; ".join(
            f"{e['gpu']}, {e['gpu_minutes']:.1f} GPU-minutes, settings `{e['recipe']}`" for e in t["earlier"])
           + f"; {t['gpu_minutes_all_sessions']:.1f} GPU-minutes in all"] if t.get("earlier") else []),
        f"- Weights: `{card['weights']['file']}`, {card['weights']['dtype']}, {card['weights']['bytes'] / 1e6:.1f} MB",
        "",
        "| phase | epochs | GPU minutes | images/s (median) |",
        "|---|---|---|---|",
        *[f"| {k} | {v['epochs']} | {v['gpu_minutes']:.2f} | {v['median_images_per_s']:,} |" for k, v in t["phases"].items()],
        "",
        f"Top-1 on the held-out images ({card['top1']['measured_on']}):",
        "",
        "| subnet | top-1 (BN recalibrated) | top-1 (stored BN) | predictor |",
        "|---|---|---|---|",
        *[f"| {k} | {v['top1']:.4f} | {v['top1_stored_bn']:.4f} | {v['predicted_top1']:.4f}{' (among its samples)' if v.get('predictor_saw') else ''} |"
          for k, v in sub.items()],
        "",
        f"10 random subnets: mean {np.mean([v['top1'] for v in rnd]):.4f}, min {min(v['top1'] for v in rnd):.4f}, "
        f"max {max(v['top1'] for v in rnd):.4f}.",
        "",
        f"Accuracy predictor: {card['predictor'].get('model')} fitted on {card['predictor'].get('n_train', 0) + card['predictor'].get('n_holdout', 0)} "
        f"subnets ({card['predictor'].get('sampling', 'uniform')}) evaluated {card['predictor'].get('labelled_on', 'on the GPU')}; held-out "
        f"Kendall tau {h.get('kendall_tau', float('nan')):.3f}, Spearman {h.get('spearman', float('nan')):.3f}, RMSE "
        f"{100 * h.get('rmse', float('nan')):.2f} points (n = {h.get('n')}).",
        "",
        *( [card["note"], ""] if card.get("note") else []),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
