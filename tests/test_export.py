import os

import numpy as np
import onnx
import pytest
import torch
from helpers import SPACES, calibrated, small_arch

from edgenas import EdgeNASError, get_space
from edgenas.export import OPSET, export_onnx, ort_session


@pytest.mark.parametrize("name", SPACES)
def test_export_parity_and_dynamic_batch(supernets, tmp_path, name):
    sp = get_space(name)
    arch = small_arch(sp, np.random.default_rng(4))
    sub = calibrated(supernets[name], arch).extract().eval()
    res = export_onnx(sub, arch.r, tmp_path / "m.onnx")
    assert res.max_abs_diff <= 1e-4 and res.opset == OPSET

    model = onnx.load(str(res.path))
    assert [i.name for i in model.graph.input] == ["input"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == OPSET

    sess = ort_session(res.path)
    for batch in (1, 5):
        x = torch.randn(batch, 3, arch.r, arch.r, generator=torch.Generator().manual_seed(batch))
        out = sess.run(None, {"input": x.numpy()})[0]
        with torch.no_grad():
            ref = sub(x).numpy()
        assert out.shape == (batch, sp.num_classes)
        assert np.abs(ref).mean() > 1e-2
        assert np.max(np.abs(out - ref)) <= 1e-4


def test_simplified_export_is_rechecked(supernets, tmp_path):
    sp = get_space("tiny")
    arch = sp.max_arch()
    sub = calibrated(supernets["tiny"], arch).extract().eval()
    plain = export_onnx(sub, arch.r, tmp_path / "plain.onnx")
    simple = export_onnx(sub, arch.r, tmp_path / "simple.onnx", simplify=True)
    assert simple.simplified and simple.max_abs_diff <= 1e-4
    n_plain = len(onnx.load(str(plain.path)).graph.node)
    n_simple = len(onnx.load(str(simple.path)).graph.node)
    assert n_simple <= n_plain  # never grows (shared constants are already untied at export, so no Identity is left)
    assert not any(n.op_type == "Identity" for n in onnx.load(str(plain.path)).graph.node)
    assert sorted(os.listdir(tmp_path)) == ["plain.onnx", "simple.onnx"]


def test_export_refuses_unwritable_destination(supernets, tmp_path):
    sub = supernets["tiny"].extract(get_space("tiny").min_arch())
    with pytest.raises(EdgeNASError, match="does not exist"):
        export_onnx(sub, 16, tmp_path / "missing" / "m.onnx")
    with pytest.raises(EdgeNASError, match="is a directory"):
        export_onnx(sub, 16, tmp_path)
