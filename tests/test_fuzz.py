"""Malformed input across every command: one clear line and exit 2, never a traceback, a hang
or a side effect (a file a table or config names is never run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from edgenas import Supernet, get_space
from edgenas.cli import main
from edgenas.latency import LocalBackend
from edgenas.latency.profile import profile
from edgenas.search import AccuracyPredictor, sample_archs

ROOT = Path(__file__).resolve().parent.parent
SP = get_space("tiny")
FAST = {"warmup": 1, "rounds": 1, "runs": 2}
PWNED = "/tmp/edgenas-fuzz-pwned"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Valid inputs to break one thing at a time, and broken ones."""
    d = tmp_path_factory.mktemp("fuzz")
    f: dict[str, Path] = {"dir": d}
    f["table"] = d / "tiny.json"
    profile("tiny", [16], LocalBackend(), f["table"], protocol=FAST, calibrate=2, progress=False)
    table = json.loads(f["table"].read_text())
    f["ckpt"] = d / "tiny.pt"
    Supernet(SP).save(f["ckpt"])
    X = sample_archs(SP, 30, seed=0)
    f["pred"] = d / "pred.json"
    AccuracyPredictor(SP, "ridge").fit(X, np.linspace(0.3, 0.9, len(X))).save(f["pred"])
    pred = json.loads(f["pred"].read_text())

    def write(name: str, content: str | bytes) -> None:
        f[name] = d / name
        f[name].write_bytes(content if isinstance(content, bytes) else content.encode())

    def table_with(name: str, change) -> None:
        t = json.loads(json.dumps(table))
        change(t)
        write(name, json.dumps(t))

    write("garbage", b"\x00\x01garbage\xff")
    write("notjson.json", "{not json")
    write("list.json", "[1, 2, 3]")
    table_with("nan_table.json", lambda t: next(iter(t["entries"].values())).update(median_ms=float("nan")))
    table_with("neg_table.json", lambda t: next(iter(t["entries"].values())).update(median_ms=-1.0))
    table_with("str_table.json", lambda t: next(iter(t["entries"].values())).update(median_ms="fast"))
    table_with("badres_table.json", lambda t: t["meta"].update(resolutions="sixteen"))
    table_with("schema_table.json", lambda t: t.update(schema_version=99))
    table_with("incomplete_table.json", lambda t: (t["meta"].update(complete=False), t["entries"].popitem()))
    table_with("nocal_table.json", lambda t: t.update(calibration={"scale": "x"}))
    table_with("other_space.json", lambda t: t["meta"].update(space="cifar-mbv3"))
    table_with("remote_table.json", lambda t: t["meta"]["device"].update(
        device="remote", runner=f"sh -c 'touch {PWNED}; echo {{}}'"))
    table_with("def_str_table.json", lambda t: t["meta"].update(space_def="tiny"))
    table_with("def_edited_table.json", lambda t: t["meta"].update(space_def={**SP.to_dict(), "resolutions": [16]}))
    write("pred_baddef.json", json.dumps({**pred, "space_def": []}))
    write("space_unknown_field.yaml", "base: tiny\nname: tiny-2\nkernel: [3]\n")
    write("space_huge.yaml", "base: tiny\nname: tiny-2\nfeature_width: 1000000000\n")
    write("space_python.yaml", f"!!python/object/apply:os.system ['touch {PWNED}']\n")
    write("space_list.yaml", "- tiny\n")
    write("space_builtin_name.yaml", "base: tiny\nname: cifar-mbv3\n")
    write("pred_badmodel.json", json.dumps({**pred, "model": "os.system"}))
    write("pred_other.json", json.dumps({**pred, "space": "ofa-mbv3"}))
    write("pred_noX.json", json.dumps({k: v for k, v in pred.items() if k != "X"}))
    ck = torch.load(f["ckpt"], weights_only=True)
    ck["state_dict"] = {k: torch.zeros(3) for k in ck["state_dict"]}
    f["ckpt_shapes"] = d / "shapes.pt"
    torch.save(ck, f["ckpt_shapes"])
    f["ckpt_pickle"] = d / "evil.pt"
    torch.save({"x": os.getcwd, "format": "edgenas.supernet"}, f["ckpt_pickle"])  # a callable: weights_only refuses it
    write("arch_bad.json", '{"ks": [3], "e": [2], "d": [1], "r": 16}')
    write("yaml_batch.yaml", "space: tiny\nbatch_size: big\n")
    write("yaml_epochs.yaml", "space: tiny\nphases:\n  - {name: full, epochs: -1, lr: 0.1}\n")
    write("yaml_phases.yaml", "space: tiny\nphases: abc\n")
    write("yaml_list.yaml", "- 1\n- 2\n")
    write("yaml_broken.yaml", "space: [tiny\n")
    write("yaml_python.yaml", "space: !!python/object/apply:os.system ['touch /tmp/edgenas-fuzz-pwned']\n")
    write("yaml_lr.yaml", "space: tiny\nphases:\n  - {name: full, epochs: 1, lr: .nan}\n")
    write("yaml_device.yaml", "space: tiny\ndata: digits\ndevice: cuda:99\n")  # a GPU this machine lacks
    write("yaml_unknown.yaml", "space: tiny\nlearning_rate: 3\n")
    write("yaml_pop.yaml", "space: tiny\npop_size: many\n")
    write("yaml_objectives.yaml", "space: tiny\nobjectives: 7\n")
    write("yaml_refs.yaml", "space: tiny\nreferences: [1, 2]\n")
    write("yaml_gens.yaml", "space: tiny\ngenerations: -4\n")
    write("yaml_limit.yaml", "space: tiny\nmax_latency: [1]\n")
    write("corrupt.zip", b"PK\x03\x04 this is not a zip")
    f["empty_dir"] = d / "empty"
    f["empty_dir"].mkdir()
    f["onezip"] = d / "one.zip"
    with zipfile.ZipFile(f["onezip"], "w") as z:
        z.writestr("cat/a.jpg", b"not a jpeg")
        z.writestr("dog/b.jpg", b"not a jpeg either")
    f["run_empty"] = d / "run_empty"
    f["run_empty"].mkdir()
    return {k: str(v) for k, v in f.items()}


