"""Crash suite: SIGKILL `edgenas profile`, `train` and `search` at every file write, resume, compare.

Each job runs once uninterrupted (counting its file writes: every atomic replace and every
fsynced append), then once per write and per side of it ("before": the new file is complete but
not yet in place; "after": in place, nothing after it done), killed there with SIGKILL, then
resumed with the same command plus --resume (what a user re-runs). The files it leaves must equal
the uninterrupted run's: bit for bit for search outputs; for training, the weights, optimizer position, best/latest
checkpoints and metrics rows less wall-clock figures (images/s, seconds); for a latency table,
the same entries, metadata and completeness (timings are measurements and differ run to run).

    python benchmarks/crash.py            # about 10 minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section  # noqa: E402

HOOK = """
import atexit, os, signal, sys
k, when, count_file = int(os.environ["CRASH_AT"]), os.environ["CRASH_WHEN"], os.environ.get("CRASH_COUNT")
n = [0]
def hooked(real):
    def call(*a, **kw):
        n[0] += 1
        if n[0] == k and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        out = real(*a, **kw)
        if n[0] == k and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    return call
os.replace, os.fsync = hooked(os.replace), hooked(os.fsync)
if count_file:
    atexit.register(lambda: open(count_file, "w").write(str(n[0])))
source = os.environ.get("CRASH_SOURCE")
if source:  # import the snapshot, not the (editable) working tree
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
    sys.path.insert(0, source)
