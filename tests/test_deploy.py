import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from torchvision.io import encode_png

from edgenas import get_space
from edgenas.cli import main
from edgenas.data import augment, load_data
from edgenas.deploy import deploy_check, export_subnet, mobile_report
from edgenas.errors import EdgeNASError
from edgenas.io import exclusive
from edgenas.latency import LatencyError, LatencyTable, LocalBackend, RemoteBackend
from edgenas.latency.profile import profile
from edgenas.train import Trainer, load_config

ROOT = Path(__file__).resolve().parent.parent
SP = get_space("tiny")
FAST = {"warmup": 2, "rounds": 2, "runs": 5}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny supernet trained briefly on digits (full network only: clearly above chance)."""
    out = tmp_path_factory.mktemp("sn")
    cfg = load_config(None, {"space": "tiny", "data": "digits", "device": "cpu", "batch_size": 64, "bn_calib_images": 128,
                             "resolutions": [24], "phases": [{"name": "full", "epochs": 3, "lr": 0.1, "ks": "max", "e": "max", "d": "max"}]})
    Trainer(cfg, out, progress=False).run()
    return out / "latest.pt"


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tables")
    out = {}
    for precision in ("fp32", "int8"):
        out[precision] = d / f"{precision}.json"
        profile("tiny", [24], LocalBackend(), out[precision], precision=precision, protocol=FAST, calibrate=4, progress=False)
    return out


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("exp") / "m.onnx"
    return export_subnet(SP, SP.max_arch(24), out, checkpoint=str(trained), int8=True, ort_format=True)


def test_int8_export_reports_accuracy_before_and_after(exported):
    assert exported["max_abs_diff"] <= 1e-4
    assert exported["top1_fp32"] > 0.5  # trained: far above the 0.1 of chance
    assert abs(exported["top1_int8"] - exported["top1_fp32"]) < 0.1
    q = onnx.load(exported["int8_path"])
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in q.graph.node}
    meta = {p.key: p.value for p in q.metadata_props}
    assert meta["edgenas.precision"] == "int8" and json.loads(meta["edgenas.arch"]) == SP.max_arch(24).to_dict()
    assert exported["int8_size_bytes"] < exported["size_bytes"]


def test_ort_format_conversion(exported):
    for conv, model in zip(exported["ort"], (exported["path"], exported["int8_path"])):
        assert Path(conv["ort"]).read_bytes()[4:8] == b"ORTM"
        assert Path(conv["required_operators"]).is_file() and "Conv" in Path(conv["required_operators"]).read_text()
        x = np.random.default_rng(0).standard_normal((1, 3, 24, 24)).astype(np.float32)
        a = ort.InferenceSession(conv["ort"], providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        b = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        assert np.abs(a - b).max() <= 1e-4


def test_mobile_report(exported):
    rep = mobile_report(exported["path"])
    for ep in ("nnapi", "coreml_neuralnetwork", "coreml_mlprogram"):
        assert 0 <= rep[ep]["supported_nodes"] <= rep[ep]["nodes"] and rep[ep]["suitability"] in ("YES", "MAYBE", "NO")
    assert rep["xnnpack"]["checked"] is False and rep["xnnpack"]["reason"]


def test_inference_example_preprocesses_like_training(exported, tmp_path):
    data = load_data("digits")
    img = data.val.images[:1]
    png = tmp_path / "digit.png"
    png.write_bytes(encode_png(img[0]).numpy().tobytes())
    sys.path.insert(0, str(ROOT / "deploy"))
    try:
        import infer
    finally:
        sys.path.pop(0)
    clf = infer.Classifier(exported["path"])
    ours = infer.preprocess(infer.load_image(str(png)), 24, clf.mean, clf.std)
    ref = augment(img, 24, data.mean, data.std).numpy()
    assert np.abs(ours - ref).max() < 1e-5
    res = subprocess.run([sys.executable, str(ROOT / "deploy" / "infer.py"), exported["path"], str(png), "--top", "3"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    expected = str(int(np.argmax(clf(infer.load_image(str(png))))))
    assert res.stdout.startswith(f"{png}: {expected} ")
    assert len(res.stdout.split(",")) == 3


def test_deploy_check_through_a_local_runner(exported, tables):
    runner = f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'deploy' / 'agent.py'))}"
    c = deploy_check(exported["path"], LatencyTable.load(tables["fp32"]), RemoteBackend(runner), "digits")
    assert c["measured_ms"] > 0 and c["predicted_ms"] > 0 and c["device"]["device"] == "remote"
    assert c["size_bytes"] == Path(exported["path"]).stat().st_size and 0.5 < c["top1"] <= 1
    q = deploy_check(exported["int8_path"], LatencyTable.load(tables["int8"]), LocalBackend())
    assert q["precision"] == "int8" and q["measured_ms"] > 0
    for r in (c, q):  # the table's 4 calibration networks re-measured beside the model
        assert r["drift"]["networks"] == 4 and r["drift"]["ratio"] > 0
        assert r["drift_corrected_error"] == pytest.approx(r["predicted_ms"] * r["drift"]["ratio"] / r["measured_ms"] - 1)


class SlowerDevice:
    """A device that runs everything ``factor`` times slower than the table recorded: the model, exactly
    what the table predicts for it; each calibration network, its recorded time (both times ``factor``)."""

    def __init__(self, table: LatencyTable, predicted_ms: float, model: str, factor: float):
        self.times = {model: predicted_ms * factor, **{k: table.ms(table.entries[k]) * factor for k in table.calibration_keys()}}
        self.sent: list[str] = []

    def info(self) -> dict:
        return {"device": "fake", "cpu_model": "fake"}

    def measure(self, models: dict, protocol: dict) -> dict:
        self.sent += list(models)
        return {k: {"min_ms": self.times[k], "median_ms": self.times[k], "p90_ms": self.times[k]} for k in models}


def test_deploy_check_tells_device_drift_from_table_error(exported, tables, capsys):
    """A device that slowed down 1.5x since profiling: the raw error is -33%, the drift 1.5x, the table's own error 0."""
    table = LatencyTable.load(tables["fp32"])
    name = Path(exported["path"]).name
    device = SlowerDevice(table, table.predict(SP.max_arch(24)), name, 1.5)
    c = deploy_check(exported["path"], table, device)
    assert c["error"] == pytest.approx(1 / 1.5 - 1) and c["drift"] == {"ratio": pytest.approx(1.5), "networks": 4}
    assert c["drift_corrected_error"] == pytest.approx(0.0, abs=1e-12)
    assert sorted(device.sent) == sorted([name, *table.calibration_keys()])  # measured together, in one call
    assert table.calibration_keys(near_ms=1e-9, n=2) == sorted(table.calibration_keys(), key=lambda k: table.ms(table.entries[k]))[:2]
    assert main(["deploy", "check", exported["path"], "--table", str(tables["fp32"])]) == 0
    out = capsys.readouterr().out
    assert "calibration networks" in out and "corrected for it, the error is" in out


