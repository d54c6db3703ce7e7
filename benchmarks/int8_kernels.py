"""Where int8 gains and loses, kernel by kernel: ONNX Runtime's profiler on the largest -lite subnets,
with their own depthwise kernels and with 3x3 ones.

    python benchmarks/int8_kernels.py     # ~2 min on 2 cores; run alone

The -lite spaces' int8 speed-up over fp32 differs between CPUs (BENCHMARKS "int8, <CPU>"). This splits one
run of each network into its kernels (depthwise conv by kernel size, pointwise conv, the float stem, residual adds,
the rest) with ONNX Runtime's per-kernel profiler, fp32 and int8 (as `edgenas export --int8` writes
it) interleaved round by round, one thread, batch 1, after the graph optimizations the agent runs.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
from _report import machine, per_cpu, update_section

from edgenas import agent, get_space
from edgenas.latency.profile import network_model
from edgenas.quantize import quantize_int8

#: (space, resolution, depthwise kernel: None keeps the largest subnet's)
NETWORKS = (("ofa-mbv3-lite", 224, None), ("ofa-mbv3-lite", 224, 3), ("cifar-mbv3-lite", 32, None), ("cifar-mbv3-lite", 32, 3))
KINDS = ("depthwise conv 3x3", "depthwise conv 5x5", "pointwise conv", "stem conv", "residual add", "other")
WARMUP, ROUNDS, RUNS = 20, 10, 20


def label(name: str, r: int, k: int | None) -> str:
    return f"{name} @ {r}, largest" + ("" if k is None else f", {k}x{k} kernels")


def kind_of(node: onnx.NodeProto) -> str:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type in ("Conv", "QLinearConv", "FusedConv"):
        if attrs.get("group", 1) > 1:
            k = attrs["kernel_shape"][0]
            return f"depthwise conv {k}x{k}"
        return "pointwise conv" if list(attrs.get("kernel_shape", [])) == [1, 1] else "stem conv"
    return "residual add" if node.op_type in ("Add", "QLinearAdd", "Sum") else "other"


def kernel_ms(path: str, kinds: dict[str, str], skip_runs: int) -> dict[str, float]:
    """Per-kind milliseconds per run from a profile, without its first ``skip_runs`` runs."""
    events = json.loads(Path(path).read_text())
    starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    after, runs = starts[skip_runs], len(starts) - skip_runs
    out: dict[str, float] = defaultdict(float)
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith("_kernel_time") and e["ts"] >= after:
            out[kinds.get(name[: -len("_kernel_time")], "other")] += e["dur"] / 1e3 / runs
    return dict(out)


def profile(models: dict[str, bytes], tmp: Path) -> dict[str, dict[str, float]]:
    sessions, kinds = {}, {}
    for i, (label, model) in enumerate(models.items()):
        optimized = str(tmp / f"opt{i}.onnx")
        agent.make_session(model, optimized_path=optimized)  # the graph the profiled session runs, to name its kernels
        kinds[label] = {n.name: kind_of(n) for n in onnx.load(optimized).graph.node}
        sessions[label] = agent.make_session(model, profile_prefix=str(tmp / f"prof{i}"))
    feeds = {k: agent.input_feed(s) for k, s in sessions.items()}
    for k, s in sessions.items():
        for _ in range(WARMUP):
            s.run(None, feeds[k])
    for _ in range(ROUNDS):
        for k, s in sessions.items():
            for _ in range(RUNS):
                s.run(None, feeds[k])
    return {k: kernel_ms(s.end_profiling(), kinds[k], WARMUP) for k, s in sessions.items()}


def main() -> None:
    g = np.random.default_rng(0)
    models = {}
    for name, r, k in NETWORKS:
        space = get_space(name)
        arch = space.max_arch(r)
        fp32 = network_model(space, arch if k is None else dataclasses.replace(arch, ks=(k,) * len(arch.ks)))
        models[f"{label(name, r, k)} fp32"] = fp32
        models[f"{label(name, r, k)} int8"] = quantize_int8(fp32, [g.standard_normal((1, 3, r, r)).astype(np.float32) for _ in range(8)])
    with tempfile.TemporaryDirectory(prefix="edgenas-prof-") as tmp:
        ms = profile(models, Path(tmp))
    rows = ["| network | kernel | fp32 ms | int8 ms | int8 vs fp32 | share of the fp32 run |",
            "|---|---|---|---|---|---|"]
    for name, r, k in NETWORKS:
        fp, q = ms[f"{label(name, r, k)} fp32"], ms[f"{label(name, r, k)} int8"]
        total = sum(fp.values())
        for kind in (*[k for k in KINDS if fp.get(k) or q.get(k)], "all"):
            a, b = (total, sum(q.values())) if kind == "all" else (fp.get(kind, 0.0), q.get(kind, 0.0))
            ratio = f"{a / b:.2f}x" if a and b else "-"
            rows.append(f"| {label(name, r, k)} | {kind} | {a:.3f} | {b:.3f} | {'**' + ratio + '**' if kind == 'all' else ratio} "
                        f"| {100 * a / total:.0f}% |")
    body = "\n".join([
        "ONNX Runtime's per-kernel profiler (kernel time only, summed per run), fp32 and int8 interleaved "
        f"in {ROUNDS} rounds of {RUNS} runs after {WARMUP} warm-up runs; one thread, batch 1. "
        "\"int8 vs fp32\" above 1x: int8 is faster there.",
        "",
        *rows,
    ])
    update_section(per_cpu("int8 kernels"), body, "python benchmarks/int8_kernels.py", machine())
    print(body)


if __name__ == "__main__":
    main()
