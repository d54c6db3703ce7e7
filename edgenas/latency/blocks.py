"""The unit of latency: every distinct static block a space can produce, as its own ONNX graph.

Blocks come from the same shape description (``SearchSpace.net_spec``) that extraction and the
cost model use, so the table, the exported network and the cost agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import onnx
import torch
from onnx import TensorProto, helper

from ..export import onnx_bytes
from ..space import Arch, HeadSpec, MBConvSpec, SearchSpace, StemSpec
from ..supernet.network import init_weights
from ..supernet.static import Head, MBConv, Stem

__all__ = ["Block", "block_key", "block_onnx", "empty_graph", "enumerate_blocks", "network_keys"]

BlockSpec = StemSpec | MBConvSpec | HeadSpec


def block_key(spec: BlockSpec) -> str:
    """A stable, readable id of a block configuration (its input shape and everything it does)."""
    if isinstance(spec, StemSpec):
        return f"stem:i{spec.in_ch}-o{spec.out_ch}-k{spec.kernel}-s{spec.stride}-{spec.act}-r{spec.in_res}"
    if isinstance(spec, HeadSpec):
        act = "" if spec.act == "h_swish" else f"-{spec.act}"  # h-swish heads keep the keys of existing tables
        return f"head:i{spec.in_ch}-x{spec.expand_ch}-f{spec.feature_ch}-c{spec.num_classes}-r{spec.in_res}{act}"
    s = spec
    return (
        f"mbconv:i{s.in_ch}-o{s.out_ch}-m{s.mid_ch}-k{s.kernel}-s{s.stride}-{s.act}"
        f"-se{s.se_ch if s.se else 0}-{'x' if s.expand else 'nx'}-{'res' if s.residual else 'nores'}-r{s.in_res}"
    )


@dataclass(frozen=True)
class Block:
    key: str
    spec: BlockSpec

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.spec.in_ch, self.spec.in_res, self.spec.in_res)


def enumerate_blocks(space: SearchSpace, resolutions: Iterable[int], num_classes: int | None = None) -> list[Block]:
    """Every distinct block of ``space`` at ``resolutions``: stem, first block, slots x (k, e, style, widths), heads."""
    seen: dict[str, Block] = {}
    for r in resolutions:
        specs: list[BlockSpec] = [space.stem_spec(r), space.first_block_spec(r)]
        for slot in range(space.n_layers):
            specs += [spec for _, spec in space.slot_blocks(slot, r)]
        specs += [space.head_spec(r, num_classes, w) for w in space.widths]
        for spec in specs:
            seen.setdefault(block_key(spec), Block(block_key(spec), spec))
    return list(seen.values())


def network_keys(space: SearchSpace, arch: Arch, num_classes: int | None = None) -> list[str]:
    """Keys of the blocks that make up ``arch``, in order."""
    net = space.net_spec(arch, num_classes)
    return [block_key(net.stem), *(block_key(b) for b in net.blocks), block_key(net.head)]


def block_module(spec: BlockSpec, seed: int = 0) -> torch.nn.Module:
    module = Stem(spec) if isinstance(spec, StemSpec) else Head(spec) if isinstance(spec, HeadSpec) else MBConv(spec)
    init_weights(module, torch.Generator().manual_seed(seed))
    return module.eval()


def block_onnx(block: Block, seed: int = 0) -> bytes:
    """The block exported exactly as a whole network is (same exporter, opset, dynamic batch)."""
    return onnx_bytes(block_module(block.spec, seed), block.input_shape, output_name="output")


def empty_graph() -> bytes:
    """An Identity on a tiny tensor: the fixed cost of one ``session.run`` call."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 1, 1])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8, 1, 1])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "empty", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