def test_deploy_check_names_another_cpu_and_saturating_int8_weights(exported, tables, capsys):
    """Same CPU name, other instruction sets: another machine; an AVX2 CPU without VNNI: 8-bit int8 weights can saturate."""
    table = LatencyTable.load(tables["int8"])
    name = Path(exported["int8_path"]).name
    device = SlowerDevice(table, table.predict(SP.max_arch(24)), name, 1.0)
    device.times["fp32"] = device.times[name]  # its fp32 twin, measured beside it
    table.meta["device"]["cpu_features"] = ["avx", "avx2", "fma"]
    device.info = lambda: {"device": "fake", "cpu_model": table.meta["cpu_model"], "cpu_features": ["avx", "avx2", "fma"]}
    q = deploy_check(exported["int8_path"], table, device)
    assert "other_cpu" not in q and len(q["warnings"]) == 1 and "--int8-weight-bits 7" in q["warnings"][0]
    device.info = lambda: {"device": "fake", "cpu_model": table.meta["cpu_model"], "cpu_features": ["avx", "avx2", "fma", "avx512f", "avx512_vnni"]}
    q = deploy_check(exported["int8_path"], table, device)
    assert "another CPU under the same name" in q["other_cpu"] and q["warnings"] == []
    assert "edgenas: warning: the table was measured on a" in capsys.readouterr().err