def bad_runner(reply: str) -> str:
    return f"{sys.executable} -c 'import sys; sys.stdin.read(); sys.stdout.write({reply!r})'"


ARCHES = [
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": NaN}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": 1e400}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": -16}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": 16.5}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": "16"}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": true}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": [16, 24]}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": 17}',
    '{"ks": [3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": 16}',
    '{"ks": [4,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": 16}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,9], "d": [1,1,1], "r": 16}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,7], "r": 16}',
    '{"ks": ["a",3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": 16}',
    '{"ks": [[3],3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": 16}',
    '{"ks": [null,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": 16}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1], "r": 16, "w": 2}',
    '{"ks": 3, "e": [2,2,2,2,2,2], "d": [1,1,1], "r": 16}',
    '{"e": [2,2,2,2,2,2], "d": [1,1,1], "r": 16}',
    '{"ks": [3,3,3,3,3,3], "e": [2.5,2,2,2,2,2], "d": [1,1,1], "r": 16}',
    '{"ks": [3,3,3,3,3,3], "e": [2,2,2,2,2,2], "d": [1,1,1e400], "r": 16}',
    "[1, 2, 3]", "null", '"max"', "{}", "{", "", " ", "maxx", "random:", "random:²", "random:-1", "random:1.5",
    "random:99999999999999999999999", "@/nonexistent/arch.json", "@", "@{dir}", "@{garbage}", "@{arch_bad.json}",
]

CASES: list[tuple[str, list[str]]] = []


def case(name: str, *argv: str) -> None:
    CASES.append((name, list(argv)))


for i, a in enumerate(ARCHES):
    case(f"stats-arch-{i}", "stats", "--space", "tiny", "--arch", a)
for i, a in enumerate(ARCHES[:12]):
    case(f"latency-arch-{i}", "latency", "--table", "{table}", "--space", "tiny", "--arch", a)
for bad in ("nope", "", "TINY", "tiny ", "../tiny"):
    case(f"stats-space-{bad!r}", "stats", "--space", bad, "--arch", "max")
