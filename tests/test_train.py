import json

import numpy as np
import pytest
import torch
import yaml
from helpers import image_folder

from edgenas import Arch, CheckpointError, EdgeNASError, Supernet, get_space
from edgenas.cli import main
from edgenas.data import load_data
from edgenas.evaluate import Evaluator
from edgenas.supernet import read_checkpoint
from edgenas.train import Phase, TrainConfig, Trainer, default_phases, kd_loss, load_config, sandwich, step_rng

PHASES = [
    {"name": "full", "epochs": 2, "lr": 0.1, "ks": "max", "e": "max", "d": "max"},
    {"name": "kernel", "epochs": 1, "lr": 0.02, "ks": "all", "e": "max", "d": "max"},
    {"name": "depth", "epochs": 1, "lr": 0.02, "ks": "all", "e": "max", "d": "all"},
    {"name": "expand", "epochs": 1, "lr": 0.02, "ks": "all", "e": "all", "d": "all"},
]


def tiny_config(**kw) -> TrainConfig:
    base = dict(space="tiny", data="digits", batch_size=64, bn_calib_images=128, device="cpu", phases=PHASES)
    base.update(kw)
    return load_config(None, base)


def run_killed_at_step(monkeypatch, cfg: TrainConfig, out, step: int) -> None:
    """Train ``cfg`` into ``out``, interrupted (as by Ctrl-C) at its ``step``-th training step (probe steps count)."""
    calls, real_step = {"n": 0}, Trainer._step

    def dies(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == step:
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(Trainer, "_step", dies)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, out, progress=False).run()
    monkeypatch.setattr(Trainer, "_step", real_step)

def test_default_schedule_follows_ofa_order():
    names = [p.name for p in default_phases(get_space("ofa-mbv3"))]
    assert names == ["full", "kernel", "depth-1", "depth", "expand-1", "expand"]
    c = default_phases(get_space("ofa-mbv3"))[2].choices(get_space("ofa-mbv3"))
    # a space without elastic activation / SE / width: one style, the full width
    assert c == {"ks": (3, 5, 7), "e": (6,), "d": (3, 4), "style": (0,), "w": (1.0,)}
    assert [p.name for p in default_phases(get_space("tiny"))] == ["full", "kernel", "depth", "expand"]
    mixed = get_space("tiny-mixed")  # elastic activation / SE is trained from the first phase
    assert all(p.choices(mixed)["style"] == (0, 1, 2, 3) for p in default_phases(mixed))


def test_sandwich_is_seeded_by_step_and_respects_the_phase():
    sp = get_space("ofa-mbv3")
    phase = Phase("depth", 1, 0.1, "all", "max", "all")
    a = sandwich(sp, phase, step_rng(0, 17), 3, 160)
    b = sandwich(sp, phase, step_rng(0, 17), 3, 160)
    c = sandwich(sp, phase, step_rng(0, 18), 3, 160)
    assert a == b and a != c
    assert a[0] == sp.max_arch(160)
    assert a[1] == sp.arch({"ks": [3] * 20, "e": [6] * 20, "d": [2] * 5, "r": 160})
    assert all(set(x.e) == {6} and x.r == 160 for x in a) and len(a) == 5
    full = sandwich(sp, Phase("full", 1, 0.1, "max", "max", "max"), step_rng(0, 1), 3, 224)
    assert full == [sp.max_arch(224)]  # every member is the max: train it once


def test_sandwich_draws_per_stage_styles_after_the_full_phase():
    sp = get_space("tiny-mixed")
    full = sandwich(sp, Phase("full", 1, 0.1, "max", "max", "max", "max"), step_rng(0, 1), 3, 24)
    assert full == [sp.max_arch(24)]
    drawn = [a for step in range(20) for a in sandwich(sp, Phase("kernel", 1, 0.1, "all", "max", "max"), step_rng(0, step), 2, 24)]
    assert drawn[1].act == ("relu",) * 3 and drawn[1].se == (False,) * 3  # the smallest: ReLU, no SE
    assert {(a, s) for x in drawn for a, s in zip(x.act, x.se)} == set(sp.styles)
    with pytest.raises(EdgeNASError, match="style must be 'max' or 'all'"):
        Phase("kernel", 1, 0.1, style="min").choices(sp)


def test_kd_loss():
    t = torch.randn(8, 10)
    assert kd_loss(t, t).abs() < 1e-6
    s = torch.randn(8, 10, requires_grad=True)
    loss = kd_loss(s, t, temperature=2.0)
    loss.backward()
    assert loss > 0 and s.grad.abs().sum() > 0


def test_lr_base_size_scales_learning_rates_with_the_batch(tmp_path):
    """A recipe's learning rates hold for its batch; another --batch-size scales them linearly (timm's lr_base_size)."""
    for base, factor in ((None, 1.0), (32, 2.0), (128, 0.5)):
        t = Trainer(tiny_config(batch_size=64, lr_base_size=base, limit=128), tmp_path / str(base), progress=False)
        phase = t.cfg.phases[1]
        opt = t._optimizer(phase)
        assert t._set_lr(opt, phase, 0, 10, first=False) == pytest.approx(phase.lr * factor)
        assert all(g["lr"] == pytest.approx(phase.lr * factor) for g in opt.param_groups)
    with pytest.raises(EdgeNASError, match="lr_base_size"):
        tiny_config(lr_base_size=0)


def test_config_yaml_round_trip_and_errors(tmp_path):
    cfg = tiny_config()
    path = tmp_path / "c.yaml"
    cfg.dump(path)
    assert load_config(path, {}) == cfg
    path.write_text(yaml.safe_dump({"space": "tiny", "learning_rate": 1}))
    with pytest.raises(EdgeNASError, match=r"unknown training config key\(s\) \['learning_rate'\]"):
        load_config(path, {})
    with pytest.raises(EdgeNASError, match="not a subset"):
        load_config(None, {"space": "tiny", "phases": [{"name": "x", "epochs": 1, "lr": 0.1, "ks": [9]}]})
    with pytest.raises(EdgeNASError, match="resolutions \\[99\\]"):
        load_config(None, {"space": "tiny", "resolutions": [99]})