def test_deploy_bad_input(exported, tables, tmp_path):
    with pytest.raises(LatencyError, match="is a int8 model but the table holds fp32"):
        deploy_check(exported["int8_path"], LatencyTable.load(tables["fp32"]), LocalBackend())
    with pytest.raises(LatencyError, match="cannot start runner command"):
        deploy_check(exported["path"], LatencyTable.load(tables["fp32"]), RemoteBackend("/nonexistent/adb shell"))
    plain = tmp_path / "plain.onnx"
    m = onnx.load(exported["path"])
    del m.metadata_props[:]
    onnx.save(m, str(plain))
    with pytest.raises(EdgeNASError, match="not exported by edgenas"):
        deploy_check(plain, LatencyTable.load(tables["fp32"]), LocalBackend())
    with pytest.raises(EdgeNASError, match="needs calibration images"):
        export_subnet(SP, SP.min_arch(), tmp_path / "q.onnx", int8=True)


def test_interrupted_predictor_resumes_its_labels_and_more_samples_label_only_new_subnets(trained, tmp_path, monkeypatch, capsys):
    from edgenas.evaluate import Evaluator

    evaluated, stop_at = [], [None]
    real = Evaluator.correct

    def counted(self, net, arch, recalibrate=True):
        if len(evaluated) + 1 == stop_at[0]:
            raise KeyboardInterrupt
        evaluated.append(arch)
        return real(self, net, arch, recalibrate)

    def run(out, samples=16, calib=64):
        evaluated.clear()
        return main(["predictor", "--space", "tiny", "--checkpoint", str(trained), "--samples", str(samples), "--resolution", "24",
                     "--calib-images", str(calib), "--out", str(tmp_path / out)])

    def fitted(out):
        d = json.loads((tmp_path / out).read_text())
        return np.array(d["X"]), np.array(d["y"])

    monkeypatch.setattr(Evaluator, "correct", counted)
    assert run("whole.json") == 0 and len(evaluated) == 16
    stop_at[0] = 7
    assert run("p.json") == 130 and len(evaluated) == 6 and not (tmp_path / "p.json").exists()
    assert (tmp_path / "p.labels.npz").exists()  # the six measured before the interrupt
    stop_at[0] = None
    assert run("p.json") == 0 and len(evaluated) == 10  # the other ten only
    assert "6 of 16 subnets already labelled" in capsys.readouterr().err
    for a, b in zip(fitted("p.json"), fitted("whole.json")):
        assert np.array_equal(a, b)  # the same labels, hence the same predictor
    assert json.loads((tmp_path / "p.json").read_text())["report"]["labels_reused"] == 6
    assert run("p.json", samples=20) == 0 and len(evaluated) == 4  # a bigger sample: its first 16 are labelled
    assert np.array_equal(fitted("p.json")[0][:16], fitted("whole.json")[0])
    assert run("p.json", calib=32) == 0 and len(evaluated) == 16  # other BN calibration images: other labels
    assert "labelling starts over" in capsys.readouterr().err
    with exclusive(tmp_path / "p.labels.npz", "predictor labels"):  # another process labelling into them
        assert run("p.json") == 2 and "another edgenas process is writing predictor labels" in capsys.readouterr().err
        assert not evaluated
    (tmp_path / "p.labels.npz").write_bytes(b"not an npz")
    assert run("p.json") == 2 and "p.labels.npz is not an edgenas labels file" in capsys.readouterr().err and not evaluated


