import numpy as np
import pytest
import torch
from helpers import SPACES, calibrated, small_arch

from edgenas import Arch, CheckpointError, Supernet, get_space
from edgenas.supernet import recalibrate_bn


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_ofa_mbv3_largest_subnet_has_ofa_parameter_count(supernets):
    sp = get_space("ofa-mbv3")
    assert n_params(supernets["ofa-mbv3"].extract(sp.max_arch())) == 7_664_760


def _ofa_reference_shapes(arch: Arch) -> list[tuple]:
    """Layer shapes written from OFA's ofa_mbv3.py / dynamic_layers.py rules, independently."""

    def div8(v):
        nv = max(8, int(v + 4) // 8 * 8)
        return nv + 8 if nv < 0.9 * v else nv

    shapes = [("conv", 16, 3, 3, 3)]  # first_conv: 3 -> 16, 3x3
    shapes += [("conv", 16, 1, 3, 3), ("conv", 16, 16, 1, 1)]  # first block: dw 3x3, project
    widths, se_stages = [24, 40, 80, 112, 160], [False, True, False, True, True]
    feature, slot = 16, 0
    for stage, (w, se) in enumerate(zip(widths, se_stages)):
        for i in range(4):
            if i < arch.d[stage]:
                k, e = arch.ks[slot], arch.e[slot]
                mid = div8(round(feature * e))
                shapes += [("conv", mid, feature, 1, 1), ("conv", mid, 1, k, k)]
                if se:
                    se_mid = div8(mid // 4)
                    shapes += [("conv", se_mid, mid, 1, 1), ("conv", mid, se_mid, 1, 1)]
                shapes += [("conv", w, mid, 1, 1)]
                feature = w
            slot += 1
    shapes += [("conv", 960, 160, 1, 1), ("conv", 1280, 960, 1, 1), ("linear", 1000, 1280)]
    return shapes


@pytest.mark.parametrize("seed", range(5))
def test_ofa_mbv3_layer_shapes_equal_ofa(supernets, seed):
    sp = get_space("ofa-mbv3")
    arch = sp.sample(np.random.default_rng(seed))
    sub = supernets["ofa-mbv3"].extract(arch)
    got = [
        ("conv", *m.weight.shape) if isinstance(m, torch.nn.Conv2d) else ("linear", *m.weight.shape)
        for m in sub.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    assert got == _ofa_reference_shapes(arch)


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("seed", range(4))
def test_extraction_parity_random_archs(supernets, image, name, seed):
    sp = get_space(name)
    arch = small_arch(sp, np.random.default_rng(seed)) if name == "ofa-mbv3" else sp.sample(np.random.default_rng(seed))
    net = calibrated(supernets[name], arch)
    sub = net.extract().eval()
    x = image(arch.r, seed=seed)
    with torch.no_grad():
        y_net, y_sub = net(x), sub(x)
    assert y_net.abs().mean() > 1e-2  # a vanishing output would make parity vacuous
    assert torch.max(torch.abs(y_net - y_sub)) <= 1e-5


@pytest.mark.parametrize("name", ["tiny", "cifar-mbv3"])
def test_extraction_parity_max_and_min(supernets, image, name):
    sp = get_space(name)
    for arch in (sp.max_arch(), sp.min_arch()):
        net = calibrated(supernets[name], arch)
        x = image(arch.r)
        with torch.no_grad():
            assert torch.max(torch.abs(net(x) - net.extract(arch).eval()(x))) <= 1e-5


def test_kernel_transform_is_learned_and_used():
    sp = get_space("tiny")
    net = Supernet(sp)
    block = net.blocks[0]
    w5 = block.dw.active_weight(16, 5)
    w3 = block.dw.active_weight(16, 3)
    assert torch.equal(w5, block.dw.weight[:16])  # the largest kernel is the raw weight
    assert torch.allclose(w3, block.dw.weight[:16, :, 1:4, 1:4])  # identity transform at init
    with torch.no_grad():
        block.dw.transforms["5to3"].mul_(0.5)
    assert torch.allclose(block.dw.active_weight(16, 3), 0.5 * block.dw.weight[:16, :, 1:4, 1:4])

    arch = sp.min_arch()  # kernel 3 everywhere
    net.activate(arch)
    net(torch.randn(4, 3, arch.r, arch.r)).sum().backward()
    assert block.dw.transforms["5to3"].grad is not None and block.dw.transforms["5to3"].grad.abs().sum() > 0


def test_largest_network_trains_on_unsliced_weights():
    """The largest network (every step's first, the whole full phase) runs on the raw weights: a sliced
    weight's backward fills a full-size zero tensor and copies its gradient in, per weight, per step."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    sp = get_space("cifar-mbv3")
    net = Supernet(sp, 10)
    for arch, sliced in ((sp.max_arch(24), False), (sp.min_arch(24), True)):
        net.activate(arch)
        with Ops() as ops:
            net(torch.randn(2, 3, 24, 24)).sum().backward()
        assert ("slice_backward" in ops.names) is sliced


def test_channel_sorting_preserves_the_largest_subnet(image):
    sp = get_space("tiny")
    net = calibrated(Supernet(sp, seed=3), sp.max_arch())
    x = image(24)
    with torch.no_grad():
        before = net(x)
        net.sort_channels()
        after = net(x)
    assert torch.allclose(before, after, atol=1e-5)
    imp = net.blocks[0].project.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(imp[:-1] >= imp[1:])  # most important middle channels first


def test_channel_sorting_keeps_trained_bands():
    sp = get_space("tiny")
    net = Supernet(sp, seed=1)
    block = net.blocks[0]  # mid channels: 16 (e=2), 24 (e=3)
    marker = torch.zeros(block.project.weight.shape[1])
    marker[:16] = torch.arange(16, dtype=torch.float)
    with torch.no_grad():
        block.expand_bn.bias.copy_(marker)
        block.project.weight[:, 16:] *= 100  # the wider band looks more important
    block.sort_channels(keep_bands=1)
    assert set(block.expand_bn.bias[:16].tolist()) == set(range(16))  # band membership unchanged


def test_seeded_initialisation(supernets):
    a, b, c = Supernet("tiny", seed=0), Supernet("tiny", seed=0), Supernet("tiny", seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["blocks.0.expand_conv.weight"], sc["blocks.0.expand_conv.weight"])


def test_checkpoint_round_trip_and_space_check(tmp_path, image):
    sp = get_space("tiny")
    net = calibrated(Supernet(sp, seed=4), sp.max_arch())
    path = net.save(tmp_path / "ckpt.pt", epoch=3)
    loaded = Supernet.load(path, "tiny").eval()
    loaded.activate(sp.max_arch())
    x = image(24)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    with pytest.raises(CheckpointError, match="made for space 'tiny'.*not for space 'cifar-mbv3'"):
        Supernet.load(path, "cifar-mbv3")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        Supernet.load(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not found"):
        Supernet.load(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an edgenas supernet checkpoint"):
        Supernet.load(tmp_path / "other.pt")
    assert not list(tmp_path.glob(".*.tmp"))


def test_bn_recalibration_sets_subnet_statistics(image):
    sp = get_space("tiny")
    net = Supernet(sp).eval()
    arch = sp.min_arch()
    net.activate(arch)
    batches = [image(arch.r, batch=8, seed=s) for s in range(3)]
    recalibrate_bn(net, batches)
    assert not net.training  # the previous mode is restored
    # the stem's running mean equals the mean of its batch means (cumulative average)
    with torch.no_grad():
        means = [net.stem.conv(x).mean(dim=(0, 2, 3)) for x in batches]
    assert torch.allclose(net.stem.bn.running_mean, torch.stack(means).mean(0), atol=1e-5)


def _static_twin(name: str) -> tuple[Supernet, Supernet]:
    sp = get_space(name)
    sliced, static = Supernet(sp, 10, seed=3), Supernet(sp, 10, seed=3)
    static.set_static_shapes()
    for m in (*sliced.modules(), *static.modules()):
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0  # the two nets' training outputs are compared
    return sliced, static


def _assert_same_step(sliced: Supernet, static: Supernet, arch: Arch, x: torch.Tensor, w: torch.Tensor, model=None) -> None:
    """One training forward and backward of ``arch`` in both nets (``model``: what runs ``static``, a compiled
    one, say): the same outputs, gradients (zero where sliced leaves none) and BN statistics."""
    outs = []
    for net, run in ((sliced, sliced), (static, static if model is None else model)):
        net.train().activate(arch)
        net.zero_grad(set_to_none=False)
        y = run(x)
        (y * w).sum().backward()
        outs.append(y.detach())
    assert torch.allclose(*outs, atol=1e-4, rtol=1e-4)  # train mode: batch statistics
    for (key, a), b in zip(sliced.named_parameters(), static.parameters()):
        ga, gb = (torch.zeros_like(p) if p.grad is None else p.grad for p in (a, b))
        assert torch.allclose(ga, gb, atol=1e-4, rtol=1e-3), key
    for (key, a), b in zip(sliced.named_buffers(), static.buffers()):
        if key != "arch_code":  # the active arch as static shapes read it
            assert torch.allclose(a.float(), b.float(), atol=1e-5, rtol=1e-4), key


@pytest.mark.parametrize("name", SPACES)
def test_static_shapes_match_sliced_training(name):
    """Static shapes are an execution strategy only: outputs, every gradient and every BN statistic of a
    training step are the sliced ones, for random archs of every space (widths, activation, SE included)."""
    sp = get_space(name)
    sliced, static = _static_twin(name)
    rng = np.random.default_rng(0)
    archs = [sp.min_arch(min(sp.resolutions)), small_arch(sp, rng), small_arch(sp, rng)]
    g = torch.Generator().manual_seed(0)
    for arch in archs:
        x = torch.randn(4, 3, arch.r, arch.r, generator=g)
        _assert_same_step(sliced, static, arch, x, torch.randn(4, 10, generator=g))
        calibrated(sliced, arch), calibrated(static, arch)
        with torch.no_grad():
            y = sliced(x)
            assert y.abs().mean() > 1e-2
            assert torch.allclose(y, static(x), atol=1e-4, rtol=1e-4)
            assert torch.allclose(y, static.extract(arch).eval()(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["tiny-mixed", "tiny-width"])
def test_one_compiled_graph_serves_every_subnet_with_static_shapes(name):
    """With static shapes the arch reaches the blocks as a tensor: torch.compile traces the supernet once and
    that graph trains every subnet of the resolution (skipped slots, kernels, activations, SE and widths
    included) exactly as sliced execution does."""
    from torch._dynamo.testing import CompileCounter

    sp = get_space(name)
    sliced, static = _static_twin(name)
    torch._dynamo.reset()
    counter = CompileCounter()
    compiled = torch.compile(static, backend=counter, dynamic=True)
    rng = np.random.default_rng(1)
    archs = [sp.max_arch(16), sp.min_arch(16), small_arch(sp, rng), small_arch(sp, rng), sp.max_arch(16)]
    assert len({(a.d, a.ks, a.act, a.se, a.w) for a in archs}) == 4
    g = torch.Generator().manual_seed(0)
    try:
        for arch in archs:
            _assert_same_step(sliced, static, arch, torch.randn(4, 3, 16, 16, generator=g), torch.randn(4, 10, generator=g), compiled)
        assert counter.frame_count == 1, f"{counter.frame_count} graphs for {len(archs)} subnets"
    finally:
        torch._dynamo.reset()


@pytest.mark.parametrize("name", SPACES)
def test_idle_parameters_are_those_sliced_execution_leaves_without_gradient(name):
    """What static shapes' trainer clears: a step's parameters that none of its subnets used (their skipped slots,
    SE turned off, kernel transformations for kernels not run) are exactly those sliced execution gives no gradient."""
    sp = get_space(name)
    net = Supernet(sp, 10, seed=0)
    rng = np.random.default_rng(2)
    r = min(sp.resolutions)
    steps = [[sp.max_arch(r)], [sp.min_arch(r)], [small_arch(sp, rng)], [sp.max_arch(r), sp.min_arch(r), small_arch(sp, rng)]]
    for archs in steps:
        net.zero_grad(set_to_none=True)
        for arch in archs:
            net.activate(arch)
            net(torch.randn(2, 3, r, r)).sum().backward()
        unused = {id(p) for p in net.parameters() if p.grad is None}
        assert {id(p) for p in net.idle_parameters(archs)} == unused, archs


def _conv_shapes(net: Supernet, arch: Arch) -> set[tuple]:
    shapes: set[tuple] = set()

    def hook(module, args):
        shapes.add((type(module).__name__, tuple(args[0].shape)))

    handles = [m.register_forward_pre_hook(hook) for m in net.modules() if type(m).__name__ in ("DynamicConv2d", "DynamicDWConv2d")]
    net.activate(arch)
    net(torch.randn(2, 3, arch.r, arch.r)).sum().backward()
    for h in handles:
        h.remove()
    return shapes


def test_static_shapes_keep_every_layer_shape():
    """What a GPU relies on: with static shapes every subnet at one resolution runs the same layer shapes."""
    sp = get_space("cifar-mbv3-width")
    sliced, static = _static_twin(sp.name)
    archs = [sp.max_arch(32), sp.min_arch(32), *(sp.decode(np.r_[sp.encode(sp.sample(np.random.default_rng(s)))[:-1],
                                                                    sp.resolutions.index(32)]) for s in range(3))]
    assert len({frozenset(_conv_shapes(static, a)) for a in archs}) == 1
    assert len({frozenset(_conv_shapes(sliced, a)) for a in archs}) == len(archs)
    assert static.static_shapes and not sliced.static_shapes