def test_training_runs_every_phase_and_resumes_exactly(tmp_path, monkeypatch):
    full = Trainer(tiny_config(), tmp_path / "full", progress=False)
    summary = full.run()
    rows = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["full", "full", "kernel", "depth", "expand"]
    assert summary["top1_max"] > 0.3 and rows[-1]["images_per_s"] > 0  # 10 classes: chance is 0.1
    assert all(r["wall_seconds"] >= r["train_seconds"] + r["eval_seconds"] for r in rows)  # writes and set-up between epochs too
    for f in ("config.yaml", "metrics.csv", "latest.pt", "best.pt"):
        assert (tmp_path / "full" / f).is_file()

    # interrupt the same run mid-way through the depth phase, then resume it
    run_killed_at_step(monkeypatch, tiny_config(), tmp_path / "cut", 3 * len(full.loader) + 5)  # dies in the 4th epoch
    ckpt = torch.load(tmp_path / "cut" / "latest.pt", weights_only=True)
    assert (ckpt["phase"], ckpt["epoch"]) == (1, 1)  # the three finished epochs are kept
    resumed = Trainer(tiny_config(), tmp_path / "cut", resume=True, progress=False)
    resumed.run()
    a, b = full.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    cut_rows = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert len(cut_rows) == 5
    # a run begun by an older edgenas, whose rows lack a column, gets every column in metrics.csv
    resumed._write_metrics([{"phase": "full", "loss": 1.0}, {"phase": "full", "loss": 0.5, "wall_seconds": 2.0}])
    header, *lines = (tmp_path / "cut" / "metrics.csv").read_text().splitlines()
    assert header == "phase,loss,wall_seconds" and lines == ["full,1.0,", "full,0.5,2.0"]

    with pytest.raises(EdgeNASError, match="already holds a run"):
        Trainer(tiny_config(), tmp_path / "full", progress=False)
    with pytest.raises(CheckpointError, match="holds no run to resume"):
        Trainer(tiny_config(), tmp_path / "empty", resume=True, progress=False)
    assert not (tmp_path / "empty").exists()


@pytest.mark.parametrize("static", [False, True])
def test_evaluation_recalibrates_without_touching_the_supernet(static):
    """Scored as extracted subnets or, with static shapes, in the supernet itself: the supernet is left as it was
    (weights, BN statistics, active arch, mode) and the two ways classify the same images right."""
    data = load_data("digits", limit=200)
    net = Supernet("tiny", num_classes=10).train()
    sp = get_space("tiny")
    archs = [sp.max_arch(), sp.min_arch(), sp.sample(np.random.default_rng(1)), sp.sample(np.random.default_rng(2))]
    net.activate(archs[2])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ev = Evaluator(data, calib_images=64, static_shapes=static)
    accs = ev.top1_many(net, archs)
    assert accs.shape == (4,) and np.all((0 <= accs) & (accs <= 1))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.arch == archs[2] and net.training and not net.static_shapes
    assert ev.n == len(data.val)
    if static:
        extracted = Evaluator(data, calib_images=64)
        for a in archs:
            assert np.mean(ev.correct(net, a) != extracted.correct(net, a)) <= 0.01
            assert np.mean(ev.correct(net, a, recalibrate=False) != extracted.correct(net, a, recalibrate=False)) <= 0.01


def test_onnxruntime_scores_as_pytorch_does_where_the_work_pays_for_the_export(monkeypatch):
    """On a CPU a subnet's MACs times the held-out images from ORT_MIN_WORK on are scored by ONNX Runtime (its export
    is faster there): each image must get PyTorch's verdict.  Less work stays in PyTorch, and so does any work with
    static shapes (the supernet itself is scored) or bf16."""
    import edgenas.evaluate

    data, sp = load_data("digits", limit=300), get_space("tiny")
    net = Supernet("tiny", num_classes=10, seed=0)
    archs = [sp.max_arch(), sp.min_arch(), sp.sample(np.random.default_rng(3))]
    used = []
    ort_correct = Evaluator._onnxruntime_correct
    monkeypatch.setattr(Evaluator, "_onnxruntime_correct", lambda self, sub, r: used.append(r) or ort_correct(self, sub, r))
    pytorch, ort, default = (Evaluator(data, calib_images=64, onnxruntime=o) for o in (False, True, None))
    for a in archs:
        assert np.sum(ort.correct(net, a) != pytorch.correct(net, a)) <= 1  # float rounding may flip a near tie
    assert used == [a.r for a in archs]
    default.correct(net, archs[0])
    assert len(used) == 3  # tiny's largest on ~60 images: far below ORT_MIN_WORK
    monkeypatch.setattr(edgenas.evaluate, "ORT_MIN_WORK", 1)
    default.correct(net, archs[0])
    assert len(used) == 4
    assert not Evaluator(data, static_shapes=True, onnxruntime=True).onnxruntime and not Evaluator(data, bf16=True).onnxruntime