def test_export_from_search_run_in_one_step(trained, tables, tmp_path, capsys):
    pred = tmp_path / "pred.json"
    assert main(["predictor", "--space", "tiny", "--checkpoint", str(trained), "--samples", "24", "--resolution", "24",
                 "--sampling", "uniform", "--calib-images", "64", "--out", str(pred)]) == 0
    report = json.loads(pred.read_text())["report"]
    labels = report["labels"]
    assert report["sampling"] == "uniform"
    assert labels["images"] > 0 and set(labels) == {"images", "split_half_kendall_tau", "split_half_pearson", "tau_ceiling"}
    assert "a perfect predictor would score about" in capsys.readouterr().out or labels["tau_ceiling"] is None
    assert main(["predictor", "--space", "tiny", "--checkpoint", str(trained), "--samples", "24", "--calib-images", "64",
                 "--time-limit", "0.0001", "--out", str(tmp_path / "late.json")]) == 2  # one subnet takes longer than 6 ms
    assert "subnets were evaluated in the time limit of 0.006 s" in capsys.readouterr().err and not (tmp_path / "late.json").exists()
    run = tmp_path / "run"
    assert main(["search", "--space", "tiny", "--objectives", "top1,latency", "--table", str(tables["fp32"]), "--predictor", str(pred),
                 "--pop-size", "8", "--generations", "2", "--no-baseline", "--out", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "picked.onnx"
    assert main(["export", "--from", str(run), "--pick", "knee", "--check", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["arch"] == pick_arch(run) and res["check"][0]["predicted_ms"] > 0 and "top1" in res["check"][0]
    # the exported subnet (BN recalibrated like eval) scores what `edgenas eval` reports for that arch
    assert main(["eval", "--space", "tiny", "--checkpoint", str(trained), "--arch", json.dumps(res["arch"]), "--data", "digits", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert abs(ev["top1"] - res["top1_fp32"]) <= 2 / ev["n"]
    assert main(["deploy", "check", str(out), "--table", str(tables["fp32"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["measured_ms"] > 0
    assert main(["export", "--from", str(tmp_path), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "has no front.json" in capsys.readouterr().err


def pick_arch(run):
    from edgenas.search import pick

    return pick(run, "knee")["arch"]


def test_quickstart_runs_the_whole_pipeline(tmp_path, capsys):
    """The one-command main job, at reduced scale: every step produces its artefact and the models check out."""
    from edgenas.quickstart import quickstart, report

    res = quickstart(tmp_path / "qs", epoch_scale=1.0, predictor_samples=30, calibrate=8)
    for p in ("fp32", "int8"):
        m = res["models"][p]
        assert Path(m["path"]).is_file() and m["measured_ms"] > 0 and m["predicted_ms"] > 0 and 0 <= m["top1"] <= 1
    assert Path(res["plot_png"]).is_file() and Path(res["plot_html"]).is_file()
    assert res["models"]["fp32"]["top1"] > 0.3  # trained, even briefly: well above chance (0.1)
    text = report(res)
    assert "fp32" in text and "int8" in text and "measured" in text
    assert all(m["drift"] > 0 for m in res["models"].values()) and "corrected for it, the errors are fp32" in text
    from edgenas.agent import cpu_features
    from edgenas.deploy import saturating_cpu
    from edgenas.export import read_metadata

    bits = 7 if saturating_cpu(cpu_features()) else 8  # its int8 model is for this CPU: 7-bit weights where 8 saturate
    assert res["int8_weight_bits"] == bits and read_metadata(res["models"]["int8"]["path"])["edgenas.int8_weight_bits"] == str(bits)
    assert not any("VNNI" in w for w in res["int8_warnings"])
    again = quickstart(tmp_path / "qs", epoch_scale=1.0, predictor_samples=30, calibrate=8)  # finished steps are reused
    assert again["arch"] == res["arch"]

    # a supernet trained elsewhere, specialized for this CPU: no training, a predictor fitted on its subnets, the same checks
    ckpt = tmp_path / "qs" / "supernet" / "latest.pt"
    argv = ["quickstart", "--checkpoint", str(ckpt), "--predictor-samples", "20", "--calibrate", "4", "--out", str(tmp_path / "qs2")]
    assert main([*argv, "--json"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert spec["checkpoint"] == str(ckpt) and not (tmp_path / "qs2" / "supernet").exists()
    assert (tmp_path / "qs2" / "predictor.labels.npz").is_file()
    front = json.loads(Path(spec["front"]).read_text())
    assert {m["arch"]["r"] for m in front} == {max(get_space("tiny").resolutions)}  # at its largest resolution only
    assert all(Path(m["path"]).is_file() and m["top1"] > 0.3 for m in spec["models"].values())
    with pytest.raises(EdgeNASError, match="holds the quickstart of another supernet"):
        quickstart(tmp_path / "qs", checkpoint=str(ckpt))  # its steps would be skipped as done
    # missing data or a predictor of another space: said at once, before minutes of profiling
    with pytest.raises(EdgeNASError, match="data path not found"):
        quickstart(tmp_path / "qs3", checkpoint=str(ckpt), data=f"imagefolder:{tmp_path / 'none'}")
    with pytest.raises(EdgeNASError, match="cifar-mbv3"):
        quickstart(tmp_path / "qs3", checkpoint=str(ckpt), predictor="cifar10")
    assert not (tmp_path / "qs3").exists()
    assert main(["quickstart", "--predictor", "p.json"]) == 2 and "go with --checkpoint" in capsys.readouterr().err


def test_export_from_a_run_that_chose_int8_writes_and_checks_int8(trained, tables, tmp_path, capsys, monkeypatch):
    import yaml

    import edgenas.deploy

    scored, top1 = [], edgenas.deploy.onnx_top1
    monkeypatch.setattr(edgenas.deploy, "onnx_top1", lambda path, *a, **kw: scored.append(Path(path).name) or top1(path, *a, **kw))

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"space": "tiny", "precisions": ["fp32", "int8"], "checkpoint": str(trained),
                                                     "table": str(tables["fp32"]), "int8_table": str(tables["int8"])}))
    arch = SP.min_arch(24).to_dict()
    (run / "front.json").write_text(json.dumps([{"arch": arch, "top1": 0.9, "latency": 0.01, "precision": "int8"}]))
    out = tmp_path / "m.onnx"
    assert main(["export", "--from", str(run), "--check", "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["precision"] == "int8" and Path(res["int8_path"]).is_file() and res["int8_speedup"] > 0
    assert [c["precision"] for c in res["check"]] == ["int8"]  # measured against the int8 table
    assert "int8_speedup" in res["check"][0] and "top1_change" in res["check"][0]
    assert res["check"][0]["top1_change"] == res["top1_int8"] - res["top1_fp32"]
    assert sorted(scored) == ["m.int8.onnx", "m.onnx"]  # the check reuses what export scored on the same images


def test_a_quickstart_record_from_before_devices_reads_as_this_cpu(tmp_path):
    from edgenas.quickstart import _same_source

    (tmp_path / "quickstart.json").write_text(json.dumps({"checkpoint": None, "predictor": None}))
    here = {"device": "local", "cpu_model": "X", "provider": "CPUExecutionProvider", "threads": 1}
    _same_source(tmp_path, None, None, here)  # the quickstart was this CPU's, one thread, before --device
    with pytest.raises(EdgeNASError, match="another supernet, predictor or device"):
        _same_source(tmp_path, None, None, {**here, "threads": 2})


@pytest.mark.parametrize("remote", [False, True])
def test_quickstart_report_says_where_the_model_was_measured_and_runs(remote):
    from edgenas.quickstart import report

    model = {"top1": 0.9, "measured_ms": 1.0, "predicted_ms": 1.02, "error": 0.02, "size_bytes": 1000, "drift": None}
    result = {"models": {"fp32": {**model, "path": "qs/model.onnx"}, "int8": {**model, "measured_ms": 0.7, "path": "qs/model.int8.onnx"}},
              "predictor": {"kendall_tau": 0.8}, "search_hypervolume": 0.6, "baseline_hypervolume": 0.59, "budget_ms": 1.1,
              "arch": {}, "deploy": "int8", "plot_png": "p.png", "plot_html": "p.html", "seconds": 12.0,
              "device": {"device": "remote" if remote else "local"}}
    text = report(result)
    assert ("int8 is faster on the device" in text) == remote and ("int8 is faster here" in text) != remote
    assert ("copy qs/model.int8.onnx and deploy/infer.py to the device" in text) == remote
    assert ("run `python3 deploy/infer.py qs/model.int8.onnx IMAGE`" in text) != remote
