"""Shared steps of the CPU benchmarks: train a run, and fit an accuracy predictor on its supernet."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from edgenas import Supernet, get_space, jobs
from edgenas.data import DataSplit, checkpoint_data
from edgenas.search.predictor import fit_predictor as library_fit_predictor
from edgenas.supernet import read_checkpoint
from edgenas.train import Trainer, load_config


def train(settings: dict[str, Any], out: Path) -> tuple[float, list[dict], Supernet, DataSplit]:
    """(seconds, per-epoch metrics, trained supernet, its data split)."""
    t = time.perf_counter()
    Trainer(load_config(None, settings), out).run()
    seconds = time.perf_counter() - t
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    sp = get_space(settings["space"])
    ckpt = out / "latest.pt"
    return seconds, rows, Supernet.load(ckpt, sp), checkpoint_data(read_checkpoint(ckpt, sp).get("data"))


def train_run(work: Path, name: str, cfg: dict[str, Any], data: str, minutes: float | None = None) -> list[dict]:
    """Per-epoch metrics of ``edgenas train`` on CPU with settings ``cfg`` (written beside the run as
    ``name.yaml``), run ``work/name``: a finished run is read, not retrained, and an interrupted one resumes."""
    run, path = work / name, work / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    overrides: dict[str, Any] = {"data": data, "device": "cpu"}
    if minutes is not None:
        overrides["time_budget"] = minutes
    jobs.train(str(run), config=str(path), overrides=overrides, resume=(run / "config.yaml").exists())
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def fit_predictor(ckpt: Path, n: int = 300, seed: int = 2, calib_images: int = 1000, progress: bool = True):
    """(X, top-1, predictor fitted with 20% held out, seconds) through the library's one code path."""
    t = time.perf_counter()
    pred = library_fit_predictor(get_space(read_checkpoint(ckpt)["space"]), ckpt, n, seed=seed, calib_images=calib_images,
                                 progress=progress)
    return pred.X, pred.y, pred, time.perf_counter() - t
