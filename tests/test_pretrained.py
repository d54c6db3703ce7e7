"""The shipped CIFAR-10 supernet: it loads on a CPU, is what its card says, reproduces its recorded
logits, and its built-in name works wherever a checkpoint or predictor path does."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from edgenas import Supernet, get_space
from edgenas.data import checkpoint_data, fingerprint, load_data
from edgenas.evaluate import reference_logits
from edgenas.pretrained import ROOT, card, resolve_checkpoint
from edgenas.search import AccuracyPredictor
from edgenas.supernet import read_checkpoint

REPO = Path(__file__).resolve().parent.parent

CARD = card("cifar10")


def edgenas(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgenas.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def test_shipped_weights_are_what_the_card_records():
    path = resolve_checkpoint("cifar10")
    assert path == ROOT / "cifar10" / "supernet.pt" and path.stat().st_size < 16e6
    assert hashlib.sha256(path.read_bytes()).hexdigest() == CARD["weights"]["sha256"]
    ckpt = read_checkpoint("cifar10", CARD["space"])  # the space check refuses weights of another definition
    assert ckpt["space"] == CARD["space"] == "cifar-mbv3"
    assert ckpt["space_digest"] == CARD["space_digest"] == get_space("cifar-mbv3").digest()
    assert ckpt["data"]["fingerprint"] == CARD["data"]["fingerprint"]
    net = Supernet.from_checkpoint(ckpt)
    assert all(p.dtype == torch.float32 for p in net.parameters())  # stored in bf16, loaded back to fp32


def test_shipped_weights_reproduce_the_recorded_logits():
    net = Supernet.load("cifar10")
    got = reference_logits(net, read_checkpoint("cifar10")["data"])
    for name in ("largest", "smallest"):
        want = np.array(CARD["reference_logits"][name])
        assert np.allclose(np.array(got[name]), want, atol=2e-3, rtol=1e-3), name


def test_a_file_named_like_a_builtin_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cifar10").write_bytes(b"not a checkpoint")
    assert resolve_checkpoint("cifar10") == Path("cifar10")
    with pytest.raises(Exception, match="not a PyTorch checkpoint"):
        read_checkpoint("cifar10")


def test_builtin_predictor_agrees_with_the_shipped_weights():
    pred = AccuracyPredictor.load("cifar10", "cifar-mbv3")
    space = get_space("cifar-mbv3")
    subnets = CARD["top1"]["subnets"]
    X = np.stack([space.encode(space.arch(v["arch"])) for v in subnets.values()])
    predicted = pred.top1_vectors(X)
    measured = np.array([v["top1"] for v in subnets.values()])
    # fitted on these weights' subnets of every size, labelled with the card's own protocol (11 of these 12 unseen): a predictor
    # of other weights, or one fitted on mid-sized subnets only (2 points low on the largest), would not agree
    assert np.all(np.abs(predicted - measured) < 0.01) and kendalltau(predicted, measured).statistic > 0.7
    assert pred.report["holdout"]["kendall_tau"] > 0.8 and pred.report["labels"]["images"] == 5000


def test_eval_with_the_builtin_name_and_no_dataset_uses_the_shipped_sample(tmp_path):
    # run where the path the supernet was trained from does not exist, as on a user's machine
    # and without --space: the checkpoint's (cifar-mbv3, whose smallest subnet "min" names)
    proc = edgenas("eval", "--checkpoint", "cifar10", "--arch", "min", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["n"] == 1000 and res["recalibrated"]
    assert abs(res["top1"] - CARD["top1"]["subnets"]["smallest"]["top1"]) < 0.04  # 1,000 of the 5,000 held-out images


def test_training_data_is_recognised_at_another_path(tmp_path):
    import zipfile

    rng = np.random.default_rng(0)
    for name in ("a.zip", "b.zip"):
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            gen = np.random.default_rng(1)
            for c in range(3):
                for i in range(6):
                    img = gen.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                    from PIL import Image

                    f = tmp_path / "x.png"
                    Image.fromarray(img).save(f)
                    zf.write(f, f"class{c}/{i}.png")
    first = load_data(f"imagefolder:{tmp_path / 'a.zip'}", val_per_class=2, split="random", seed=3)
    moved = checkpoint_data(first.info, f"imagefolder:{tmp_path / 'b.zip'}")
    assert moved.own and torch.equal(moved.val.images, first.val.images) and torch.equal(moved.train.labels, first.train.labels)
    other = load_data(f"imagefolder:{tmp_path / 'a.zip'}").train
    other.images = torch.from_numpy(rng.integers(0, 256, tuple(other.images.shape), dtype=np.uint8))
    assert fingerprint(other) != first.info["fingerprint"]
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as zf:
        for c in range(3):
            zf.write(tmp_path / "x.png", f"class{c}/0.png")
    foreign = checkpoint_data(first.info, f"imagefolder:{tmp_path / 'c.zip'}")
    assert not foreign.own and len(foreign.val) == 3  # other images of the same classes: scored whole


def test_missing_training_data_is_a_clear_error(tmp_path):
    info = dict(read_checkpoint("cifar10")["data"], fingerprint="0" * 16, spec=f"imagefolder:{tmp_path / 'gone.zip'}")
    with pytest.raises(Exception, match="not on this machine; give --data"):
        checkpoint_data(info)


def test_quickstart_cifar10_searches_and_exports_without_training(tmp_path):
    """For a device reached by a runner command (this machine's agent here; `ssh board ...` for a user): tables, the
    models' timings and their drift come from the device, the rest runs here."""
    runner = f"{shlex.quote(sys.executable)} {shlex.quote(str(REPO / 'deploy' / 'agent.py'))}"
    # 4 calibration networks a table (the least the drift check takes), not the default 16: the same pipeline, sooner
    proc = edgenas("quickstart", "--cifar10", "--calibrate", "4", "--out", str(tmp_path / "qs"), "--json", "--device", "remote",
                   "--runner", runner, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout)
    assert res["checkpoint"] == "cifar10" and not (tmp_path / "qs" / "supernet").exists()
    assert res["device"]["device"] == "remote" and "profiling the device (" in proc.stderr
    for table in res["tables"].values():
        assert json.loads(Path(table).read_text())["meta"]["device"]["runner"] == runner
    again = edgenas("quickstart", "--cifar10", "--calibrate", "4", "--out", str(tmp_path / "qs"), cwd=tmp_path, timeout=300)
    assert again.returncode == 2 and "another supernet, predictor or device" in again.stderr  # this CPU is not the device
    fp32 = res["models"]["fp32"]
    assert Path(fp32["path"]).is_file() and fp32["drift"] > 0 and abs(fp32["drift_corrected_error"]) < 0.5  # this CPU's drift apart
    assert fp32["top1"] > 0.75  # on the shipped held-out images, after BN recalibration on the shipped training images
    assert abs(fp32["top1"] - res["predicted_top1"]) < 0.05