def test_bn_calibration_takes_batches_as_large_as_memory_allows(monkeypatch):
    """Train-mode BN normalises by batch statistics, so the calibration batch changes the subnet: all
    calibration images go in one batch when they fit, else as many as fit, never fewer than the scoring batch."""
    import edgenas.evaluate
    from edgenas.evaluate import calib_batch_size
    from edgenas.supernet import recalibrate_bn

    data, sp = load_data("digits", limit=300), get_space("tiny")
    net, arch = Supernet("tiny", num_classes=10, seed=0), sp.max_arch(24)
    ev = Evaluator(data, calib_images=200, batch_size=32)
    got = ev.calibrated_subnet(net, arch)
    want = recalibrate_bn(net.extract(arch).to(memory_format=torch.channels_last), [ev._prep(ev.calib.images, 24)]).eval()
    for (k, a), b in zip(got.state_dict().items(), want.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    assert not torch.equal(got.state_dict()["head.final_expand.bn.running_var"],  # batches of 32 would differ
                           recalibrate_bn(net.extract(arch), [ev._prep(ev.calib.images[i:i + 32], 24) for i in range(0, 200, 32)])
                           .state_dict()["head.final_expand.bn.running_var"])
    per_image = edgenas.evaluate.CALIB_BATCH_MEMORY // calib_batch_size(sp, 24, 10**9, 1)
    monkeypatch.setattr(edgenas.evaluate, "CALIB_BATCH_MEMORY", 50 * per_image)
    assert calib_batch_size(sp, 24, 200, 32) == 50 and calib_batch_size(sp, 24, 200, 64) == 64 and calib_batch_size(sp, 24, 40, 32) == 40
    # more images than one batch holds: batches of equal size, none short (a short batch's statistics are the noisiest)
    ev = Evaluator(data, calib_images=210, batch_size=32)
    assert [len(b) for b in ev._calib_batches(sp, 24)] == [42] * 5


def test_bn_recalibration_weights_each_batch_by_its_images():
    """The first BN's input does not depend on any BN, so its statistics over two unequal batches must be
    those of one batch of all the images (PyTorch's cumulative average weights the batches alike)."""
    from edgenas.supernet import recalibrate_bn

    sp = get_space("tiny")
    net = Supernet("tiny", num_classes=10, seed=0).extract(sp.max_arch(24))
    x = torch.randn(100, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    whole = recalibrate_bn(net, [x]).state_dict()
    whole = {k: v.clone() for k, v in whole.items()}
    split = recalibrate_bn(net, [x[:90], x[90:]]).state_dict()
    first = next(k for k in whole if k.endswith("running_mean"))
    torch.testing.assert_close(split[first], whole[first])  # weighted alike: the mean of the two batches' means, which differ


def test_resized_batches_are_cached_only_within_their_memory_bound(monkeypatch):
    """Caching resized batches saves time, but at 224 px they are 4x the decoded images per resolution:
    beyond CACHE_MEMORY they are resized again for each arch, with the same top-1."""
    import edgenas.evaluate

    data, sp = load_data("digits", limit=300), get_space("tiny")
    net = Supernet("tiny", num_classes=10, seed=0)
    archs = [sp.max_arch(24), sp.min_arch(16), sp.max_arch(16)]
    cached = Evaluator(data, calib_images=100)
    want = cached.top1_many(net, archs)
    assert set(cached._calib_cache) == set(cached._val_cache) == {16, 24}
    per_res = (100 + len(data.val)) * 3 * 4 * np.array([16 * 16, 24 * 24])
    assert cached._cached_bytes == per_res.sum()
    monkeypatch.setattr(edgenas.evaluate, "CACHE_MEMORY", int(per_res[1]))  # room for one resolution's batches
    bounded = Evaluator(data, calib_images=100)
    np.testing.assert_array_equal(bounded.top1_many(net, archs), want)
    assert set(bounded._calib_cache) == set(bounded._val_cache) == {24} and bounded._cached_bytes <= per_res[1]

def test_each_epoch_evaluates_each_distinct_network_once(tmp_path, monkeypatch):
    """The full phase trains one network: its largest and smallest are one evaluation, not two."""
    evaluated = []
    top1 = Evaluator.top1
    monkeypatch.setattr(Evaluator, "top1", lambda self, net, arch, *a: evaluated.append(arch) or top1(self, net, arch, *a))
    t = Trainer(tiny_config(limit=192, phases=[PHASES[0] | {"epochs": 1}, PHASES[1]]), tmp_path / "run", progress=False)
    t.run()
    sp = get_space("tiny")
    assert evaluated == [sp.max_arch(), sp.max_arch(), Arch((3,) * sp.n_layers, (3,) * sp.n_layers, (2,) * sp.n_stages, 24)]
    assert t.history[0]["top1_min"] == t.history[0]["top1_max"]


def test_a_phase_trains_at_the_resolutions_it_names(tmp_path, monkeypatch):
    """`r: max` trains the full phase at the largest resolution only (the one it is scored at); the next
    phase draws from all of them again; a resolution the run does not train is named."""
    import edgenas.train.loop

    drawn = []
    augment = edgenas.train.loop.augment
    monkeypatch.setattr(edgenas.train.loop, "augment", lambda x, r, *a, **k: drawn.append(r) or augment(x, r, *a, **k))
    t = Trainer(tiny_config(limit=320, phases=[PHASES[0] | {"epochs": 1, "r": "max"}, PHASES[1] | {"r": [16, 24]}]),
                tmp_path / "run", progress=False)
    t.run()
    steps = len(t.loader)
    assert set(drawn[:steps]) == {24} and set(drawn[steps:]) == {16, 24}
    with pytest.raises(EdgeNASError, match=r"phase 'kernel': r must be 'max', 'all' or a subset of the resolutions \[16, 20, 24\]"):
        tiny_config(phases=[PHASES[0], PHASES[1] | {"r": [32]}])


def test_cli_train_eval_and_errors(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"limit": 256, "batch_size": 64, "bn_calib_images": 64, "phases": [PHASES[0], PHASES[3]]}))
    run = tmp_path / "run"
    assert main(["train", "--space", "tiny", "--data", "digits", "--config", str(cfg), "--device", "cpu", "--out", str(run), "--json"]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert out["phase"] == "expand" and (run / "latest.pt").is_file()
    # stderr is no terminal here (as in a log file): each epoch's progress in whole lines, not redrawn in place
    assert "\r" not in cap.err and any(ln.startswith("expand 1/") for ln in cap.err.splitlines())

    assert main(["eval", "--space", "tiny", "--checkpoint", str(run / "latest.pt"), "--arch", "max", "--data", "digits", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0 <= res["top1"] <= 1 and res["n"] == len(load_data("digits").val)  # the held-out split

    # a foreign test set is scored whole; BN statistics come from training images, never from it
    from torchvision.io import write_png

    digits = load_data("digits").val
    for name, idx in (("test", range(0, 60)), ("calib", range(60, 120))):
        for i in idx:
            folder = tmp_path / name / digits.classes[int(digits.labels[i])]
            folder.mkdir(parents=True, exist_ok=True)
            write_png(digits.images[i], str(folder / f"{i}.png"))
    test = f"imagefolder:{tmp_path / 'test'}"
    base = ["eval", "--space", "tiny", "--checkpoint", str(run / "latest.pt"), "--arch", "max", "--data", test, "--json"]
    assert main(base) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["n"] == 60 and default["calib_source"] == "the training split of digits"
    assert main([*base, "--calib-data", f"imagefolder:{tmp_path / 'calib'}"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["n"] == 60 and other["calib_source"] == f"imagefolder:{tmp_path / 'calib'}"
    assert main([*base, "--calib-data", "digits"]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] == default["top1"]  # the checkpoint's own split, as by default

    assert main(["eval", "--space", "cifar-mbv3", "--checkpoint", str(run / "latest.pt"), "--arch", "max", "--data", "digits"]) == 2
    assert "made for space 'tiny'" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    assert "holds no run" in capsys.readouterr().err
    assert main(["train", "--space", "tiny", "--data", f"imagefolder:{tmp_path / 'none'}", "--out", str(tmp_path / "r2")]) == 2
    assert "data path not found" in capsys.readouterr().err


def test_init_continues_a_trained_supernet_with_a_new_schedule(tmp_path, capsys, monkeypatch):
    short = dict(limit=320, bn_calib_images=64)
    sorts, sort = [], Supernet.sort_channels
    monkeypatch.setattr(Supernet, "sort_channels", lambda self, keep_bands=0: (sorts.append(keep_bands), sort(self, keep_bands))[1])
    first = Trainer(tiny_config(phases=[PHASES[0], PHASES[3]], **short), tmp_path / "a", progress=False)
    first.run()
    init = str(tmp_path / "a" / "latest.pt")
    more = [{"name": "all", "epochs": 1, "lr": 0.02, "ks": "all", "e": "all", "d": "all"}]
    cont = Trainer(tiny_config(phases=more, init=init, **short), tmp_path / "b", progress=False)
    a = first.net.state_dict()
    assert all(torch.equal(a[k], v) for k, v in cont.net.state_dict().items())  # already elastic: loaded as it was, nothing re-sorted
    cont.run()
    sorts.clear()  # the recipe's shape: the largest network, then all elastic again: the trained bands are kept, nothing re-sorted
    Trainer(tiny_config(phases=[{**PHASES[0], "epochs": 1}, *more], init=init, **short), tmp_path / "c", progress=False).run()
    assert sorts == []
    saved = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert saved["init"] == init and saved["init_record"]["classifier"] == "loaded" and saved["init_record"]["epochs"] == 3
    assert saved["init_record"]["elastic"] == {"e": len(get_space("tiny").e_choices), "w": 1}

    # weights of a full phase alone: the channels are sorted for the expand ratios the new schedule adds; the largest is unchanged
    full_only = Trainer(tiny_config(phases=[PHASES[0]], **short), tmp_path / "f", progress=False)
    full_only.run()
    sorts.clear()
    widened = Trainer(tiny_config(phases=more, init=str(tmp_path / "f" / "latest.pt"), **short), tmp_path / "g", progress=False)
    assert sorts == [0]  # sorted once, as a fresh run entering its expand phase
    sp, x = get_space("tiny"), torch.randn(4, 3, 24, 24)
    assert any(not torch.equal(v, widened.net.state_dict()[k]) for k, v in full_only.net.state_dict().items())
    for net in (full_only.net, widened.net):
        net.eval().activate(sp.max_arch(24))
    assert torch.allclose(full_only.net(x), widened.net(x), atol=1e-5)

    # other data (other classes): every weight but the classifier's
    other = Trainer(tiny_config(data=image_folder(tmp_path / "imgs", 3, 24, 12), phases=more, init=init, batch_size=16, bn_calib_images=16),
                    tmp_path / "h", progress=False)
    assert other.cfg.init_record["classifier"] == "new" and other.net.num_classes == 3
    assert torch.equal(other.net.state_dict()["stem.conv.weight"], a["stem.conv.weight"])

    with pytest.raises(EdgeNASError, match="another held-out split"):  # the same images, other held-out ones: a leak
        Trainer(tiny_config(phases=more, init=init, split="last", **short), tmp_path / "x", progress=False)
    with pytest.raises(CheckpointError, match="--init: checkpoint .* made for space 'tiny'"):
        Trainer(load_config(None, dict(space="tiny-width", data="digits", device="cpu", init=init, **short)), tmp_path / "y", progress=False)
    assert main(["train", "--space", "tiny", "--init", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "z")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err

    (tmp_path / "a" / "latest.pt").unlink()  # a resumed continuation needs only its own checkpoint
    Trainer(tiny_config(phases=[{**more[0], "epochs": 2}], init=init, **short), tmp_path / "b", resume=True, progress=False).run()
    assert len((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()) == 2


def test_continue_recipe_starts_from_the_shipped_supernet_on_its_split():
    """The recipe loads and names the built-in weights; they load into a fresh supernet on the shipped split, not another."""
    from edgenas.pretrained import ROOT, card
    from edgenas.train.warmstart import load_init

    cfg = load_config(ROOT.parent / "recipes" / "cifar10-continue.yaml", {})
    assert cfg.init == "cifar10" and cfg.space == "cifar-mbv3" and (cfg.val_per_class, cfg.split) == (500, "last")
    assert (cfg.lr_base_size, cfg.batch_size) == (512, 1024)  # benchmarks/batch_size.py
    assert [p.name for p in cfg.phases] == ["full", "all"] and cfg.phases[0].r == "max"
    shipped = read_checkpoint("cifar10")
    net = Supernet(cfg.space, 10)
    record = load_init(net, "cifar10", shipped["data"])
    assert record["classifier"] == "loaded" and record["elastic"]["e"] == len(get_space(cfg.space).e_choices)
    assert card("cifar10")["weights"]["sha256"].startswith(record["sha256"])
    assert torch.equal(net.state_dict()["head.classifier.weight"], shipped["state_dict"]["head.classifier.weight"].float())
    with pytest.raises(EdgeNASError, match="another held-out split"):
        load_init(Supernet(cfg.space, 10), "cifar10", {**shipped["data"], "val_per_class": 100})
    streamed = {**shipped["data"], "fingerprint": "0" * 16, "files_fingerprint": card("cifar10")["data"]["files_fingerprint"]}
    with pytest.raises(EdgeNASError, match="another held-out split"):  # the same files streamed: the card knows them
        load_init(Supernet(cfg.space, 10), "cifar10", {**streamed, "val_per_class": 100})

    # at the H100's measured step times, 5 minutes of epochs (one session's) split about half and half
    from edgenas.train.budget import plan_epochs, step_work

    space, res = get_space(cfg.space), cfg.resolutions
    h100 = load_config(ROOT / "cifar10" / "train-config-session-1.yaml", {}).budget_plan
    (n1, m1), (ns, ms) = step_work(cfg.phases[0], space, 2, res), step_work(cfg.phases[1], space, 2, res)
    probe = {"one_network_step_s": h100["one_network_step_s"], "sandwich_step_s": h100["sandwich_step_s"], "eval_s": h100["eval_s"],
             "one_network_nets": n1, "one_network_macs": m1, "sandwich_nets": ns, "sandwich_macs": ms}
    phases, plan = plan_epochs(cfg.phases, space, cfg.random_subnets, 45_000 // 512, probe, 300, res)
    full_share = phases[0].epochs * plan["epoch_s"]["full"] / plan["planned_s"]
    assert 0.4 <= full_share <= 0.65 and phases[1].epochs >= 5, (full_share, [p.epochs for p in phases])


@pytest.mark.parametrize("static", [False, True])
def test_ddp_with_two_cpu_processes(tmp_path, static):
    """The same command under torchrun (gloo on CPU): ranks shard the data and stay in sync, and
    follow rank 0's --time-budget plan and its re-fit at the phase start (no rank waits for another);
    with static shapes too (synchronised batch norm then keeps unused channels' statistics)."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"space": "tiny", "data": "digits", "limit": 256, "batch_size": 32, "bn_calib_images": 64,
                                   "phases": [PHASES[0] | {"epochs": 1}, PHASES[3]], "time_budget": 0.1, "static_shapes": static}))
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "edgenas.cli", "train", "--config", str(cfg),
                          "--device", "cpu", "--out", str(run), "--json"], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    saved = load_config(run / "config.yaml", {})
    assert saved.budget_plan and [r["phase"] for r in rows] == ["full"] * saved.phases[0].epochs + ["expand"] * saved.phases[1].epochs
    assert rows[0]["step"] == 256 // (32 * 2)  # each rank took half of every epoch
    assert torch.load(run / "latest.pt", weights_only=True)["phase"] == 1


def test_bf16_and_channels_last_paths_train(tmp_path):
    """The GPU settings (bf16 autocast, channels_last, device-resident data) run on CPU as well."""
    cfg = tiny_config(bf16=True, channels_last=True, resident=True, limit=256, phases=[PHASES[0] | {"epochs": 1}, PHASES[3]])
    t = Trainer(cfg, tmp_path / "bf16", progress=False)
    assert t.bf16 and t.channels_last
    summary = t.run()
    assert summary["phase"] == "expand" and np.isfinite(summary["loss"]) and summary["images_per_s"] > 0


def test_grad_checkpointing_trains_to_the_same_weights_and_statistics(tmp_path):
    """Recomputing blocks in backward changes memory only: weights, BN running statistics (updated
    once per step, not again by the recomputation) and dropout draws equal those of a plain run."""
    phases = [PHASES[0] | {"epochs": 1}, PHASES[3]]
    runs = {}
    for ckpt in (False, True):
        cfg = tiny_config(limit=192, grad_checkpointing=ckpt, phases=phases)
        t = Trainer(cfg, tmp_path / str(ckpt), progress=False)
        assert t.net.grad_checkpointing is ckpt
        t.run()
        runs[ckpt] = torch.load(tmp_path / str(ckpt) / "latest.pt", weights_only=True)["state_dict"]
    assert runs[False].keys() == runs[True].keys()
    for k, v in runs[False].items():
        torch.testing.assert_close(runs[True][k], v, rtol=0, atol=1e-6, msg=k)
    with pytest.raises(EdgeNASError, match="'compile' and 'grad_checkpointing'"):
        tiny_config(compile=True, grad_checkpointing=True)


def test_compile_mode_reaches_torch_compile_and_a_bad_one_is_named(tmp_path, monkeypatch):
    """`--compile reduce-overhead` (CUDA graphs: small images are launch-bound) is torch.compile's mode;
    `--compile cudagraphs` its backend of that name (CUDA graphs of PyTorch's own kernels, no code generated)."""
    from edgenas.cli.parser import build_parser

    seen = []
    monkeypatch.setattr(torch, "compile", lambda model, **kw: seen.append(kw) or model)
    for flags, kw in ((["--compile"], {"mode": None}), (["--compile", "reduce-overhead"], {"mode": "reduce-overhead"}),
                      (["--compile", "cudagraphs"], {"backend": "cudagraphs"})):
        args = build_parser().parse_args(["train", "--space", "tiny", "--out", "x", *flags])
        Trainer(tiny_config(compile=args.compile), tmp_path / str(kw), progress=False)
        assert seen.pop() == {"dynamic": True, **kw}
    with pytest.raises(EdgeNASError, match="'compile' must be true, false or one of default, reduce-overhead"):
        tiny_config(compile="fast")


def test_a_compiler_failure_is_one_clear_line(tmp_path, monkeypatch, capsys):
    """A machine where torch.compile cannot compile (no C++ compiler, say) gets one line naming the
    cause and the way out, not the compiler's traceback from inside the first step."""
    from edgenas.cli import main

    def no_compiler(gm, example_inputs):
        raise RuntimeError("No working C++ compiler found")

    torch._dynamo.reset()
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real(model, backend=no_compiler))
    assert main(["train", "--space", "tiny", "--data", "digits", "--limit", "128", "--batch-size", "32", "--epoch-scale", "0.05",
                 "--device", "cpu", "--compile", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("edgenas: error: --compile: torch.compile failed on this machine (RuntimeError: No working C++ compiler found); "
                   "train without --compile")
    torch._dynamo.reset()


def test_cudnn_benchmark_flag_reaches_torch_and_the_run_config(tmp_path, monkeypatch):
    from edgenas.cli.parser import build_parser

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # restored after the test: torch's setting is process-wide
    args = build_parser().parse_args(["train", "--space", "tiny", "--out", "x", "--cudnn-benchmark"])
    trainer = Trainer(tiny_config(cudnn_benchmark=args.cudnn_benchmark), tmp_path / "run", progress=False)
    assert torch.backends.cudnn.benchmark and trainer.cfg.cudnn_benchmark
    Trainer(tiny_config(), tmp_path / "other", progress=False)
    assert not torch.backends.cudnn.benchmark



def test_static_shapes_train_the_same_weights(tmp_path):
    """--static-shapes changes how steps run, not what they compute: the same run ends with the same weights and scores."""
    from edgenas.cli.parser import build_parser

    flag = build_parser().parse_args(["train", "--space", "tiny", "--out", "x", "--static-shapes"]).static_shapes
    phases = [{**PHASES[0], "epochs": 1, "lr": 0.002}, PHASES[3] | {"lr": 0.002}]
    runs = {s: Trainer(tiny_config(phases=phases, limit=640, static_shapes=s), tmp_path / str(s), progress=False) for s in (False, flag)}
    scores = {s: t.run() for s, t in runs.items()}
    static = runs[True]
    assert static.net.static_shapes and static.evaluator.static_shapes and not runs[False].net.static_shapes
    assert yaml.safe_load((tmp_path / "True" / "config.yaml").read_text())["static_shapes"] is True
    a, b = runs[False].net.state_dict(), static.net.state_dict()
    # a step's gradients differ by float rounding (2e-7 here: static shapes sum in another order; each step's parity is
    # tested in test_supernet), and training from scratch at learning rate 0.1 grows any 1e-7 difference about 10x a
    # step at first (a sliced run with one weight moved by 1e-7 drifts as far): so a small learning rate here
    init = Supernet(get_space("tiny"), 10, seed=runs[False].cfg.seed).state_dict()
    assert max((a[k].float() - init[k].float()).abs().max() for k in a if k.endswith("weight")) > 1e-2  # the weights did train
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-4, rtol=1e-3) for k in a)
    assert abs(scores[True]["top1_max"] - scores[False]["top1_max"]) <= 0.01
    assert abs(scores[True]["top1_min"] - scores[False]["top1_min"]) <= 0.01


def test_fp32_flag_turns_bf16_autocast_off(tmp_path, monkeypatch):
    """On CUDA steps run under bf16 autocast unless --fp32 (the GPU job trains in float32 where cuDNN's older API
    builds new layer shapes faster); the run's config records it."""
    from edgenas import jobs

    seen = []
    monkeypatch.setattr(jobs, "train", lambda out, *, config, overrides, resume: seen.append(load_config(config, overrides))
                        or jobs.Report({}, ""))
    for flags in ([], ["--fp32"]):
        assert main(["train", "--space", "tiny", "--out", str(tmp_path / "run"), *flags]) == 0
    assert [c.bf16 for c in seen] == [None, False]
    trainer = Trainer(tiny_config(bf16=seen[1].bf16), tmp_path / "run", progress=False)
    trainer.cfg.dump(tmp_path / "config.yaml")
    assert trainer.bf16 is False and yaml.safe_load((tmp_path / "config.yaml").read_text())["bf16"] is False


TIMING = ("images_per_s", "train_seconds", "eval_seconds", "wall_seconds")


def artifacts(run) -> dict:
    """What a run leaves, less wall-clock figures: must not depend on where it was killed."""
    out = {}
    for name in ("latest.pt", "best.pt"):
        ck = torch.load(run / name, weights_only=True)
        out[name] = ({k: v.tolist() for k, v in ck["state_dict"].items()},
                     {k: ck[k] for k in ("phase", "epoch", "step", "best_top1")},
                     [{k: v for k, v in r.items() if k not in TIMING} for r in ck["history"]])
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    out["metrics.jsonl"] = [{k: v for k, v in r.items() if k not in TIMING} for r in rows]
    header, *lines = (run / "metrics.csv").read_text().splitlines()
    cols = header.split(",")
    out["metrics.csv"] = [[v for c, v in zip(cols, ln.split(",")) if c not in TIMING] for ln in lines]
    return out


@pytest.mark.parametrize("where", ["after best.pt", "after latest.pt", "before the first checkpoint"])
def test_a_kill_at_any_write_resumes_to_identical_files(tmp_path, monkeypatch, where):
    """A kill between best.pt and latest.pt, or between latest.pt and the metrics, loses nothing."""
    phases = PHASES[:2]
    cfg = lambda: tiny_config(phases=phases, limit=640)  # noqa: E731
    Trainer(cfg(), tmp_path / "full", progress=False).run()
    real_save, real_metrics = Supernet.save, Trainer._write_metrics
    calls = {"save": 0, "metrics": 0}

    def save(self, path, **extra):
        real_save(self, path, **extra)
        calls["save"] += 1
        if where == "after best.pt" and path.name == "best.pt" and extra["epoch"] == 2:
            raise KeyboardInterrupt

    def metrics(self, rows):
        calls["metrics"] += 1
        if where == "after latest.pt" and len(rows) == 2:
            raise KeyboardInterrupt
        if where == "before the first checkpoint" and calls["metrics"] == 1:
            raise KeyboardInterrupt
        real_metrics(self, rows)

    monkeypatch.setattr(Supernet, "save", save)
    monkeypatch.setattr(Trainer, "_write_metrics", metrics)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg(), tmp_path / "cut", progress=False).run()
    monkeypatch.undo()
    assert (tmp_path / "cut" / "config.yaml").is_file()
    Trainer(cfg(), tmp_path / "cut", resume=True, progress=False).run()
    assert artifacts(tmp_path / "cut") == artifacts(tmp_path / "full")


def test_second_writer_is_refused(tmp_path):
    from edgenas.io import exclusive

    (tmp_path / "run").mkdir()
    with exclusive(tmp_path / "run", "training run"):
        with pytest.raises(EdgeNASError, match="another edgenas process is writing training run"):
            Trainer(tiny_config(phases=PHASES[:1], limit=128), tmp_path / "run", progress=False).run()
    (tmp_path / "run" / ".x.tmp").write_text("left by a kill")
    summary = Trainer(tiny_config(phases=PHASES[:1], limit=128), tmp_path / "run", progress=False).run()
    assert summary["epoch"] == 2 and not (tmp_path / "run" / ".x.tmp").exists()
    resumed = Trainer(tiny_config(phases=PHASES[:1], limit=128), tmp_path / "run", resume=True, progress=False).run()
    assert resumed["top1_max"] == summary["top1_max"]  # a finished run reports its last epoch, not nan


def test_cifar10_recipe_gives_the_full_phase_about_half_of_a_gpu_budget():
    """The recipe loads, trains at batch 1024 with learning rates for 512, and with the step times the
    H100 measured (the shipped supernet's probe, batch 512) a 19-minute budget spends about half on
    the full phase."""
    from edgenas.pretrained import ROOT
    from edgenas.train.budget import plan_epochs, step_work

    cfg = load_config(ROOT.parent / "recipes" / "cifar10-supernet.yaml", {})
    assert cfg.space == "cifar-mbv3" and (cfg.lr_base_size, cfg.batch_size) == (512, 1024) and cfg.val_per_class == 500
    space, res = get_space(cfg.space), cfg.resolutions
    h100 = load_config(ROOT / "cifar10" / "train-config-session-1.yaml", {}).budget_plan
    (n1, m1), (ns, ms) = step_work(cfg.phases[0], space, 2, res), step_work(default_phases(space)[-1], space, 2, res)
    probe = {"one_network_step_s": h100["one_network_step_s"], "sandwich_step_s": h100["sandwich_step_s"], "eval_s": h100["eval_s"],
             "one_network_nets": n1, "one_network_macs": m1, "sandwich_nets": ns, "sandwich_macs": ms}
    phases, plan = plan_epochs(cfg.phases, space, cfg.random_subnets, 45_000 // 512, probe, 19 * 60 - 90, res)
    full_share = phases[0].epochs * plan["epoch_s"]["full"] / plan["planned_s"]
    assert 0.4 <= full_share <= 0.6 and phases[0].epochs >= 80, (full_share, [p.epochs for p in phases])


# tiny-width runs tiny's fixed activation and SE (and elastic widths), tiny-mixed elastic ones: tiny itself adds nothing
@pytest.mark.parametrize("space,static", [("tiny-mixed", False), ("tiny-width", False), ("tiny-mixed", True)])
def test_compile_traces_the_largest_network_once_and_trains_the_same_weights(tmp_path, monkeypatch, space, static):
    """--compile compiles the largest network only: one graph for every step and resolution (each
    other subnet would be a recompilation of tens of seconds, and after 8 torch gives up compiling),
    also where activations and widths change between subnets; the weights equal an eager run's.
    With --static-shapes that one graph trains every subnet (the slots a subnet skips run, their output
    discarded), to the weights of an eager run that skips them."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    counter, real = CompileCounter(), torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real(model, backend=counter, **kw))  # graphs run as captured
    runs = {}
    for compiled in (False, True):
        cfg = tiny_config(space=space, limit=192, compile=compiled, bf16=True, channels_last=True,  # as on a GPU
                          phases=[PHASES[0] | {"epochs": 1}, PHASES[3]], static_shapes=static)
        t = Trainer(cfg, tmp_path / str(compiled), progress=False)
        t.run()
        runs[compiled] = t.net.state_dict()
    assert counter.frame_count == 1, f"{counter.frame_count} graphs compiled"
    for k, v in runs[False].items():
        torch.testing.assert_close(runs[True][k], v, rtol=0, atol=1e-5, msg=k)
    torch._dynamo.reset()


def test_plan_epochs_keeps_proportions_and_fits_the_budget():
    from edgenas.train.budget import plan_epochs, step_work

    sp = get_space("tiny")
    phases = default_phases(sp)
    (n1, m1), (ns, ms) = (step_work(p, sp, 2, list(sp.resolutions)) for p in (phases[0], phases[-1]))
    probe = {"one_network_step_s": 0.01, "sandwich_step_s": 0.04, "eval_s": 0.5,
             "one_network_nets": n1, "one_network_macs": m1, "sandwich_nets": ns, "sandwich_macs": ms}
    out, plan = plan_epochs(phases, sp, 2, 100, probe, budget_s=600)
    assert plan["planned_s"] <= 600 and not plan["over_budget"]
    assert [p.name for p in out] == [p.name for p in phases]
    full, kernel = out[0].epochs, out[1].epochs  # default 4 : 2 epochs, kernel steps cost 4x: time, not epochs, scales
    assert full > kernel >= 1 and abs(full / kernel - 2) <= 0.5
    tiny, plan = plan_epochs(phases, sp, 2, 100, probe, budget_s=1)
    assert all(p.epochs == 1 for p in tiny) and plan["over_budget"] and plan["fits_steps_per_epoch"] == 0  # not even the evaluations
    # over budget at one epoch a phase: the most steps an epoch that would fit (the hint to train on fewer images)
    _, plan = plan_epochs(phases, sp, 2, 100, probe, budget_s=10)
    k = plan["fits_steps_per_epoch"]
    assert plan["over_budget"] and 0 < k < 100
    _, fits = plan_epochs(phases, sp, 2, k, probe, budget_s=10)
    _, over = plan_epochs(phases, sp, 2, k + 1, probe, budget_s=10)
    assert not fits["over_budget"] and "fits_steps_per_epoch" not in fits and over["over_budget"]
    from edgenas.train.loop import _fewer_images

    assert _fewer_images(plan, 64) == f"; about --limit {64 * k:,} training images would fit one epoch a phase in the budget"
    assert _fewer_images(fits, 64) == "" and _fewer_images({"fits_steps_per_epoch": 0}, 64) == ""


def test_plan_epochs_costs_a_phase_by_its_networks_and_macs():
    from edgenas.train.budget import plan_epochs, step_work

    sp = get_space("tiny")
    phases = default_phases(sp)
    n1, m1 = step_work(phases[0], sp, 2, list(sp.resolutions))
    ns, ms = step_work(phases[-1], sp, 2, list(sp.resolutions))
    assert n1 == 1 and ns > 3 and m1 < ms < ns * m1
    work = {"one_network_nets": n1, "one_network_macs": m1, "sandwich_nets": ns, "sandwich_macs": ms, "eval_s": 0.5}
    # compute-bound (time proportional to MACs): the kernel phase's nearly largest networks cost more than the expand phase's
    _, plan = plan_epochs(phases, sp, 2, 100, {**work, "one_network_step_s": 0.01, "sandwich_step_s": 0.01 * ms / m1}, 600)
    e = plan["epoch_s"]
    assert e["full"] < e["expand"] < e["kernel"] and abs(e["expand"] - (100 * 0.01 * ms / m1 + 0.5)) < 0.05
    # launch-bound (time per network, whatever its size): a phase costs what its networks per step say
    _, plan = plan_epochs(phases, sp, 2, 100, {**work, "one_network_step_s": 0.01, "sandwich_step_s": 0.01 * ns}, 600)
    e, nk = plan["epoch_s"], step_work(phases[1], sp, 2, list(sp.resolutions))[0]
    assert abs(e["kernel"] - (100 * 0.01 * nk + 0.5)) < 1e-6 and abs(e["expand"] - (100 * 0.01 * ns + 0.5)) < 1e-6
    # --compile: the largest network runs twice as fast, every other one at the eager speed
    compiled = {**work, "one_network_step_s": 0.005, "one_network_eager_step_s": 0.01, "sandwich_step_s": 0.005 + 0.01 * (ns - 1)}
    e = plan_epochs(phases, sp, 2, 100, compiled, 600)[1]["epoch_s"]
    assert abs(e["full"] - (100 * 0.005 + 0.5)) < 1e-6 and abs(e["expand"] - (100 * (0.005 + 0.01 * (ns - 1)) + 0.5)) < 1e-6


def test_time_budget_is_probed_once_recorded_and_resumes_exactly(tmp_path, monkeypatch):
    cfg = lambda: tiny_config(phases=PHASES[:2], limit=256, resolutions=[16], time_budget=0.15)  # noqa: E731
    full = Trainer(cfg(), tmp_path / "full", progress=False)
    before = {k: v.clone() for k, v in full.net.state_dict().items()}
    measured = full.probe(steps=1)
    assert all(torch.equal(before[k], v) for k, v in full.net.state_dict().items()) and full.state["step"] == 0
    for key in ("one_network", "sandwich"):  # a batch of 64 images per step
        assert measured[f"{key}_images_per_s"] == pytest.approx(64 / measured[f"{key}_step_s"])
        assert measured[f"{key}_first_step_s"] > 0
    full.run()
    saved = load_config(tmp_path / "full" / "config.yaml", {})
    assert saved.budget_plan and saved.budget_plan["budget_s"] < 9 and [p.name for p in saved.phases] == ["full", "kernel"]
    epochs = [p.epochs for p in saved.phases]

    run_killed_at_step(monkeypatch, cfg(), tmp_path / "cut", 8)  # past the probe's 6 steps, inside the first epoch
    cut_cfg = load_config(tmp_path / "cut" / "config.yaml", {})
    monkeypatch.setattr(Trainer, "probe", lambda *a, **k: pytest.fail("a resumed run must not probe again"))
    resumed = Trainer(cut_cfg, tmp_path / "cut", resume=True, progress=False)
    resumed.run()
    after = load_config(tmp_path / "cut" / "config.yaml", {})
    assert after.budget_plan == cut_cfg.budget_plan  # the plan is kept; the epochs may be re-fitted as the run goes
    ckpt = torch.load(tmp_path / "cut" / "latest.pt", weights_only=True)
    assert ckpt["config"] == after.to_dict() and ckpt["step"] == sum(p.epochs for p in after.phases) * 4  # 256 images, batch 64
    assert all(e >= 1 for e in epochs)


def test_time_budget_refits_a_phase_after_its_first_epoch(tmp_path, monkeypatch):
    """A phase's first epoch is the only measure of what its new layer shapes cost (89 s where
    steady epochs took 12 on an H200), so with --time-budget the schedule is re-fitted after it
    too: the phase runs the re-fitted epochs, config.yaml records them, and a run killed inside
    the phase resumes to the same weights."""
    from dataclasses import replace

    import edgenas.train.loop as loop

    calls = []

    def refit(phases, start, plan, history, space, done=0):  # phase start: 4 epochs; after the first: 2
        calls.append((start, done, len(history)))
        return [*phases[:start], replace(phases[start], epochs=2 if done else 4), *phases[start + 1:]]

    monkeypatch.setattr(loop, "replan", refit)
    cfg = lambda: tiny_config(phases=[PHASES[0] | {"epochs": 1}, PHASES[1]], limit=128, resolutions=[16], time_budget=5,  # noqa: E731
                              budget_plan={"budget_s": 300.0})  # planned already: no probe
    full = Trainer(cfg(), tmp_path / "full", progress=False)
    full.run()
    rows = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["full", "kernel", "kernel"] and calls == [(1, 0, 1), (1, 1, 2)]
    assert [p.epochs for p in load_config(tmp_path / "full" / "config.yaml", {}).phases] == [1, 2]

    run_killed_at_step(monkeypatch, cfg(), tmp_path / "cut", 2 * len(full.loader) + 1)  # the kernel phase's second epoch
    assert [p.epochs for p in load_config(tmp_path / "cut" / "config.yaml", {}).phases] == [1, 2]
    resumed = Trainer(load_config(tmp_path / "cut" / "config.yaml", {}), tmp_path / "cut", resume=True, progress=False)
    resumed.run()
    a, b = full.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_time_budget_refits_the_first_phase_after_epochs_1_2_4(tmp_path, monkeypatch):
    """A schedule of one phase used to be planned at the probe's rate and never corrected (the
    largest network alone on a 2-core CPU overran 14 minutes by one); every phase, the first
    included, is now re-fitted after its epochs 1, 2, 4, 8, ..., with the history up to there."""
    import edgenas.train.loop as loop

    calls = []

    def refit(phases, start, plan, history, space, done=0):
        calls.append((start, done, len(history)))
        return phases

    monkeypatch.setattr(loop, "replan", refit)
    cfg = tiny_config(phases=[PHASES[0] | {"epochs": 5}], limit=64, resolutions=[16], time_budget=5, budget_plan={"budget_s": 300.0})
    Trainer(cfg, tmp_path / "run", progress=False).run()
    assert calls == [(0, 1, 1), (0, 2, 2), (0, 4, 4)]


def test_replan_brings_a_slower_than_probed_single_phase_within_budget():
    """Replayed: one phase planned at 10 s an epoch that take 11 overruns a fixed plan by 10%; the
    re-fits after epochs 1, 2, 4, ... end it within the budget, in fewer epochs."""
    from edgenas.train.budget import replay
    from edgenas.train.config import Phase

    space = get_space("tiny")
    phases = [Phase("full", 20, 0.1, "max", "max", "max")]
    plan = {"budget_s": 200.0, "epoch_s": {"full": 10.0}, "epochs": {"full": 20}}
    fixed, _ = replay(phases, plan, {"full": [11.0] * 20}, space, refit=False)
    adapted, refitted = replay(phases, plan, {"full": [11.0] * 20}, space)
    assert fixed == pytest.approx(220.0)
    assert 0.9 * 200 <= adapted <= 200 and refitted[0].epochs == 18


def shipped_session(name: str = "") -> tuple[TrainConfig, dict[str, list[float]]]:
    """The settings and measured epoch times of a GPU session behind the shipped supernet (its last, or ``session-N``)."""
    import csv

    from edgenas.pretrained import ROOT
    from edgenas.train.budget import measured_epochs

    suffix = f"-{name}" if name else ""
    with open(ROOT / "cifar10" / f"metrics{suffix}.csv") as f:
        return load_config(ROOT / "cifar10" / f"train-config{suffix}.yaml", {}), measured_epochs(csv.DictReader(f))


def test_replan_fits_the_schedule_left_into_the_budget_left():
    """Replayed with the shipped supernet's epoch times (an H100 run whose first plan overran 9.1 minutes
    by 28%: first epochs of new layer shapes, and sandwich steps slower than probed), re-fitting the
    phases still to come at each phase start ends the run within its budget, its full phase untouched."""
    from edgenas.train.budget import replan, replay

    cfg, seconds = shipped_session("session-1")  # the first session's, from scratch
    space, plan = get_space(cfg.space), cfg.budget_plan
    fixed, _ = replay(cfg.phases, plan, seconds, space, refit=False)
    adapted, phases = replay(cfg.phases, plan, seconds, space)
    assert fixed > 1.25 * plan["budget_s"]
    assert 0.9 * plan["budget_s"] <= adapted <= plan["budget_s"], adapted
    assert phases[0] == cfg.phases[0] and all(p.epochs >= 1 for p in phases)
    # a function of the history alone: re-planning from the re-planned phases (a run resumed at a phase start) changes nothing
    history = [{"phase": "full", "train_seconds": t, "eval_seconds": 0.0} for t in seconds["full"]]
    history += [{"phase": "kernel", "train_seconds": t, "eval_seconds": 0.0} for t in seconds["kernel"]]
    once = replan(cfg.phases, 2, plan, history, space)
    assert replan(once, 2, plan, history, space) == once and once[:2] == cfg.phases[:2]
    assert sum(p.epochs for p in once[2:]) < sum(p.epochs for p in cfg.phases[2:])  # kernel ran slow and paid for new shapes
    # epochs that took what was planned leave the plan as it was, up to the rounding of one epoch
    planned = [{"phase": p.name, "train_seconds": plan["epoch_s"][p.name], "eval_seconds": 0.0} for p in cfg.phases[:2] for _ in range(p.epochs)]
    kept = replan(cfg.phases, 2, plan, planned, space)
    assert all(abs(a.epochs - b.epochs) <= 1 for a, b in zip(kept, cfg.phases))


def test_refit_after_a_first_epoch_ends_the_h200_session_within_its_budget():
    """Replayed with the shipped supernet's last session (an H200 continuing it for 6.4 minutes): the
    all-elastic phase's first epoch took 89 s where the re-fit at its start had costed 14, so its
    9 epochs overran and the session was cut after 6 (a resumed process paid the set-up again).
    Re-fitted after that first epoch too, the phase gets the epochs the budget has left."""
    from edgenas.train.budget import replay

    cfg, seconds = shipped_session()
    space, plan = get_space(cfg.space), cfg.budget_plan
    assert [p.name for p in cfg.phases] == ["full", "all"] and seconds["all"][0] > 5 * float(np.median(seconds["all"][1:]))
    seconds["all"] = seconds["all"][:-1]  # the last epoch is the resumed process's (its set-up paid twice)
    fixed, _ = replay(cfg.phases, plan, seconds, space, refit=False)
    adapted, phases = replay(cfg.phases, plan, seconds, space)
    assert fixed > 1.15 * plan["budget_s"]
    assert 0.85 * plan["budget_s"] <= adapted <= plan["budget_s"], adapted
    assert phases[0] == cfg.phases[0] and 2 <= phases[1].epochs < cfg.phases[1].epochs


def test_an_external_teacher_distils_into_every_subnet_and_stays_as_loaded(tmp_path, monkeypatch):
    """--teacher: the loaded supernet's largest network gives the soft targets of every subnet of a multi-subnet
    step, the largest included (in-place distillation has only the largest's own logits for the others); it is
    never trained, and under --compile it is one more graph (the supernet's largest is the other)."""
    from torch._dynamo.testing import CompileCounter

    import edgenas.train.loop as loop

    Trainer(tiny_config(limit=128, phases=[PHASES[0] | {"epochs": 1}]), tmp_path / "teacher", progress=False).run()
    teacher_ckpt = tmp_path / "teacher" / "latest.pt"
    before = {k: v.clone() for k, v in read_checkpoint(teacher_ckpt, get_space("tiny"))["state_dict"].items()}
    targets, real_kd = [], loop.kd_loss
    monkeypatch.setattr(loop, "kd_loss", lambda s, t, temp=1.0: targets.append(t) or real_kd(s, t, temp))
    torch._dynamo.reset()
    counter, real = CompileCounter(), torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real(model, backend=counter, **kw))
    cfg = tiny_config(limit=128, teacher=str(teacher_ckpt), compile=True, phases=[PHASES[3] | {"epochs": 1}], random_subnets=1)
    t = Trainer(cfg, tmp_path / "student", progress=False)
    outputs: list[torch.Tensor] = []
    compiled = t.teacher

    def teacher(x):  # outside the graph (a hook inside it would be traced)
        outputs.append(compiled(x).float())
        return outputs[-1]

    t.teacher = teacher
    t.run()
    steps = len(t.loader)
    assert len(outputs) == steps and len(targets) == 3 * steps  # largest, smallest and one random subnet: each distilled
    for k in range(steps):
        assert all(torch.equal(targets[3 * k + j], outputs[k]) for j in range(3))
    assert counter.frame_count == 2, f"{counter.frame_count} graphs compiled"
    assert all(p.grad is None and not p.requires_grad for p in compiled.parameters())
    after = Supernet.load(teacher_ckpt, "tiny").state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    torch._dynamo.reset()
    three = image_folder(tmp_path / "three", classes=3, per_class=8, size=24)
    with pytest.raises(CheckpointError, match="teacher .* has 10 classes, the data 3"):
        Trainer(tiny_config(data=three, teacher=str(teacher_ckpt), batch_size=8), tmp_path / "other", progress=False)
