"""Search spaces defined in a YAML/JSON file (``--space my.yaml``), and the definition that every
file made with such a space records, so later commands need neither the file nor a registration."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields

import onnx
import pytest
import torch
from test_cli import _bad, run, run_json

from edgenas import CheckpointError, SearchSpace, Supernet, get_space, list_spaces
from edgenas.errors import SpaceError
from edgenas.latency import LatencyError, LatencyTable
from edgenas.search import AccuracyPredictor
from edgenas.space import definition_record, registry
from edgenas.space.definition import _FIELDS, space_from_dict
from edgenas.supernet import read_checkpoint

SPACE_FILE = """\
base: tiny
name: tiny-k3
ks_choices: [3]
resolutions: [16, 20]
"""


@pytest.fixture(autouse=True)
def registry_restored():
    """Spaces these tests register are gone afterwards, as in a new process."""
    before = dict(registry._SPACES)
    yield
    registry._SPACES.clear()
    registry._SPACES.update(before)


@pytest.mark.parametrize("name", list_spaces())
def test_every_builtin_space_rebuilds_from_its_recorded_definition(name):
    sp = get_space(name)
    recorded = json.loads(json.dumps(sp.definition()))  # as a file stores it
    again = space_from_dict(recorded, "test", registry._SPACES)
    assert again == sp and again.digest() == sp.digest() and again.description == sp.description
    assert definition_record(sp) == {}  # a built-in name says it all: artefacts stay as they were


def test_every_space_field_is_checked():
    assert set(_FIELDS) == {f.name for f in fields(SearchSpace)}


def test_a_space_file_changes_a_builtin_space(capsys, tmp_path):
    f = tmp_path / "tiny-k3.yaml"
    f.write_text(SPACE_FILE)
    data = run_json(capsys, "stats", "--space", str(f), "--arch", "max")
    assert data["resolution"] == 20 and data["space"] == "tiny-k3"
    sp = get_space("tiny-k3")  # registered by name once read
    assert sp.ks_choices == (3,) and sp.resolutions == (16, 20) and sp.stages == get_space("tiny").stages
    assert sp.description == "tiny with ks_choices, resolutions changed" and definition_record(sp)["space_def"]["name"] == "tiny-k3"
    shown = run_json(capsys, "spaces", "--show", str(f))
    assert shown["digest"] == sp.digest() and shown["n_archs"] == sp.n_archs() < get_space("tiny").n_archs()
    code, text, _ = run(capsys, "spaces", "--show", "tiny")  # the YAML it prints is a space file: edited, it defines a new space
    assert code == 0
    mine = tmp_path / "mine.yaml"
    mine.write_text(text.replace("name: tiny", "name: tiny-wide").replace("feature_width: 128", "feature_width: 256"))
    wide = run_json(capsys, "spaces", "--show", str(mine))["definition"]
    assert wide["feature_width"] == 256 and {k: v for k, v in wide.items() if k not in ("name", "feature_width")} == {
        k: v for k, v in json.loads(json.dumps(get_space("tiny").definition())).items()
        if k not in ("name", "feature_width")}


@pytest.mark.parametrize("text, message", [
    ("base: tiny\nname: tiny-x\nkernel: [3]\n", "unknown space field(s) ['kernel']"),
    ("base: tiny\nname: tiny-x\nks_choices: [3, 4]\n", "'ks_choices' must be odd kernel sizes"),
    ("base: tiny\nname: tiny-x\nstages: [{width: 16, stride: 3, act: relu, se: false}]\n", "'stages' must be a list"),
    ("base: tiny\nname: tiny-x\nresolutions: [32, 24]\n", "resolutions must be sorted"),
    ("base: tiny\nname: tiny-x\nfeature_width: 100000\n", "'feature_width' must be an integer from 1 to 8192"),
    ("base: tiny\nname: tiny-x\nresolutions: 32\n", "'resolutions' must be input resolutions"),
    ("base: tiny\nresolutions: [32]\n", "needs a 'name' of its own"),
    ("base: nope\nname: x\n", "unknown space 'nope'"),
    ("base: bad.yaml\nname: x\n", "'base' must be the name of a registered space"),  # itself: no endless recursion
    ("name: x\nks_choices: [3]\n", "missing space field(s)"),
    ("base: tiny\nname: ../x\n", "'name' must be 1-64 letters"),
    ("base: tiny\nresolutions: [32]\nname: tiny\n", "a different space of that name is registered"),
    ("- tiny\n", "must be a YAML mapping"),
    ("base: [tiny\n", "is not valid YAML"),
])
def test_a_bad_space_file_gets_one_clear_line(capsys, tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    line = _bad(capsys, "stats", "--space", str(f), "--arch", "max")
    assert message in line and ("bad.yaml" in line or "unknown space" in line)


def test_a_missing_space_file_is_named(capsys, tmp_path):
    assert "cannot read space file" in _bad(capsys, "stats", "--space", str(tmp_path / "none.yaml"), "--arch", "max")


def test_a_recorded_definition_must_name_its_space():
    with pytest.raises(SpaceError, match="names space 'tiny'"):
        get_space("other", get_space("tiny").to_dict())


FAST = ["--warmup", "2", "--rounds", "2", "--runs", "5"]


def test_a_space_file_is_needed_only_by_the_commands_that_name_it(capsys, tmp_path):
    """Profile, train, fit, search and export with ``--space FILE``; then, with the file gone and in a
    new process, every command that reads what they wrote rebuilds the space from the definition it
    records: the table, the checkpoint, the predictor, the search run and the exported model."""
    f = tmp_path / "tiny-k3.yaml"
    f.write_text(SPACE_FILE)
    table, run_dir, pred, search_dir, model = (tmp_path / n for n in ("t.json", "run", "p.json", "search", "m.onnx"))
    assert main_ok(capsys, "profile", "--device", "cpu", "--space", str(f), "--resolution", "20", "--calibrate", "3", *FAST,
                   "--out", str(table))
    assert main_ok(capsys, "train", "--space", str(f), "--data", "digits", "--limit", "300", "--batch-size", "64",
                   "--bn-calib-images", "64", "--epoch-scale", "0.25", "--device", "cpu", "--out", str(run_dir))
    assert main_ok(capsys, "predictor", "--space", str(f), "--checkpoint", str(run_dir / "latest.pt"), "--samples", "20",
                   "--calib-images", "64", "--out", str(pred))
    assert main_ok(capsys, "search", "--space", str(f), "--table", str(table), "--predictor", str(pred), "--pop-size", "8",
                   "--generations", "2", "--no-baseline", "--out", str(search_dir))
    assert main_ok(capsys, "export", "--from", str(search_dir), "--out", str(model))
    edited = json.loads(table.read_text())
    edited["meta"]["space_def"]["resolutions"] = [16]
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    with pytest.raises(LatencyError, match="does not match its recorded digest"):
        LatencyTable.load(tmp_path / "edited.json").predict(get_space("tiny-k3").max_arch())
    # so is an edited definition in a checkpoint, a predictor or an exported model: each records its digest beside it
    ckpt = torch.load(run_dir / "latest.pt", weights_only=True)
    ckpt["space_def"]["resolutions"] = [16]
    torch.save(ckpt, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="does not match its recorded digest"):
        Supernet.from_checkpoint(read_checkpoint(tmp_path / "edited.pt"))
    edited = json.loads(pred.read_text())
    edited["space_def"]["resolutions"] = [16]
    (tmp_path / "edited-p.json").write_text(json.dumps(edited))
    with pytest.raises(SpaceError, match="does not match its recorded digest"):
        AccuracyPredictor.load(tmp_path / "edited-p.json")
    onnx_model = onnx.load(str(model))
    for prop in onnx_model.metadata_props:
        if prop.key == "edgenas.space_def":
            prop.value = prop.value.replace('"resolutions": [16, 20]', '"resolutions": [16]')
            assert '[16]' in prop.value
    onnx.save(onnx_model, str(tmp_path / "edited.onnx"))
    code, _, err = run(capsys, "deploy", "check", str(tmp_path / "edited.onnx"), "--table", str(table), "--data", "digits")
    assert code != 0 and "does not match its recorded digest" in err and "Traceback" not in err
    f.unlink()
    later = f"""