for bad in ("0", "-5", "1e9", "1000000000", "ten", "2.5"):
    case(f"stats-classes-{bad}", "stats", "--space", "tiny", "--arch", "max", "--num-classes", bad)
    case(f"export-classes-{bad}", "export", "--space", "tiny", "--arch", "max", "--num-classes", bad, "--out", "{dir}/x.onnx")

# export
for out in ("/proc/x.onnx", "/nonexistent/dir/x.onnx", "{dir}", "/dev/null/x.onnx"):
    case(f"export-out-{out}", "export", "--space", "tiny", "--arch", "max", "--out", out)
for ck in ("/nonexistent.pt", "{garbage}", "{ckpt_shapes}", "{ckpt_pickle}", "{table}", "{dir}"):
    case(f"export-ckpt-{ck}", "export", "--space", "tiny", "--arch", "max", "--checkpoint", ck, "--out", "{dir}/x.onnx")
case("export-no-arch", "export", "--space", "tiny", "--out", "{dir}/x.onnx")
case("export-from-missing", "export", "--from", "/nonexistent/run", "--out", "{dir}/x.onnx")
case("export-from-empty", "export", "--from", "{run_empty}", "--out", "{dir}/x.onnx")
case("export-from-file", "export", "--from", "{table}", "--out", "{dir}/x.onnx")
case("export-calib-0", "export", "--space", "tiny", "--arch", "max", "--calib-images", "0", "--out", "{dir}/x.onnx")
case("export-seed-neg", "export", "--space", "tiny", "--arch", "max", "--seed", "-1", "--out", "{dir}/x.onnx")
case("export-threads-0", "export", "--space", "tiny", "--arch", "max", "--check", "--table", "{table}", "--threads", "0",
     "--out", "{dir}/x.onnx")
case("export-data-unknown", "export", "--space", "tiny", "--arch", "max", "--checkpoint", "{ckpt}", "--data", "mnist",
     "--out", "{dir}/x.onnx")

# profile
for flag, bad in (("--threads", "0"), ("--threads", "-2"), ("--warmup", "-3"), ("--runs", "0"), ("--rounds", "0"),
                  ("--calibrate", "-1"), ("--seed", "abc"), ("--resolution", "0"), ("--resolution", "17"),
                  ("--num-classes", "0"), ("--runner-timeout", "0"), ("--runner-timeout", "nan"), ("--runs", "1e9"), ("--statistic", "mean")):
    case(f"profile{flag}={bad}", "profile", "--device", "cpu", "--space", "tiny", flag, bad, "--out", "{dir}/p.json")
case("profile-device-unknown", "profile", "--device", "tpu9000", "--space", "tiny", "--out", "{dir}/p.json")
case("profile-remote-no-runner", "profile", "--device", "remote", "--space", "tiny", "--out", "{dir}/p.json")
case("profile-runner-without-remote", "profile", "--device", "cpu", "--runner", "ssh x", "--space", "tiny", "--out", "{dir}/p.json")
case("profile-runner-quote", "profile", "--device", "remote", "--runner", "ssh 'board", "--space", "tiny", "--out", "{dir}/p.json")
case("profile-runner-missing", "profile", "--device", "remote", "--runner", "/nonexistent/agent", "--space", "tiny",
     "--out", "{dir}/p.json")
for i, reply in enumerate(['{"ok": true}', "[1, 2]", '"ok"', "\x00\x01\x02 garbage \x00", '{"ok": "yes"}',
                           '{"ok": true, "device": []}', '{"ok": false, "error": "\\u0000boom"}', "", "{" * 5000]):
    case(f"profile-runner-reply-{i}", "profile", "--device", "remote", "--runner", bad_runner(reply), "--space", "tiny",
         "--out", "{dir}/p.json")
