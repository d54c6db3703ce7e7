"""``edgenas profile``: measure every block of a space on a device and write a latency table.

The table is saved atomically after every chunk of blocks, so an interrupted run loses at most
one chunk and the same command resumes it; it is marked complete only once every block and the
calibration networks are measured.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__, agent
from ..export import OPSET, onnx_bytes
from ..io import check_writable, exclusive
from ..progress import bar as progress_bar
from ..quantize import INT8_GRAPH, PRECISIONS, quantize_int8
from ..space import Arch, SearchSpace, definition_record, get_space
from ..supernet.bn import noise_batches, recalibrate_bn
from ..supernet.network import init_weights
from ..supernet.static import SubNet
from .backends import Backend
from .blocks import Block, block_onnx, empty_graph, enumerate_blocks
from .build import ModelBuilder
from .table import EMPTY_KEY, NETWORK_PREFIX, LatencyError, LatencyTable

__all__ = ["PRECISIONS", "TableModels", "calibration_model", "measure_chunked", "network_model", "profile", "profile_summary"]

# fields that must agree for a half-finished table to be resumed
_RESUME_FIELDS = ("space", "space_digest", "resolutions", "num_classes", "precision", "opset", "protocol", "provider", "threads",
                  "cpu_model", "seed", "calibration_networks", "int8_graph")


def _maybe_int8(model: bytes, shape: tuple[int, ...], precision: str, seed: int) -> bytes:
    """The int8 graph export makes, calibrated on seeded noise with min/max ranges: only the scales differ
    from a percentile calibration, not the graph or its kernels, and ORT's percentile histograms sort every
    activation of every calibration batch after the first (8 cifar-mbv3 networks: 9.7 s to quantize instead
    of 11.2 s on a 2-core AMD EPYC, ``benchmarks/int8_calibration.py``)."""
    if precision == "fp32":
        return model
    g = np.random.default_rng(seed)
    return quantize_int8(model, [g.standard_normal(shape).astype(np.float32) for _ in range(4)], percentile=None)


def block_model(block: Block, precision: str = "fp32", seed: int = 0) -> bytes:
    return _maybe_int8(block_onnx(block, seed), block.input_shape, precision, seed)


def network_model(space: SearchSpace, arch: Arch, num_classes: int | None = None, precision: str = "fp32", seed: int = 0) -> bytes:
    """A whole subnet as deployed (seeded weights, BN statistics from noise), for end-to-end timing."""
    net = SubNet(space.net_spec(arch, num_classes))
    init_weights(net, torch.Generator().manual_seed(seed))
    recalibrate_bn(net, noise_batches(arch.r, n=1, batch=4, seed=seed)).eval()
    shape = (1, 3, arch.r, arch.r)
    return _maybe_int8(onnx_bytes(net, shape), shape, precision, seed)


def calibration_model(table: LatencyTable, key: str) -> bytes:
    """The table's calibration network ``key`` ("network:i"): the graph its profile measured."""
    return TableModels.of(table)(key)


@dataclass(frozen=True)
class TableModels:
    """Each model a table times, by key: its blocks, the empty graph, its calibration networks ("network:i")
    and ``extra`` networks ("0", "1", ...: validation's, each seeded by its index).

    Plain data, so helper processes build the same models (``ModelBuilder``).
    """

    space: SearchSpace
    resolutions: tuple[int, ...]
    num_classes: int
    precision: str
    seed: int
    calibration: tuple[Arch, ...]
    extra: tuple[Arch, ...] = ()

    @classmethod
    def of(cls, table: LatencyTable, extra: Iterable[Arch] = ()) -> TableModels:
        meta = table.meta
        return cls(table.space, tuple(meta["resolutions"]), meta["num_classes"], meta["precision"], meta.get("seed") or 0,
                   tuple(table.calibration_archs()), tuple(extra))

    @cached_property
    def blocks(self) -> dict[str, Block]:
        return {b.key: b for b in enumerate_blocks(self.space, list(self.resolutions), self.num_classes)}

    def __call__(self, key: str) -> bytes:
        if key == EMPTY_KEY:
            return empty_graph()
        if key.startswith(NETWORK_PREFIX):
            return network_model(self.space, self.calibration[int(key[len(NETWORK_PREFIX):])], self.num_classes, self.precision,
                                 self.seed)
        if key.isdigit():
            return network_model(self.space, self.extra[int(key)], self.num_classes, self.precision, seed=int(key))
        return block_model(self.blocks[key], self.precision, self.seed)


def measure_chunked(backend: Backend, keys: list[str], build: Callable[[str], bytes], protocol: dict[str, Any], desc: str,
                    on_chunk: Callable[[dict[str, dict[str, Any]]], None] | None = None,
                    progress: bool = True) -> dict[str, dict[str, Any]]:
    """Build and measure chunk by chunk with a progress bar; ``on_chunk(results)`` after each.

    Only one chunk of ONNX models exists at a time (memory stays bounded whatever the table's
    size), and what a chunk measured is handed on before the next is built.  ``build`` must pickle
    (``TableModels``): a long job builds each chunk in helper processes, before timing it.
    """
    results: dict[str, dict[str, Any]] = {}
    chunk = protocol["chunk"]
    with progress_bar(total=len(keys), desc=desc, unit="model", disable=not progress) as bar, \
            ModelBuilder(build) as builder:
        for start in range(0, len(keys), chunk):
            part = builder(keys[start : start + chunk], left=max(0, len(keys) - start - chunk))
            got = backend.measure(part, protocol)
            results.update(got)
            if on_chunk is not None:
                on_chunk(got)
            bar.update(len(part))
    return results


