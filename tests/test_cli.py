import json
import os
import shutil
import subprocess
import sys

import pytest

from edgenas import Supernet, get_space
from edgenas.cli import main
from edgenas.cli.args import parse_arch
from edgenas.cost import stats


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_spaces(capsys):
    data = run_json(capsys, "spaces")
    names = {s["name"] for s in data["spaces"]}
    assert {"ofa-mbv3", "cifar-mbv3", "tiny"} <= names


@pytest.mark.parametrize("arch", ["max", "min", "random:7"])
def test_stats_matches_library(capsys, arch):
    sp = get_space("ofa-mbv3")
    data = run_json(capsys, "stats", "--space", "ofa-mbv3", "--arch", arch)
    st = stats(sp, parse_arch(sp, arch))
    assert (data["params"], data["macs"], data["resolution"]) == (st.params, st.macs, st.resolution)
    assert sp.arch(data["arch"]) == parse_arch(sp, arch)


def test_stats_arch_from_inline_json_and_file(capsys, tmp_path):
    sp = get_space("ofa-mbv3")
    arch = parse_arch(sp, "random:3")
    inline = run_json(capsys, "stats", "--space", "ofa-mbv3", "--arch", arch.to_json())
    f = tmp_path / "arch.json"
    f.write_text(json.dumps(arch.to_dict(), indent=2))
    from_file = run_json(capsys, "stats", "--space", "ofa-mbv3", "--arch", f"@{f}")
    assert inline == from_file
    assert run_json(capsys, "stats", "--space", "ofa-mbv3", "--arch", "max")["params"] == 7_664_760
    assert run_json(capsys, "stats", "--space", "ofa-mbv3", "--arch", "max", "--num-classes", "10")["params"] == 7_664_760 - 990 * 1281


def test_stats_human_output(capsys):
    code, out, _ = run(capsys, "stats", "--space", "tiny", "--arch", "max")
    assert code == 0 and "params" in out and "macs" in out


def test_export_json_contract(capsys, tmp_path):
    out = tmp_path / "tiny.onnx"
    data = run_json(capsys, "export", "--space", "tiny", "--arch", "random:1", "--out", str(out))
    assert {"max_abs_diff", "path", "params", "macs"} <= set(data)
    assert data["path"] == str(out) and out.is_file()
    assert data["max_abs_diff"] <= 1e-4


def test_export_from_checkpoint(capsys, tmp_path):
    ckpt = Supernet("tiny", seed=5).save(tmp_path / "sn.pt")
    data = run_json(capsys, "export", "--space", "tiny", "--arch", "min", "--checkpoint", str(ckpt), "--data", "digits",
                    "--out", str(tmp_path / "m.onnx"))
    assert data["max_abs_diff"] <= 1e-4 and 0 <= data["top1_fp32"] <= 1
    code, _, err = run(capsys, "export", "--space", "tiny", "--arch", "min", "--checkpoint", str(ckpt), "--out", str(tmp_path / "k.onnx"))
    assert code == 2 and "records no training data" in err
    code, _, err = run(capsys, "export", "--space", "tiny", "--arch", "min", "--checkpoint", str(ckpt), "--num-classes", "3", "--out", str(tmp_path / "n.onnx"))
    assert code == 2 and "contradicts" in err


def _bad(capsys, *argv) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgenas: error: ")
    return lines[0]


def test_bad_input_gets_one_clear_line(capsys, tmp_path):
    sp = get_space("ofa-mbv3")
    d = sp.max_arch().to_dict()
    short = json.dumps({**d, "ks": d["ks"][:-1]})
    assert "'ks' has 19 entries" in _bad(capsys, "stats", "--space", "ofa-mbv3", "--arch", short)
    wrong = json.dumps({**d, "e": [5] + d["e"][1:]})
    assert "'e'[0] = 5 is not one of [3, 4, 6]" in _bad(capsys, "stats", "--space", "ofa-mbv3", "--arch", wrong)
    assert "resolution r = 100" in _bad(capsys, "stats", "--space", "ofa-mbv3", "--arch", json.dumps({**d, "r": 100}))
    assert "unknown space 'nope'" in _bad(capsys, "stats", "--space", "nope", "--arch", "max")
    assert "not valid JSON" in _bad(capsys, "stats", "--space", "tiny", "--arch", "{oops")
    with pytest.raises(SystemExit) as exc:
        main(["quickstart", "--calibrate", "2"])  # the deploy check needs 4 of a table's calibration networks
    assert exc.value.code == 2 and "--calibrate" in capsys.readouterr().err

    ckpt = Supernet("tiny").save(tmp_path / "tiny.pt")
    out = tmp_path / "x.onnx"
    msg = _bad(capsys, "export", "--space", "cifar-mbv3", "--arch", "min", "--checkpoint", str(ckpt), "--out", str(out))
    assert "made for space 'tiny'" in msg and "cifar-mbv3" in msg
    assert not out.exists()
    msg = _bad(capsys, "export", "--space", "tiny", "--arch", "min", "--out", str(tmp_path / "no" / "x.onnx"))
    assert "does not exist" in msg
    assert "needs --arch and --space (or a --checkpoint" in _bad(capsys, "export", "--arch", "min", "--out", str(out))
    assert "checkpoint not found" in _bad(capsys, "eval", "--checkpoint", str(tmp_path / "none.pt"), "--arch", "max")  # no --space
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.pt"]  # nothing half-written


def test_console_script_is_installed():
    exe = shutil.which("edgenas", path=os.path.dirname(sys.executable)) or shutil.which("edgenas")
    assert exe, "the edgenas console script is not on PATH"
    res = subprocess.run([exe, "stats", "--space", "tiny", "--arch", "max", "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["resolution"] == 24
    res = subprocess.run([exe, "stats", "--space", "tiny", "--arch", "maxx"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_torchvision_imports_with_its_operators():
    import torch
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
    assert keep.tolist() == [0]


def test_every_command_prints_its_help():
    import argparse

    from edgenas.cli.parser import build_parser

    def parsers(p: argparse.ArgumentParser):
        yield p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    yield from parsers(sub)

    for p in parsers(build_parser()):
        assert p.prog in p.format_help()  # a bare % in a help text breaks --help with a traceback


def test_export_calibrates_int8_on_the_librarys_number_of_images():
    """The flag's default is written out (the parser does not import onnx); it must stay the library's."""
    from edgenas.cli.parser import build_parser
    from edgenas.quantize import CALIBRATION_IMAGES

    args = build_parser().parse_args(["export", "--space", "tiny", "--arch", "max", "--out", "m.onnx"])
    assert args.calib_images == CALIBRATION_IMAGES