case("profile-out-proc", "profile", "--device", "cpu", "--space", "tiny", "--out", "/proc/p.json")
# quickstart for a device: a device it cannot reach is said before anything is written or profiled
case("quickstart-device-unknown", "quickstart", "--device", "tpu9000", "--out", "{dir}/qs")
case("quickstart-remote-no-runner", "quickstart", "--cifar10", "--device", "remote", "--out", "{dir}/qs")
case("quickstart-runner-without-remote", "quickstart", "--cifar10", "--runner", "ssh x", "--out", "{dir}/qs")
case("quickstart-runner-missing", "quickstart", "--cifar10", "--device", "remote", "--runner", "/nonexistent/agent", "--out", "{dir}/qs")
for i, reply in enumerate(['{"ok": true, "device": []}', "\x00\x01 garbage", '{"ok": false, "error": "boom"}']):
    case(f"quickstart-runner-reply-{i}", "quickstart", "--cifar10", "--device", "remote", "--runner", bad_runner(reply), "--out", "{dir}/qs")
case("profile-out-dir", "profile", "--device", "cpu", "--space", "tiny", "--out", "{dir}")
case("profile-other-table", "profile", "--device", "cpu", "--space", "cifar-mbv3", "--resolution", "32", "--out", "{table}")

# latency
for t in ("/nonexistent.json", "{garbage}", "{notjson.json}", "{list.json}", "{nan_table.json}", "{neg_table.json}",
          "{str_table.json}", "{badres_table.json}", "{schema_table.json}", "{incomplete_table.json}", "{nocal_table.json}",
          "{other_space.json}", "{pred}", "{dir}"):
    case(f"latency-table-{t}", "latency", "--table", t, "--space", "tiny", "--arch", "max")
case("latency-resolution-missing", "latency", "--table", "{table}", "--space", "tiny", "--arch", "max")
for bad in ("0", "-1", "1e9", "1000000000", "x"):
    case(f"validate-samples-{bad}", "latency", "validate", "--table", "{table}", "--samples", bad)
case("validate-remote-table-no-runner", "latency", "validate", "--table", "{remote_table.json}", "--samples", "2")
case("validate-bad-table", "latency", "validate", "--table", "{nan_table.json}", "--samples", "2")
case("validate-out-proc", "latency", "validate", "--table", "{table}", "--samples", "2", "--out", "/proc/v")

# train
for flag, bad in (("--val-fraction", "-0.5"), ("--val-fraction", "2"), ("--val-fraction", "nan"), ("--limit", "-5"),
                  ("--batch-size", "0"), ("--random-subnets", "1000000"), ("--random-subnets", "-1"),
                  ("--val-per-class", "0"), ("--epoch-scale", "0"), ("--epoch-scale", "-1"), ("--epoch-scale", "inf"),
                  ("--bn-calib-images", "0"), ("--seed", "-3"), ("--batch-size", "1e9"), ("--split", "middle")):
    case(f"train{flag}={bad}", "train", "--space", "tiny", flag, bad, "--out", "{dir}/train-run")
for cfg in ("yaml_batch.yaml", "yaml_epochs.yaml", "yaml_phases.yaml", "yaml_list.yaml", "yaml_broken.yaml",
            "yaml_python.yaml", "yaml_lr.yaml", "yaml_unknown.yaml", "yaml_device.yaml"):
    case(f"train-config-{cfg}", "train", "--config", "{" + cfg + "}", "--out", "{dir}/train-run")
case("train-config-missing", "train", "--config", "/nonexistent.yaml", "--out", "{dir}/train-run")
case("train-data-unknown", "train", "--space", "tiny", "--data", "imagenet-21k", "--out", "{dir}/train-run")
case("train-data-missing-folder", "train", "--space", "tiny", "--data", "imagefolder:/nonexistent", "--out", "{dir}/train-run")
case("train-data-corrupt-zip", "train", "--space", "tiny", "--data", "imagefolder:{corrupt.zip}", "--out", "{dir}/train-run")
case("train-data-empty-folder", "train", "--space", "tiny", "--data", "imagefolder:{empty_dir}", "--out", "{dir}/train-run")
case("train-data-bad-images", "train", "--space", "tiny", "--data", "imagefolder:{onezip}", "--out", "{dir}/train-run")
case("train-resume-nothing", "train", "--out", "{dir}/nothing-here", "--resume")
case("train-out-file", "train", "--space", "tiny", "--out", "{table}")
case("train-teacher-garbage", "train", "--space", "tiny", "--teacher", "{garbage}", "--out", "{dir}/train-run")
case("train-no-space", "train", "--out", "{dir}/train-run")