import json, sys
from edgenas.cli import main
from edgenas.space import list_spaces
assert "tiny-k3" not in list_spaces()
for argv in (["latency", "validate", "--table", "{table}", "--samples", "2", "--no-noise-floor", "--out", "{tmp_path}/v"],
             ["deploy", "check", "{model}", "--table", "{table}", "--data", "digits"],
             ["export", "--from", "{search_dir}", "--pick", "knee", "--out", "{tmp_path}/m2.onnx"],
             ["eval", "--checkpoint", "{run_dir}/latest.pt", "--arch", "max", "--data", "digits"],  # no --space: the checkpoint's
             ["export", "--checkpoint", "{run_dir}/latest.pt", "--arch", "min", "--out", "{tmp_path}/m3.onnx"],
             ["search", "--table", "{table}", "--predictor", "{pred}", "--pop-size", "8", "--generations", "2", "--no-baseline",
              "--out", "{tmp_path}/search2"],  # no --space: the predictor's
             ["train", "--resume", "--out", "{run_dir}"]):
    code = main(argv + ["--json"])
    assert code == 0, argv
print("ok", sorted(s for s in list_spaces() if s == "tiny-k3"))
"""
    res = subprocess.run([sys.executable, "-c", later], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "ok ['tiny-k3']"
    cfg = (run_dir / "config.yaml").read_text()
    assert "space: tiny-k3\nspace_def:" in cfg and str(f) not in cfg  # the run names the space, not the file


def main_ok(capsys, *argv: str) -> bool:
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    return True