import edgenas
assert not source or edgenas.__file__.startswith(source), edgenas.__file__
from edgenas.cli import main
sys.exit(main(sys.argv[1:]))
"""
TIMING = ("images_per_s", "train_seconds", "eval_seconds", "wall_seconds", "seconds", "profile_seconds", "date")


SOURCE: Path | None = None  # a snapshot of edgenas the killed processes import (the tree may change meanwhile)


def run(argv: list[str], k: int = 0, when: str = "none", count: Path | None = None) -> int:
    env = {**os.environ, "CRASH_AT": str(k), "CRASH_WHEN": when, **({"CRASH_COUNT": str(count)} if count else {})}
    if SOURCE is not None:
        env["CRASH_SOURCE"] = str(SOURCE)
    return subprocess.run([sys.executable, "-c", HOOK, *argv], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, timeout=600).returncode


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def train_files(out: Path) -> dict:
    import torch

    files = {}
    for name in ("latest.pt", "best.pt"):
        ck = torch.load(out / name, weights_only=True)
        files[name] = ({k: v.tolist() for k, v in ck["state_dict"].items()}, ck["step"], ck["best_top1"], _strip(ck["history"]))
    files["metrics.jsonl"] = [_strip(json.loads(x)) for x in (out / "metrics.jsonl").read_text().splitlines()]
    header, *rows = (out / "metrics.csv").read_text().splitlines()
    keep = [i for i, c in enumerate(header.split(",")) if c not in TIMING]
    files["metrics.csv"] = [[r.split(",")[i] for i in keep] for r in rows]
    files["config.yaml"] = (out / "config.yaml").read_text()
    return files


def search_files(out: Path) -> dict:
    files = {n: (out / n).read_text() for n in ("config.yaml", "archive.csv", "hypervolume.csv", "front.json")}
    summary = (out / "summary.json").read_text().replace(str(out), "RUN")  # its own paths name the run directory
    files["summary.json"] = _strip(json.loads(summary))
    files["plots"] = sorted(p.name for p in out.glob("pareto.*"))
    return files


def table_files(out: Path) -> dict:
    t = json.loads(out.read_text())
    meta = _strip({k: v for k, v in t["meta"].items() if k != "device"})
    return {"meta": meta, "entries": sorted(t["entries"]), "calibrated": t["calibration"] is not None}


def leftovers(base: Path) -> list[str]:
    return sorted(p.name for p in (base.glob(".*.tmp") if base.is_dir() else base.parent.glob(f".{base.name}*.tmp")))


def suite(name: str, work: Path, start: list[str], resume: list[str], files) -> dict:
    """``start``/``resume`` hold the token {OUT}; ``files(base)`` reads what a run at base left."""
    fill = lambda argv, base: [a.replace("{OUT}", str(base)) for a in argv]  # noqa: E731
    count = work / f"{name}.count"
    assert run(fill(start, work / f"{name}-ref"), count=count) == 0, f"{name}: the uninterrupted run failed"
    reference = files(work / f"{name}-ref")
    n = int(count.read_text())
    tried = identical = 0
    failures = []
    for k in range(1, n + 1):
        for when in ("before", "after"):
            base = work / f"{name}-{k}-{when}"
            code = run(fill(start, base), k, when)
            tried += 1
            ok = (code == 0 or run(fill(resume, base)) == 0) and files(base) == reference and not leftovers(base)
            identical += ok
            if not ok:
                failures.append(f"{k}/{when}")
            print(f"{name}: kill at write {k}/{n} {when}: {'identical' if ok else 'DIFFERENT'}", file=sys.stderr)
    return {"job": name, "writes": n, "kills": tried, "identical": identical, "failures": failures}


def main() -> None:
    from edgenas.latency import LocalBackend
    from edgenas.latency.profile import profile
    from edgenas.search import AccuracyPredictor, sample_archs
    from edgenas.space import get_space

    global SOURCE
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="edgenas-crash-"))
    SOURCE = work / "src"
    shutil.copytree(ROOT / "edgenas", SOURCE / "edgenas", ignore=shutil.ignore_patterns("__pycache__"))
    results = []
    try:
        table = work / "table.json"
        tbl = ["profile", "--device", "cpu", "--space", "tiny", "--resolution", "16", "--calibrate", "4", "--warmup", "1",
               "--rounds", "1", "--runs", "3", "--out", "{OUT}.json"]
        results.append(suite("profile", work, tbl, tbl, lambda base: table_files(base.with_name(base.name + ".json"))))

        phases = work / "phases.yaml"
        phases.write_text("phases:\n  - {name: full, epochs: 1, lr: 0.1, ks: max, e: max, d: max}\n"
                          "  - {name: kernel, epochs: 1, lr: 0.02, ks: all, e: max, d: max}\n")
        tr = ["train", "--space", "tiny", "--data", "digits", "--config", str(phases), "--limit", "640", "--batch-size", "64",
              "--bn-calib-images", "128", "--device", "cpu", "--out", "{OUT}"]
        results.append(suite("train", work, tr, [*tr, "--resume"], train_files))

        profile("tiny", [16], LocalBackend(), table, protocol={"warmup": 1, "rounds": 1, "runs": 3}, calibrate=2, progress=False)
        sp = get_space("tiny")
        X = sample_archs(sp, 60, seed=0)
        pred = work / "pred.json"
        AccuracyPredictor(sp, "ridge").fit(X, 0.5 + 0.4 * X.sum(1) / X.sum(1).max()).save(pred)
        se = ["search", "--space", "tiny", "--table", str(table), "--predictor", str(pred), "--objectives", "top1,latency,macs",
              "--pop-size", "12", "--generations", "4", "--seed", "3", "--out", "{OUT}"]
        results.append(suite("search", work, se, [*se, "--resume"], search_files))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = "\n".join(f"| {r['job']} | {r['writes']} | {r['kills']} | {r['identical']} | {', '.join(r['failures']) or '-'} |"
                     for r in results)
    body = f"""Every file write of each job (atomic replace or fsynced append), killed with SIGKILL just before and just
after it, then resumed; the files left are compared with an uninterrupted run's (weights and metrics less
wall-clock figures for training; entries and metadata for a latency table; byte for byte for search).
Total {time.perf_counter() - t0:.0f} s.

| job | writes | kills tried | identical after resume | different |
|---|---|---|---|---|
{rows}
"""
    print(body)
    update_section("Crash suite", body, "python benchmarks/crash.py", machine())


if __name__ == "__main__":
    main()