def _new_meta(space: SearchSpace, resolutions: list[int], num_classes: int, precision: str, protocol: dict, info: dict) -> dict:
    return {
        "space": space.name, "space_digest": space.digest(), **definition_record(space), "resolutions": resolutions,
        "num_classes": num_classes,
        "precision": precision, "units": "ms", "batch": 1, "opset": OPSET, "optimization_level": "all",
        "provider": info["provider"], "threads": info["threads"], "cpu_model": info["cpu_model"],
        "ort_version": info["ort_version"], "device": info, "protocol": protocol,
        "clock": agent.resolve_clock(protocol, info["threads"]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "edgenas_version": __version__, "complete": False, "seed": None,
        **({"int8_graph": INT8_GRAPH} if precision == "int8" else {}),
    }


def profile(space: str | SearchSpace, resolutions: Iterable[int], backend: Backend, out: str | os.PathLike, *,
            num_classes: int | None = None, precision: str = "fp32", protocol: dict | None = None,
            calibrate: int = 30, seed: int = 0, progress: bool = True) -> tuple[LatencyTable, float]:
    """Measure (or resume measuring) a table; returns it and the seconds this call took."""
    t0 = time.perf_counter()
    space = get_space(space)
    resolutions = sorted(set(int(r) for r in resolutions))
    bad = [r for r in resolutions if r not in space.resolutions]
    if not resolutions or bad:
        raise LatencyError(f"resolution(s) {bad or '[]'} not in space '{space.name}' ({', '.join(map(str, space.resolutions))})")
    if precision not in PRECISIONS:
        raise LatencyError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    num_classes = num_classes or space.num_classes
    protocol = {**agent.DEFAULT_PROTOCOL, **(protocol or {})}
    if protocol["statistic"] not in agent.STATISTICS:
        raise LatencyError(f"unknown statistic {protocol['statistic']!r}; use {' or '.join(agent.STATISTICS)}")
    out = check_writable(out)
    meta = _new_meta(space, resolutions, num_classes, precision, protocol, backend.info())
    rng = np.random.default_rng(seed + 1)
    meta["seed"] = seed
    meta["calibration_networks"] = [_random_arch(space, resolutions, rng, i).to_dict() for i in range(calibrate)]
    with exclusive(out, "latency table"):
        table = _measure(space, out, meta, backend, progress)
    table.meta["profile_seconds"] = round(time.perf_counter() - t0 + table.meta.get("profile_seconds", 0.0), 1)
    table.save(out)
    return table, time.perf_counter() - t0


def profile_summary(table: LatencyTable, path: str | os.PathLike, seconds: float) -> dict[str, Any]:
    """What ``edgenas profile --json`` reports about a finished table."""
    cal = table.calibration or {}
    return {"path": str(path), "entries": len(table.entries), "seconds": round(seconds, 2), "space": table.meta["space"],
            "resolutions": list(table.resolutions), "precision": table.meta["precision"], "provider": table.meta["provider"],
            "threads": table.meta["threads"], "overhead_ms": table.overhead_ms,
            "calibration": {k: v for k, v in cal.items() if k != "points"}}


def _measure(space: SearchSpace, out: Path, meta: dict[str, Any], backend: Backend, progress: bool) -> LatencyTable:
    """Measure what the table at ``out`` still lacks (all of it if new), saving after every chunk."""
    if out.exists():
        table = LatencyTable.read(out)
        for key in _RESUME_FIELDS:
            if table.meta.get(key) != meta.get(key):
                raise LatencyError(
                    f"{out} exists with a different {key} ({table.meta.get(key)!r}, now {meta.get(key)!r}); "
                    "use another --out or remove the file"
                )
        if table.meta.get("complete"):
            return table
    else:
        table = LatencyTable(meta)
        table.save(out)  # the table exists, incomplete, from the start: a second writer is refused by its lock

    archs = table.calibration_archs()
    todo = _interleave([k for k in table.missing_keys() if not k.startswith(NETWORK_PREFIX)],
                       [k for k in table.missing_keys() if k.startswith(NETWORK_PREFIX)])
    if todo:
        if progress:
            print(f"profiling {len(todo)} of {len(table.required_keys())} entries ({space.name} at {meta['resolutions']}, "
                  f"{meta['precision']}, {meta['provider']} x{meta['threads']} threads; {len(archs)} whole networks interleaved "
                  "for calibration)", file=sys.stderr)

        def save(got: dict[str, dict[str, Any]]) -> None:
            table.entries.update(got)
            table.save(out)

        measure_chunked(backend, todo, TableModels.of(table), meta["protocol"], "blocks", save, progress)

    if archs:
        X = np.stack([space.encode(a) for a in archs])
        table.fit_calibration(X, np.array([table.ms(table.entries[f"{NETWORK_PREFIX}{i}"]) for i in range(len(archs))]))
    table.meta["complete"] = True
    return table


def _interleave(blocks: list[str], networks: list[str]) -> list[str]:
    """Spread the calibration networks evenly among the blocks: both then see the same machine state."""
    if not networks:
        return blocks
    out, step = [], max(1, -(-len(blocks) // len(networks)))
    for i, net in enumerate(networks):
        out += blocks[i * step : (i + 1) * step] + [net]
    return out + blocks[len(networks) * step :]


def _random_arch(space: SearchSpace, resolutions: list[int], rng: np.random.Generator, i: int) -> Arch:
    """A uniformly random arch at the i-th resolution of ``resolutions`` (cycled)."""
    vec = space.sample_vectors(rng, 1)[0]
    vec[-1] = space.resolutions.index(resolutions[i % len(resolutions)])
    return space.decode(vec)
