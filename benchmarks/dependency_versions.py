"""The README's test command under the oldest and the newest versions pyproject.toml admits.

    python benchmarks/dependency_versions.py [--floor-python python3.10] [--newest-python python3.13] \
        [--agent-python python3.8] [--only floors|newest|agent]

"floors": every dependency (the dev extra's included) pinned to its pyproject lower bound, on the
oldest Python `requires-python` admits; "newest": whatever pip resolves today, on a new Python.
A lower bound nobody installs is a guess: this is what keeps them true. "agent": deploy/'s scripts
on the oldest Python they promise (3.8), with only numpy, onnxruntime and Pillow, driven by this
checkout through `--device remote` as a board would be.  Each environment is a fresh venv under
benchmarks/_work/versions (the installs download torch: several GB).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _report import machine, update_section

from edgenas.io import write_json

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "_work" / "versions"
SHOWN = ["torch", "torchvision", "numpy", "onnx", "onnxruntime", "pymoo", "fvcore", "onnxslim", "scipy", "scikit-learn",
         "matplotlib", "plotly", "tqdm", "pyyaml", "pillow", "pytest", "hypothesis", "ruff", "mypy"]


def requirements() -> list[str]:
    """The `dependencies` and `dev` lists of pyproject.toml (tomllib is not in Python 3.10)."""
    text = (ROOT / "pyproject.toml").read_text()
    lists = [re.search(rf"^{key} = \[(.*?)\]", text, re.S | re.M) for key in ("dependencies", "dev")]
    return [r for m in lists if m for r in re.findall(r'"([^"]+)"', m.group(1))]


def floors() -> list[str]:
    """`name>=X` -> `name==X` for every requirement with a lower bound."""
    pins = []
    for req in requirements():
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*>=\s*([^,;\s]+)", req.strip())
        if m:
            pins.append(f"{m.group(1)}=={m.group(2)}")
    return pins


def make_venv(name: str, python: str, packages: list[str]) -> tuple[str, dict]:
    """A fresh venv with `packages` pip-installed: its interpreter, and its Python and package versions
    (or the install's last lines of error)."""
    venv = WORK / name
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    install = subprocess.run([py, "-m", "pip", "install", "-q", *packages], capture_output=True, text=True)
    if install.returncode:
        return py, {"name": name, "python": python, "install": install.stderr.strip().splitlines()[-3:], "versions": {}}
    listed = json.loads(subprocess.run([py, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True).stdout)
    pyver = subprocess.run([py, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True).stdout.strip()
    return py, {"name": name, "python": pyver, "versions": {p["name"].lower(): p["version"] for p in listed}}


def run_env(name: str, python: str, pins: list[str]) -> dict:
    constraints = WORK / f"{name}.constraints.txt"
    constraints.write_text("".join(p + "\n" for p in pins))
    t0 = time.perf_counter()
    py, info = make_venv(name, python, ["-e", f"{ROOT}[dev]", "-c", str(constraints)])
    if "install" in info:
        return info
    print(f"{name}: installed in {time.perf_counter() - t0:.0f} s; running the README's test command", flush=True)
    t0 = time.perf_counter()
    lint = {tool: subprocess.run([py, "-m", tool, *args], cwd=ROOT, capture_output=True, text=True)
            for tool, args in (("ruff", ["check", "--no-cache", "."]), ("mypy", ["--cache-dir", "/dev/null"]))}
    lint_failures = [f"{tool}: {ln}" for tool, r in lint.items() if r.returncode
                     for ln in (r.stdout + r.stderr).strip().splitlines()[-10:]]
    tests = subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=line", "-rfE"], cwd=ROOT, capture_output=True, text=True)
    summary = tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else tests.stderr.strip()[-300:]
    summary = ", ".join(f"{tool} {'failed' if r.returncode else 'passed'}" for tool, r in lint.items()) + "; " + summary
    failures = lint_failures + [ln for ln in tests.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    print(f"{name}: {summary}", flush=True)
    rc = tests.returncode or any(r.returncode for r in lint.values())
    return {**info, "rc": int(rc), "summary": summary, "failures": failures, "minutes": (time.perf_counter() - t0) / 60}


def agent_env(python: str) -> dict:
    """Profile, deploy-check and classify through deploy/ on `python`; edgenas itself runs here."""
    work = WORK / "agent-files"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    py, info = make_venv("agent", python, ["numpy", "onnxruntime", "pillow"])
    if "install" in info:
        return info
    runner = f"{py} {ROOT / 'deploy' / 'agent.py'}"
    edgenas = [sys.executable, "-m", "edgenas.cli"]
    table, model, image = work / "table.json", work / "model.onnx", work / "image.png"
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 120, 40)).save(image)
    steps = {
        "profile --device remote": edgenas + ["profile", "--device", "remote", "--runner", runner, "--space", "tiny", "--resolution", "16",
                                              "--calibrate", "3", "--warmup", "2", "--rounds", "2", "--runs", "5", "--out", str(table)],
        "export": edgenas + ["export", "--space", "tiny", "--arch", '{"ks":[3,3,3,3,3,3],"e":[2,2,2,2,2,2],"d":[1,1,1],"r":16}',
                             "--out", str(model)],
        "deploy check --device remote": edgenas + ["deploy", "check", str(model), "--table", str(table), "--device", "remote", "--runner", runner],
        "deploy/infer.py": [py, str(ROOT / "deploy" / "infer.py"), str(model), str(image)],
    }
    t0, failures = time.perf_counter(), []
    for step, cmd in steps.items():
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            failures.append(f"{step}: exit {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}")
    summary = f"{len(steps) - len(failures)} of {len(steps)} steps passed (" + ", ".join(steps) + ")"
    ort = info["versions"].get("onnxruntime")
    if table.exists():  # the table must have been measured by the agent's onnxruntime, not this checkout's
        named = json.loads(table.read_text())["meta"]["device"].get("ort_version")
        if named != ort:
            failures.append(f"profile: the table names onnxruntime {named}, the agent has {ort}")
            summary += "; the table was not measured by the agent"
    print(f"agent: {summary}", flush=True)
    return {**info, "rc": int(bool(failures)), "summary": summary, "failures": failures, "minutes": (time.perf_counter() - t0) / 60}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--floor-python", default="python3.10", help="the oldest Python requires-python admits")
    ap.add_argument("--newest-python", default=sys.executable)
    ap.add_argument("--agent-python", default="python3.8", help="the oldest Python deploy/ promises")
    ap.add_argument("--only", choices=["floors", "newest", "agent"])
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    envs = {"floors": (args.floor_python, floors()), "newest": (args.newest_python, [])}
    results = [run_env(name, py, pins) for name, (py, pins) in envs.items() if args.only in (None, name)]
    if args.only in (None, "agent"):
        results.append(agent_env(args.agent_python))
    # every environment's latest run stays in the table, so --only refreshes one row
    store = Path(__file__).with_name("dependency_versions.results.json")
    kept = json.loads(store.read_text()) if store.exists() else {}
    today = time.strftime("%Y-%m-%d")
    kept.update({r["name"]: {**r, "date": today} for r in results})
    write_json(store, kept)
    rows_of = [kept[n] for n in ("floors", "newest", "agent") if n in kept]

    shown = [n for n in SHOWN if any(n in r["versions"] for r in rows_of)]
    rows = ["| environment | date | Python | " + " | ".join(shown) + " | tests |", "|" + "---|" * (len(shown) + 4)]
    for r in rows_of:
        summary = re.sub(r" in [\d.]+s \([\d:]+\)", "", r.get("summary", ""))  # pytest's own timing: the minutes follow
        outcome = f"{summary} ({r['minutes']:.1f} min)" if "summary" in r else "install failed: " + " ".join(r["install"])
        rows.append(f"| {r['name']} | {r['date']} | {r['python']} | " + " | ".join(r["versions"].get(n, "") for n in shown) + f" | {outcome} |")
    failed = [f"- {r['name']}: {f}" for r in rows_of for f in r.get("failures", [])]
    body = ("Every dependency at its pyproject.toml lower bound (\"floors\", on the oldest Python that `requires-python`\n"
            "admits), and at the newest release pip resolves (\"newest\"); the README's test command (ruff, mypy, the whole\n"
            "test suite) in each, in a fresh venv.\n"
            "\"agent\": deploy/agent.py and deploy/infer.py on the oldest Python they promise, with only numpy, onnxruntime and\n"
            "Pillow, driven from this checkout through `--device remote`: a tiny table profiled, a model deploy-checked and classified.\n\n"
            + "\n".join(rows) + ("\n\nFailures:\n\n" + "\n".join(failed) if failed else "") + "\n")
    update_section("Dependency versions", body, "python benchmarks/dependency_versions.py [--only floors|newest|agent]", machine())
    print(body)
    if any(r.get("rc", 1) for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