for bad in ("gpu", "cuda:x", "cuda:99", ""):  # not a PyTorch device, or a GPU this machine lacks
    case(f"train-device-{bad!r}", "train", "--space", "tiny", "--data", "digits", "--device", bad, "--out", "{dir}/train-run")
    case(f"eval-device-{bad!r}", "eval", "--space", "tiny", "--checkpoint", "{ckpt}", "--arch", "max", "--data", "digits", "--device", bad)
    case(f"predictor-device-{bad!r}", "predictor", "--space", "tiny", "--checkpoint", "{ckpt}", "--device", bad, "--out", "{dir}/p.json")
    case(f"search-device-{bad!r}", "search", "--space", "tiny", "--checkpoint", "{ckpt}", "--data", "digits", "--device", bad,
         "--out", "{dir}/search-run")

# eval / predictor
for ck in ("/nonexistent.pt", "{garbage}", "{ckpt_shapes}", "{ckpt_pickle}"):
    case(f"eval-ckpt-{ck}", "eval", "--space", "tiny", "--checkpoint", ck, "--arch", "max", "--data", "digits")
    case(f"predictor-ckpt-{ck}", "predictor", "--space", "tiny", "--checkpoint", ck, "--out", "{dir}/p.json")
case("eval-calib-0", "eval", "--space", "tiny", "--checkpoint", "{ckpt}", "--arch", "max", "--data", "digits", "--calib-images", "0")
case("eval-data-unknown", "eval", "--space", "tiny", "--checkpoint", "{ckpt}", "--arch", "max", "--data", "svhn")
case("eval-wrong-space", "eval", "--space", "cifar-mbv3", "--checkpoint", "{ckpt}", "--arch", "max", "--data", "digits")
for flag, bad in (("--samples", "1e9"), ("--samples", "1000000000"), ("--samples", "0"), ("--holdout", "1.5"),
                  ("--holdout", "0"), ("--resolution", "99"), ("--time-limit", "0"), ("--time-limit", "nan")):
    case(f"predictor{flag}={bad}", "predictor", "--space", "tiny", "--checkpoint", "{ckpt}", flag, bad, "--out", "{dir}/p.json")
for sf in ("space_unknown_field.yaml", "space_huge.yaml", "space_python.yaml", "space_list.yaml", "space_builtin_name.yaml",
           "garbage", "notjson.json"):
    case(f"stats-space-file-{sf}", "stats", "--space", "{" + sf + "}", "--arch", "max")
case("stats-space-file-missing", "stats", "--space", "/nonexistent/space.yaml", "--arch", "max")
case("profile-space-file-huge", "profile", "--device", "cpu", "--space", "{space_huge.yaml}", "--out", "{dir}/p.json")
case("train-space-file-python", "train", "--space", "{space_python.yaml}", "--out", "{dir}/train-run")
for t in ("def_str_table.json", "def_edited_table.json"):
    case(f"validate-{t}", "latency", "validate", "--table", "{" + t + "}", "--samples", "2")

# search
S = ["search", "--space", "tiny", "--table", "{table}", "--predictor", "{pred}", "--out", "{dir}/search-run"]
for flag, bad in (("--pop-size", "1e9"), ("--pop-size", "1000000000"), ("--pop-size", "1"), ("--generations", "0"),
                  ("--seed", "-1"), ("--objectives", "top1,speed"), ("--objectives", "top1,top1"), ("--objectives", ","),
                  ("--algorithm", "simulated-annealing"), ("--max-latency", "-3ms"), ("--max-latency", "fast"),
                  ("--max-latency", "1e400"), ("--max-latency", "0.0000001ms"), ("--max-macs", "3kg"), ("--min-top1", "2"),
                  ("--min-top1", "-0.5"), ("--max-params", "nan"), ("--resolutions", "99"), ("--num-classes", "0"),
                  ("--precision", "fp16"), ("--precision", "fp32,int8"), ("--precision", "int8,int8"), ("--int8-drop", "-1"),
                  ("--int8-drop", "nan"), ("--precision", "int8")):
    case(f"search{flag}={bad}", *S, flag, bad)
for t in ("{nan_table.json}", "{other_space.json}", "{incomplete_table.json}", "/nonexistent.json"):
    case(f"search-table-{t}", "search", "--space", "tiny", "--table", t, "--predictor", "{pred}", "--out", "{dir}/search-run")
