import numpy as np
import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from helpers import SPACES, small_arch

from edgenas import get_space
from edgenas.cost import cost_model, stats


def fvcore_conv_linear_macs(model: torch.nn.Module, resolution: int) -> int:
    flops = FlopCountAnalysis(model.eval(), torch.zeros(1, 3, resolution, resolution))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    by_op = flops.by_operator()
    assert set(by_op) <= {"conv", "linear", "addmm", "batch_norm", "adaptive_avg_pool2d"}, by_op
    return by_op.get("conv", 0) + by_op.get("linear", 0) + by_op.get("addmm", 0)


@pytest.mark.parametrize("name", SPACES)
def test_analytic_cost_equals_fvcore_on_extracted_subnets(supernets, name):
    sp = get_space(name)
    rng = np.random.default_rng(11)
    archs = [sp.max_arch(), sp.min_arch()] + [small_arch(sp, rng) if name == "ofa-mbv3" else sp.sample(rng) for _ in range(3)]
    for arch in archs:
        sub = supernets[name].extract(arch)
        st = stats(sp, arch)
        assert st.params == sum(p.numel() for p in sub.parameters())
        assert st.macs == fvcore_conv_linear_macs(sub, arch.r)
        assert st.resolution == arch.r


@pytest.mark.parametrize("name", SPACES)
def test_vectorised_equals_scalar(name):
    sp = get_space(name)
    X = sp.sample_vectors(np.random.default_rng(0), 200)
    params, macs = cost_model(sp).batch(X)
    for i in range(0, 200, 17):
        st = stats(sp, sp.decode(X[i]))
        assert (params[i], macs[i]) == (st.params, st.macs)


def test_inactive_layers_do_not_count():
    sp = get_space("ofa-mbv3")
    X = sp.sample_vectors(np.random.default_rng(2), 50)
    noisy = X.copy()
    inactive = ~sp.active_mask(X)
    noisy[:, : sp.n_layers][inactive] = 2
    assert np.array_equal(cost_model(sp).batch(X)[1], cost_model(sp).batch(noisy)[1])


def test_num_classes_changes_only_the_classifier():
    sp = get_space("ofa-mbv3")
    a = stats(sp, sp.max_arch(), 1000)
    b = stats(sp, sp.max_arch(), 10)
    assert a.params - b.params == 990 * (1280 + 1)
    assert a.macs - b.macs == 990 * 1280


def test_cost_grows_with_resolution():
    sp = get_space("ofa-mbv3")
    assert stats(sp, sp.max_arch(128)).macs < stats(sp, sp.max_arch(224)).macs
    assert stats(sp, sp.max_arch(128)).params == stats(sp, sp.max_arch(224)).params
