"""Elastic width per stage: one gene per stage through space, supernet, cost and training (latency tables: test_latency.py)."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import calibrated

from edgenas import ArchError, EdgeNASError, SpaceError, Supernet, get_space
from edgenas.cost import stats
from edgenas.train import Phase, Trainer, default_phases, load_config, sandwich, step_rng


def test_width_is_a_per_stage_gene_and_sets_the_channels():
    sp, fixed = get_space("tiny-width"), get_space("tiny")
    assert sp.n_genes == fixed.n_genes + sp.n_stages and sp.n_archs() == fixed.n_archs() * 2**3
    assert "width_choices" not in fixed.to_dict()  # spaces without it keep their digests and genes
    arch = sp.arch({"ks": [3] * 6, "e": [2] * 6, "d": [2, 1, 2], "r": 16, "w": [1.0, 0.5, 0.5]})
    assert sp.decode(sp.encode(arch)) == arch and json.loads(arch.to_json())["w"] == [1.0, 0.5, 0.5]
    net = sp.net_spec(arch)
    # stage widths 16, 24 -> 16, 32 -> 16 at 1.0, 0.5, 0.5; a stage's first block reads the previous stage's width
    assert [(b.in_ch, b.out_ch) for b in net.blocks[1:]] == [(8, 16), (16, 16), (16, 16), (16, 16), (16, 16)]
    assert net.head.in_ch == 16 and sp.max_arch().w == (1.0,) * 3 and sp.min_arch().w == (0.5,) * 3
    assert stats(sp, arch).params < stats(sp, replace(arch, w=(1.0,) * 3)).params

    d = arch.to_dict()
    with pytest.raises(ArchError, match=r"'w'\[1\] = 0.75 is not one of \[0.5, 1.0\] in space 'tiny-width'"):
        sp.arch({**d, "w": [1.0, 0.75, 0.5]})
    with pytest.raises(ArchError, match=r"'w' has 2 entries; space 'tiny-width' needs 3"):
        sp.arch({**d, "w": [1.0, 0.5]})
    with pytest.raises(ArchError, match="space 'tiny' fixes it per stage"):
        fixed.arch(d)
    for bad in ((1.0, 0.5), (0.5,), (0.5, 0.8), (0.0, 1.0)):
        with pytest.raises(SpaceError, match="width_choices must be"):
            replace(fixed, width_choices=bad)


def test_vectorised_width_pairs_match_the_arch():
    sp = get_space("cifar-mbv3-width")
    # 0.75x and 1x of the first stage's 24 channels are both 24: one network, one canonical vector
    narrow = replace(sp.max_arch(), w=(0.75,) + (1.0,) * 4)
    assert sp.canonical(narrow) == sp.max_arch() and sp.net_spec(narrow) == sp.net_spec(sp.max_arch())
    assert sp.n_archs() == get_space("cifar-mbv3").n_archs() * 2 * 3**4
    X = sp.sample_vectors(np.random.default_rng(3), 30)
    pairs, W = sp.slot_width_pairs(X), len(sp.widths)
    for x, row in zip(X, pairs):
        arch = sp.decode(x)
        for slot in range(sp.n_layers):
            w_in, w_out = divmod(int(row[slot]), W)
            assert (w_in, w_out) in sp.slot_width_choices(slot)
            assert sp.slot_io(slot, sp.width_pair((w_in, w_out)))[:2] == sp.slot_io(slot, sp.slot_width(arch, slot))[:2]


def test_narrow_subnets_run_inside_the_supernet_and_extract_exactly(image):
    """Mixed widths, including cifar-mbv3-width's half-width first stage (16 -> 16 channels at
    stride 1: a residual the full-width block does not have)."""
    sp = get_space("cifar-mbv3-width")
    net = Supernet(sp)
    arch = replace(sp.min_arch(24), d=(2,) * 5, w=(0.5, 0.75, 1.0, 0.5, 0.75))
    assert sp.net_spec(arch).blocks[1].residual and not sp.net_spec(sp.max_arch()).blocks[1].residual
    for a in (arch, sp.min_arch(), sp.sample(np.random.default_rng(1))):
        calibrated(net, a)
        x = image(a.r, seed=2)
        with torch.no_grad():
            y = net(x)
            assert y.abs().mean() > 1e-2 and torch.max(torch.abs(y - net.extract(a).eval()(x))) <= 1e-5
    # the narrow net's weights are the leading filters of the full ones
    sub = net.extract(arch)
    assert torch.equal(sub.head.final_expand.conv.weight, net.head.final_expand.conv.weight[:, : sp.stage_width(4, 0.75)])


def test_width_joins_in_the_expand_phases_and_is_sampled_per_stage():
    sp = get_space("tiny-width")
    phases = default_phases(sp)
    assert [p.choices(sp)["w"] for p in phases] == [(1.0,), (1.0,), (1.0,), (0.5, 1.0)]
    assert sandwich(sp, phases[0], step_rng(0, 1), 2, 24) == [sp.max_arch(24)]
    drawn = [a for step in range(10) for a in sandwich(sp, phases[-1], step_rng(0, step), 2, 24)]
    assert drawn[1].w == (0.5,) * 3  # the smallest subnet is the narrowest
    assert {w for a in drawn for w in a.w} == {0.5, 1.0}
    with pytest.raises(EdgeNASError, match=r"w \[0.25\] not a subset of \[0.5, 1.0\]"):
        Phase("expand", 1, 0.1, w=[0.25]).choices(sp)


@pytest.mark.parametrize("name", ["tiny-width", "cifar-mbv3-width"])
def test_sorting_widths_keeps_the_function_and_puts_important_channels_first(image, name):
    sp = get_space(name)
    net = Supernet(sp, seed=3)
    with torch.no_grad():  # distinct BN scales, so the order is decided by them
        for block in net.blocks:
            block.project_bn.weight.copy_(torch.rand(block.out_ch, generator=torch.Generator().manual_seed(block.out_ch)) + 0.1)
    archs = [sp.max_arch(), sp.sample(np.random.default_rng(0))]
    x = image(sp.max_arch().r, seed=1)
    before = []
    for a in archs[:1]:
        calibrated(net, a)
        with torch.no_grad():
            before.append(net(x))
    net.sort_widths()
    with torch.no_grad():
        assert torch.allclose(net(x), before[0], atol=1e-5)  # the full network computes the same function
    D = sp.max_depth
    for stage in range(sp.n_stages):
        importance = sum(net.blocks[stage * D + i].project_bn.weight.abs() for i in range(D))
        assert torch.all(importance[:-1] >= importance[1:])
    # a narrow subnet still runs inside the supernet exactly as extracted
    calibrated(net, archs[1])
    with torch.no_grad():
        assert torch.max(torch.abs(net(image(archs[1].r)) - net.extract(archs[1]).eval()(image(archs[1].r)))) <= 1e-5


def test_training_sorts_widths_once_when_they_become_elastic(tmp_path, monkeypatch):
    calls = []
    real = Supernet.sort_widths
    monkeypatch.setattr(Supernet, "sort_widths", lambda self, keep_bands=0: (calls.append(keep_bands), real(self, keep_bands)))
    phases = [{"name": "full", "epochs": 1, "lr": 0.1, "ks": "max", "e": "max", "d": "max", "w": "max"},
              {"name": "kernel", "epochs": 1, "lr": 0.02, "ks": "all", "e": "max", "d": "max", "w": "max"},
              {"name": "width", "epochs": 1, "lr": 0.02, "w": "all"}]
    cfg = load_config(None, dict(space="tiny-width", data="digits", batch_size=64, bn_calib_images=64, device="cpu", phases=phases))
    summary = Trainer(cfg, tmp_path / "run", progress=False).run()
    assert calls == [0] and summary["phase"] == "width" and 0.0 < summary["top1_min"] <= 1.0