for p in ("{pred_badmodel.json}", "{pred_other.json}", "{pred_noX.json}", "{pred_baddef.json}", "{garbage}", "/nonexistent.json",
          "{table}"):
    case(f"search-predictor-{p}", "search", "--space", "tiny", "--table", "{table}", "--predictor", p, "--out", "{dir}/search-run")
for cfg in ("yaml_pop.yaml", "yaml_objectives.yaml", "yaml_refs.yaml", "yaml_gens.yaml", "yaml_limit.yaml", "yaml_python.yaml",
            "yaml_list.yaml"):
    case(f"search-config-{cfg}", "search", "--config", "{" + cfg + "}", "--out", "{dir}/search-run")
case("search-resume-nothing", "search", "--out", "{dir}/no-search", "--resume")
case("search-out-file", *S[:-2], "--out", "{table}")
case("search-checkpoint-no-data", "search", "--space", "tiny", "--checkpoint", "{ckpt}", "--out", "{dir}/search-run")

# pick / deploy check
for run_dir in ("/nonexistent", "{run_empty}", "{table}"):
    case(f"pick-{run_dir}", "pick", run_dir)
for model in ("/nonexistent.onnx", "{garbage}", "{table}"):
    case(f"deploy-check-{model}", "deploy", "check", model, "--table", "{table}")


def _fill(argv: list[str], files: dict[str, str]) -> list[str]:
    out = []
    for a in argv:
        for k, v in files.items():
            a = a.replace("{" + k + "}", v)
        out.append(a)
    return out


def test_the_suite_is_large():
    assert len(CASES) >= 150 and len({n for n, _ in CASES}) == len(CASES)


@pytest.mark.parametrize("name,argv", CASES, ids=[n for n, _ in CASES])
def test_malformed_input_gets_one_clear_line(name, argv, files, capsys):
    Path(PWNED).unlink(missing_ok=True)
    try:
        code = main(_fill(argv, files))
    except SystemExit as exc:  # argparse: usage and one error line
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert "error:" in err and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("edgenas: error:")]
    assert len(lines) <= 1 and "\x00" not in err
    assert out == "", out  # nothing on stdout: a --json reader sees no half result
    assert not Path(PWNED).exists(), "a file made edgenas run a command"
    assert not any((Path(files["dir"]) / run).exists() for run in ("train-run", "search-run", "qs"))


def test_runner_timeout_kills_the_whole_process_group(tmp_path, capsys):
    marker = tmp_path / "grandchild-alive"
    runner = (f"{sys.executable} -c \"import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
              f"'import time; time.sleep(3); open(\\'{marker}\\', \\'w\\')']); import time; time.sleep(60)\"")
    code = main(["profile", "--device", "remote", "--runner", runner, "--runner-timeout", "1", "--space", "tiny",
                 "--out", str(tmp_path / "t.json")])
    assert code == 2 and "did not answer within 1 s" in capsys.readouterr().err
    import time

    time.sleep(3.5)
    assert not marker.exists()  # the grandchild was killed with its group


@pytest.mark.parametrize("args,message", [
    (["/nonexistent.onnx", "x.png"], "model not found"),
    (["{garbage}", "x.png"], "cannot load model"),
    (["{model}", "/nonexistent.png"], "cannot read image"),
    (["{model}", "{table}"], "cannot read image"),
    (["{model}", "{garbage}"], "cannot read image"),
    (["{model}", "x.png", "--provider", "openvino"], "--provider openvino is not in this onnxruntime"),  # the plain onnxruntime
])
def test_inference_example_bad_input(args, message, files, tmp_path):
    from edgenas.deploy import model_metadata
    from edgenas.export import export_onnx

    model = tmp_path / "m.onnx"
    export_onnx(Supernet(SP).extract(SP.max_arch(16)).eval(), 16, model, metadata=model_metadata(SP, SP.max_arch(16)))
    argv = [a.replace("{model}", str(model)) for a in _fill(args, files)]
    proc = subprocess.run([sys.executable, str(ROOT / "deploy" / "infer.py"), *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
