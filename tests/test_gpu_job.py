"""The GPU job script end to end on this CPU (tiny space, seconds of budget), with the packages the
GPU image lacks (pymoo, fvcore, plotly, onnxslim) made unimportable, as they are there."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from helpers import image_folder

from edgenas import Supernet, get_space
from edgenas.data import checkpoint_data
from edgenas.evaluate import Evaluator
from edgenas.search import AccuracyPredictor
from edgenas.supernet import read_checkpoint

ROOT = Path(__file__).resolve().parent.parent
WITHOUT = """
import importlib.abc, runpy, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"pymoo", "fvcore", "plotly", "onnxslim"}:
            raise ImportError(f"{name} is not installed on the GPU image")
sys.meta_path.insert(0, Missing())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def job(*args: str, timeout: float = 300) -> str:
    proc = subprocess.run([sys.executable, "-c", WITHOUT, str(ROOT / "benchmarks" / "gpu_job.py"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_probe_train_detached_poll_and_pack_on_cpu(tmp_path):
    folder = tmp_path / "imgs"  # a streamed loader needs files
    image_folder(folder, 2, 48, 20)
    out = job("probe", "--space", "tiny", "--data", f"imagefolder:{folder}", "--batch-sizes", "16", "32", "--steps", "1",
              "--device", "cpu", "--stream-workers", "2", "--stream-batches", "2", "--scratch", str(tmp_path / "scratch"),
              "--out", str(tmp_path / "probe.json"))
    probe = json.loads((tmp_path / "probe.json").read_text())
    assert [r["batch_size"] for r in probe["rows"]] == [16, 32] and all(r["sandwich_images_per_s"] > 0 for r in probe["rows"])
    assert all(r["sandwich_first_step_s"] > 0 and r["cudnn_benchmark"] is False for r in probe["rows"])
    assert probe["stream"]["images"] == 64 and probe["stream"]["images_per_s"] > 0  # batches 2 and 3 of 32 timed
    assert "one-network" in out and "streamed loader, 2 workers" in out
    # past its deadline the probe starts nothing more (a compile mode's first steps can take minutes on a GPU) and still writes
    job("probe", "--space", "tiny", "--data", f"imagefolder:{folder}", "--batch-sizes", "16", "--steps", "1", "--device", "cpu",
        "--compile", "off", "reduce-overhead", "--cudnn-benchmark", "--stream-workers", "2", "--deadline", "0", "--scratch", str(tmp_path / "scratch"),
        "--out", str(tmp_path / "late.json"))
    late = json.loads((tmp_path / "late.json").read_text())
    assert [(r["compile"], "error" in r) for r in late["rows"]] == [(False, False), ("reduce-overhead", True)]
    assert "deadline" in late["rows"][1]["error"] and "deadline" in late["stream"]["error"] and late["rows"][0]["cudnn_benchmark"]

    run = tmp_path / "run"
    job("start", "--run", str(run), "--time-budget", "0.15", "--", "--space", "tiny", "--data", "digits", "--limit", "320",
        "--batch-size", "64", "--bn-calib-images", "64", "--device", "cpu")
    assert "epochs done" in job("poll", "--run", str(run))  # at once, whatever the training reached

    dest = tmp_path / "out"  # pack waits for the training to end (a checkpoint mid-run is not the result)
    job("pack", "--run", str(run), "--dest", str(dest), "--predictor-samples", "20", "--random", "2", "--calib-images", "64",
        "--device", "cpu", "--wait", "240", timeout=400)
    assert "alive False" in job("poll", "--run", str(run)) and "time budget" in (run / "train.log").read_text()
    assert {p.name for p in dest.iterdir() if not p.name.startswith(".")} == {
        "supernet.bf16.pt", "predictor.json", "predictor.labels.npz", "results.json", "metrics.csv", "config.yaml", "train.log"}
    assert all(p.stat().st_size < 16e6 for p in dest.iterdir())
    res = json.loads((dest / "results.json").read_text())
    assert set(res["eval"]) == {"largest", "smallest", "random-0", "random-1"} and res["training_finished"]

    sp = get_space("tiny")
    packed = Supernet.load(dest / "supernet.bf16.pt", sp)  # bf16 on disk, fp32 in memory
    assert all(p.dtype == torch.float32 for p in packed.parameters())
    full = read_checkpoint(run / "latest.pt", sp)
    ev = Evaluator(checkpoint_data(full["data"]), calib_images=64)
    assert ev.top1(packed, sp.max_arch(24)) == res["eval"]["largest"]["top1"]  # the pack scores the weights it ships
    report = AccuracyPredictor.load(dest / "predictor.json", sp).report
    assert report["holdout"]["n"] == 5 and report["sampling"] == "stratified"
    # its labels are of those weights: a CPU adds to them (more subnets) without measuring the pack's again
    proc = subprocess.run([sys.executable, "-m", "edgenas.cli", "predictor", "--space", "tiny", "--checkpoint", str(dest / "supernet.bf16.pt"),
                           "--samples", "24", "--calib-images", "64", "--out", str(dest / "predictor.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "20 of 24 subnets already labelled" in proc.stderr


def test_session_continues_a_run_and_packs_by_its_deadline(tmp_path, monkeypatch):
    """One call: training continued from earlier weights (--init) for what the deadline leaves, then the pack,
    whose predictor labels only as many subnets as the time left holds."""
    common = ["--space", "tiny", "--data", "digits", "--limit", "320", "--batch-size", "64", "--bn-calib-images", "64", "--device", "cpu"]
    first = tmp_path / "first"
    job("start", "--run", str(first), "--time-budget", "0.1", "--", *common, "--epoch-scale", "0.25")
    job("poll", "--run", str(first), "--wait", "240", timeout=300)
    folder = tmp_path / "data" / "imgs"  # streamed after training: does decoding from disk keep up? (one batch of 512 timed)
    image_folder(folder, 2, 520, 8)
    with tarfile.open(tmp_path / "data" / "imgs.tar.xz", "w:xz") as tar:  # it travels packed, and is unpacked first
        tar.add(folder, arcname="imgs")
    shutil.rmtree(folder)
    dest = tmp_path / "out"
    out = job("session", "--run", str(tmp_path / "more"), "--dest", str(dest), "--deadline", "85", "--pack-reserve", "30",
              "--predictor-samples", "100000", "--random", "2", "--calib-images", "64", "--device", "cpu", "--stream-workers", "2",
              "--stream-data", f"imagefolder:{folder}", "--stream-batches", "1", "--save-every", "0",
              "--unpack", str(tmp_path / "data" / "imgs.tar.xz"), "--setup-probe", "bf16", "bf16-static", "fp32-v7", "--setup-space", "tiny",
              "--setup-batch-size", "32", "--", *common, "--init", str(first / "latest.pt"), timeout=400)
    assert "starting from" in out and ("subnets labelled in" in out or "no predictor: only" in out) and "streamed loader, 2 workers" in out
    assert "saved the last finished epoch under" in out  # while training ran: a call killed before its pack keeps weights
    cfg = (dest / "config.yaml").read_text()
    assert "init_record:" in cfg
    assert 0.1 < float(cfg.split("time_budget: ")[1].split()[0]) <= 0.92  # (85 - 30) s, less the unpacking and the set-up probe
    res = json.loads((dest / "results.json").read_text())
    setup = json.loads((dest / "setup.json").read_text())  # each setting timed in its own process; training runs the one picked
    assert [r["setting"] for r in setup["rows"]] == ["bf16", "bf16-static", "fp32-v7"] and all(len(r["subnet_first_s"]) == 3 for r in setup["rows"])
    assert all(0 < r["new_shapes"] <= r["space_shapes"] for r in setup["rows"])
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the card reports the probe: a row per setting, and the choice
    from pretrained_card import setup_lines

    table = setup_lines(res["setup"])
    assert f"trained with `{setup['train']}`, labelled with `{setup['labels']}`" in table[0]
    assert [ln.split(" | ")[0] for ln in table[4:-1]] == ["| bf16", "| bf16-static", "| fp32-v7"]
    assert res["setup"]["train"] == setup["train"] and f"set-up probe: training with {setup['train']}" in out
    assert res["static_shapes"] == (setup["labels"] == "bf16-static")
    assert ("bf16: false" in cfg) == (setup["train"] == "fp32-v7") and ("static_shapes: true" in cfg) == (setup["train"] == "bf16-static")
    assert set(res["eval"]) == {"largest", "smallest", "random-0", "random-1"}
    assert res["stream"]["images"] == 512 and res["stream"]["images_per_s"] > 0
    assert res["unpacked"]["files"] == 1040 and len(list(folder.glob("c1/*.png"))) == 520
    if res["predictor"] is not None:  # a slow machine may leave too little time for one
        assert res["predictor"]["n_train"] + res["predictor"]["holdout"]["n"] < 100000


def test_the_set_up_probe_checks_a_compiled_setting_against_eager_steps(tmp_path):
    """bf16-static-graphs compiles the static-shapes supernet once for every subnet (the cudagraphs backend: on a
    CPU it replays no graphs but traces the same way); its gradients must be eager steps' for it to be chosen."""
    out = tmp_path / "setup.json"
    job("setup", "--settings", "bf16", "bf16-static-graphs", "--space", "tiny", "--device", "cpu", "--steps", "1", "--batch-size", "16",
        "--calib-images", "32", "--val-images", "32", "--out", str(out), timeout=400)
    rows = {r["setting"]: r for r in json.loads(out.read_text())["rows"]}
    graphs = rows["bf16-static-graphs"]
    assert "error" not in graphs and graphs["compile"] == "cudagraphs" and "grad_rel_err" not in rows["bf16"]
    assert 0 <= graphs["grad_rel_err"] < 0.02  # bf16 rounding apart, the same gradients
    assert graphs["largest_first_s"] > graphs["largest_step_s"]  # its compilation, in the first step


def test_the_set_up_probe_picks_the_setting_of_least_expected_time(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from gpu_job import choose

    def row(name, largest, step, first, label, shapes=120, compiling=0.0):  # seconds: largest network's step, a subnet's step, its
        return {"setting": name, "largest_step_s": largest, "subnet_step_s": [step] * 3, "subnet_first_s": [first] * 3,  # first step,
                "eval_first_s": [label] * 3, "new_shapes": 30, "space_shapes": shapes,  # its first label, the largest's first step's extra
                "largest_first_s": largest + compiling}

    bf16 = row("bf16", 0.045, 0.040, 2.0, 4.8)  # 5.9 s of set-up for the 30 shapes new to the probe: 23.5 s for the space's 120
    assert choose([bf16, row("fp32-v7", 0.046, 0.040, 0.1, 0.3)], 300) == {"train": "fp32-v7", "labels": "fp32-v7"}  # 2% slower
    assert choose([bf16, row("fp32-v7", 0.054, 0.043, 0.1, 0.3)], 300) == {"train": "bf16", "labels": "fp32-v7"}  # 20%: +60 s
    assert choose([bf16, row("fp32-v7", 0.054, 0.043, 0.1, 0.3)], 60)["train"] == "fp32-v7"  # over a minute of training, +12 s
    # static shapes: every subnet's step as slow as the largest's (12.5% here), no set-up, labels without it either
    many = row("bf16", 0.045, 0.040, 2.0, 4.8, shapes=400)  # 78 s of set-up, as the H200's all-elastic phase paid (76 s)
    assert choose([bf16, row("bf16-static", 0.045, 0.045, 0.045, 0.2)], 300) == {"train": "bf16", "labels": "bf16-static"}
    assert choose([many, row("bf16-static", 0.045, 0.045, 0.045, 0.2, shapes=400)], 300)["train"] == "bf16-static"
    # one compiled graph for every subnet: steps 40% faster (launch-bound), for the compilation in the largest's first step
    graphs = row("bf16-static-graphs", 0.027, 0.027, 0.027, 0.2, shapes=400, compiling=120.0)
    assert choose([many, graphs], 300)["train"] == "bf16-static-graphs"  # 180 + 120 s against 300 + 78 s
    assert choose([many, graphs], 60)["train"] == "bf16"  # 36 + 120 s against 60 + 78 s
    assert choose([many, graphs | {"grad_rel_err": 0.3}], 300)["train"] == "bf16"  # fast, but not computing what eager steps do
    assert choose([bf16, {"setting": "fp32-v7", "error": "TimeoutExpired"}]) == {"train": "bf16", "labels": "bf16"}
    failed = {"setting": "bf16", "error": "RuntimeError"}  # the ones that ran, not the one that failed
    assert choose([failed, row("fp32-v7", 0.01, 0.01, 0.0, 0.1)]) == {"train": "fp32-v7", "labels": "fp32-v7"}
    assert choose([failed, row("bf16-static", 0.045, 0.045, 0.045, 0.2), graphs], 400) == {"train": "bf16-static-graphs",  # 240 + 120 s
                                                                                         "labels": "bf16-static"}  # against 400 s
    assert choose([failed, {"setting": "fp32-v7", "error": "TimeoutExpired"}]) == {"train": "bf16", "labels": "bf16"}


def test_the_card_of_a_continued_pack_keeps_the_earlier_sessions(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from pretrained_card import earlier_sessions

    dest = tmp_path / "cifar10"
    dest.mkdir()
    first = {"gpu": "NVIDIA H100 80GB HBM3", "gpu_minutes": 11.7, "recipe": "train-config.yaml"}
    (dest / "card.json").write_text(json.dumps({"weights": {"sha256": "ab12" * 16}, "training": first}))
    (dest / "metrics.csv").write_text("phase,epoch\nfull,1\n")
    (dest / "train-config.yaml").write_text("space: cifar-mbv3\n")
    assert earlier_sessions(dest, None) == []  # a fresh run: nothing before it
    with pytest.raises(SystemExit, match="not the weights in"):
        earlier_sessions(dest, {"checkpoint": "cifar10", "sha256": "ffff0000"})
    sessions = earlier_sessions(dest, {"checkpoint": "cifar10", "sha256": "ab12ab12"})
    assert sessions == [{**first, "recipe": "train-config-session-1.yaml", "metrics": "metrics-session-1.csv"}]
    assert (dest / "metrics-session-1.csv").read_text() == "phase,epoch\nfull,1\n"
    assert (dest / "train-config-session-1.yaml").read_text() == "space: cifar-mbv3\n"

    # its BENCHMARKS.md section stays too, under the session's title, once, after the section that replaces it
    import _report

    monkeypatch.setattr(_report, "BENCHMARKS", tmp_path / "BENCHMARKS.md")
    _report.BENCHMARKS.write_text("# Benchmarks\n\n## GPU: cifar10\n\nfirst run\n\n## Streaming\n\nx\n")
    for _ in range(2):
        _report.keep_section("GPU: cifar10", "GPU: cifar10, session 1")
    _report.update_section("GPU: cifar10", "second run", "cmd", "machine")
    text = _report.BENCHMARKS.read_text()
    assert text.count("first run") == 1 and text.index("second run") < text.index("## GPU: cifar10, session 1\n\nfirst run") < text.index("## Streaming")


def test_session_stops_a_training_that_overruns_and_still_packs(tmp_path):
    """A schedule that cannot fit (every phase needs an epoch) is stopped --grace seconds after its end, so the
    call keeps its pack: the last finished epoch, or one clear line when none finished."""
    dest = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", WITHOUT, str(ROOT / "benchmarks" / "gpu_job.py"), "session", "--run",
                           str(tmp_path / "run"), "--dest", str(dest), "--deadline", "40", "--pack-reserve", "28", "--grace", "1",
                           "--predictor-samples", "30", "--random", "1", "--calib-images", "64", "--device", "cpu", "--",
                           "--space", "tiny", "--data", "digits", "--batch-size", "16", "--bn-calib-images", "64", "--device", "cpu"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert "overran its 0.2 min by 1 s; stopping it" in proc.stdout
    if proc.returncode == 0:
        res = json.loads((dest / "results.json").read_text())
        assert not res["training_finished"] and res["metrics_last"]["epoch_index"] < 10
    else:
        assert "holds no finished epoch yet" in proc.stderr


def test_unpack_refuses_members_that_would_land_outside_its_folder(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from gpu_job import unpack

    data = tmp_path / "data"
    data.mkdir()
    escape = tarfile.TarInfo("../escaped.txt")
    escape.size = 4
    link = tarfile.TarInfo("imgs/link")  # a link out of the folder: reading the data would then read that file
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    for member in (escape, link):
        archive = data / "bad.tar.xz"
        with tarfile.open(archive, "w:xz") as tar:
            tar.addfile(member, io.BytesIO(b"evil") if member.isfile() else None)
        with pytest.raises(SystemExit, match="bad.tar.xz"):
            unpack(archive)
    assert not (tmp_path / "escaped.txt").exists() and not (data / "imgs" / "link").exists()
