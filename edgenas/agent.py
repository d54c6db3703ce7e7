#!/usr/bin/env python3
"""edgenas device agent: times ONNX models with ONNX Runtime and answers in JSON.

Standalone on purpose: it needs only Python 3.8+, numpy and onnxruntime (no edgenas, no torch),
so it can be copied to a phone or board (``deploy/agent.py`` is this file).  edgenas's local
``cpu`` backend imports the same functions, so local and remote tables share one protocol.

    python3 agent.py < request.json > response.json

Request: ``{"op": "info" | "measure", "provider": "CPUExecutionProvider", "threads": 1,
"protocol": {...}, "models": [{"key": ..., "onnx_b64": ...}, ...]}``.
Response: ``{"ok": true, "device": {...}, "results": {key: {"median_ms": ..., ...}}}`` or
``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import sys
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import onnxruntime as ort

#: recorded with every measurement's device info; 2: a retried entry's statistics are over all its runs (1: the quieter pass)
AGENT_VERSION = 2

#: warm-up runs, interleaved rounds, timed runs per round, re-measure an entry whose
#: (p90 - p10) / median exceeds max_spread up to `retries` times, models measured together,
#: the clock: "auto" times the calling thread's CPU time when ORT runs single-threaded (ORT
#: then computes in the calling thread, so preemption by other processes on a shared machine
#: does not count) and wall time otherwise (wall-time statistics are always kept beside), and the
#: statistic a table is built on: "min", the fastest timed run (noise from other work on the device
#: only ever adds time, so the minimum is the figure that repeats; on a quiet device it sits 2-4%
#: under the median), or "median", the typical run.
DEFAULT_PROTOCOL = {"warmup": 10, "rounds": 5, "runs": 20, "max_spread": 0.1, "retries": 2, "chunk": 16, "clock": "auto",
                    "statistic": "min"}
#: each statistic's field in a measurement
STATISTICS = {"min": "min_ms", "median": "median_ms"}

OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


#: instruction-set flags that choose ONNX Runtime's kernels: x86 vector widths and int8 dot products, ARM's dot
#: product and int8 matrix multiply.  Cloud CPUs share a name across generations ("AMD EPYC"), these tell them apart.
KERNEL_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8",
                "amx_bf16", "asimd", "asimddp", "i8mm", "sve", "bf16")


def cpu_features(cpuinfo: str = "/proc/cpuinfo") -> List[str]:
    """The CPU's :data:`KERNEL_FLAGS` (Linux's /proc/cpuinfo); [] where the system does not list them."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.lower().startswith(("flags", "features")):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in KERNEL_FLAGS if flag in have]
    except OSError:
        pass
    return []


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(provider: str = "CPUExecutionProvider", threads: int = 1) -> dict:
    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_features": cpu_features(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "cpu_count": os.cpu_count(),
        "ort_version": ort.__version__,
        "provider": provider,
        "provider_options": provider_options(provider, threads),
        "available_providers": ort.get_available_providers(),
        "threads": threads,
        "agent_version": AGENT_VERSION,
    }


def resolve_provider(name: str) -> str:
    """An installed provider's full name from its full or short name (``openvino``, ``CUDAExecutionProvider``)."""
    available = {p.lower(): p for p in ort.get_available_providers()}
    key = name.lower()
    found = available.get(key) or available.get(key + "executionprovider")
    if found is None:
        raise ValueError(f"provider {name} is not available here; available: {', '.join(ort.get_available_providers())}")
    return found


def provider_options(provider: str, threads: int) -> Dict[str, str]:
    """What holds a provider to the measurement's threads and to float32.

    OpenVINO runs its own thread pool (every core unless told; with one thread it computes in the
    calling thread, so the thread clock holds) and may pick a lower inference precision where the CPU has one."""
    if provider == "OpenVINOExecutionProvider":
        return {"device_type": "CPU", "num_of_threads": str(threads), "precision": "FP32"}
    return {}


def make_session(model, provider: str = "CPUExecutionProvider", threads: int = 1, opt_level: str = "all",
                 optimized_path: Optional[str] = None, profile_prefix: Optional[str] = None) -> ort.InferenceSession:
    """A session with the measurement settings: fixed threads, no spinning, sequential.

    ``profile_prefix`` turns on ONNX Runtime's per-kernel profiler (its JSON file starts with it)."""
    provider = resolve_provider(provider)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = OPT_LEVELS[opt_level]
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    providers: List[Union[str, Tuple[str, Dict[str, str]]]] = ["CPUExecutionProvider"]
    if provider != "CPUExecutionProvider":
        providers.insert(0, (provider, provider_options(provider, threads)))
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), so, providers=providers)


def input_feed(sess: ort.InferenceSession, batch: int = 1, seed: int = 0) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) else batch for d in inp.shape]
        dtype = np.uint8 if "uint8" in inp.type else np.int8 if "int8" in inp.type else np.float32
        feed[inp.name] = rng.standard_normal(shape).astype(dtype)
    return feed


def summarize(samples: List[tuple], clock: str = "wall") -> dict:
    """Statistics of (wall_ms, thread_cpu_ms) samples; the primary figures use ``clock``."""
    a = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    prim = a[:, 1] if clock == "thread" else a[:, 0]
    p10, median, p90 = np.percentile(prim, [10, 50, 90])
    w10, wmed, w90 = np.percentile(a[:, 0], [10, 50, 90])
    return {
        "median_ms": float(median), "p10_ms": float(p10), "p90_ms": float(p90), "mean_ms": float(prim.mean()),
        "min_ms": float(prim.min()), "spread": float((p90 - p10) / median) if median > 0 else 0.0, "runs": int(prim.size),
        "clock": clock, "wall_median_ms": float(wmed), "wall_spread": float((w90 - w10) / wmed) if wmed > 0 else 0.0,
    }


def latency_ms(stats: Mapping[str, float], statistic: str) -> float:
    """The figure of a measurement that ``statistic`` (a key of STATISTICS) names."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r} ({' or '.join(STATISTICS)})")
    return float(stats[STATISTICS[statistic]])


def resolve_clock(protocol: dict, threads: int) -> str:
    clock = protocol.get("clock", "auto")
    if clock == "auto":
        return "thread" if threads == 1 else "wall"
    if clock not in ("wall", "thread"):
        raise ValueError(f"unknown clock {clock!r} (auto, wall or thread)")
    return clock


def _time_chunk(sessions: Dict[str, ort.InferenceSession], feeds: Dict[str, dict], protocol: dict) -> Dict[str, List[tuple]]:
    """Warm up every model, then time them round-robin so drifting load hits all alike."""
    for key, sess in sessions.items():
        for _ in range(protocol["warmup"]):
            sess.run(None, feeds[key])
    samples: Dict[str, List[tuple]] = {k: [] for k in sessions}
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    for _ in range(protocol["rounds"]):
        for key, sess in sessions.items():
            feed, out = feeds[key], samples[key]
            for _ in range(protocol["runs"]):
                t0, c0 = wall(), cpu()
                sess.run(None, feed)
                c1, t1 = cpu(), wall()
                out.append(((t1 - t0) / 1e6, (c1 - c0) / 1e6))
    return samples


def measure(models: Mapping[str, object], provider: str = "CPUExecutionProvider", threads: int = 1,
            protocol: Optional[dict] = None, opt_level: str = "all",
            on_done: Optional[Callable[[str, dict], None]] = None) -> Dict[str, dict]:
    """Median/p10/p90/spread of each model (ONNX bytes or path) at batch 1.

    Models are measured in interleaved chunks; a chunk's noisy entries (spread above
    ``max_spread``) are measured again, and their statistics are those of all their runs: a pass
    that caught the device in a slow stretch adds runs, and never hides a faster pass's.
    """
    protocol = {**DEFAULT_PROTOCOL, **(protocol or {})}
    clock = resolve_clock(protocol, threads)
    keys, results = list(models), {}
    for start in range(0, len(keys), protocol["chunk"]):
        chunk = keys[start : start + protocol["chunk"]]
        sessions = {k: make_session(models[k], provider, threads, opt_level) for k in chunk}
        feeds = {k: input_feed(s) for k, s in sessions.items()}
        samples = _time_chunk(sessions, feeds, protocol)
        stats = {k: summarize(v, clock) for k, v in samples.items()}
        for attempt in range(protocol["retries"]):
            noisy = [k for k in chunk if stats[k]["spread"] > protocol["max_spread"]]
            if not noisy:
                break
            for k, more in _time_chunk({k: sessions[k] for k in noisy}, feeds, protocol).items():
                samples[k] += more
                stats[k] = dict(summarize(samples[k], clock), remeasured=attempt + 1)
        for k in chunk:
            results[k] = stats[k]
            if on_done is not None:
                on_done(k, stats[k])
        del sessions
    return results


def handle(request: dict) -> dict:
    provider = resolve_provider(str(request.get("provider", "CPUExecutionProvider")))
    threads = int(request.get("threads", 1))
    if request.get("op") == "info":
        return {"ok": True, "device": device_info(provider, threads)}
    if request.get("op") != "measure":
        raise ValueError(f"unknown op {request.get('op')!r}")
    models = {m["key"]: base64.b64decode(m["onnx_b64"]) for m in request["models"]}
    results = measure(models, provider, threads, request.get("protocol"), request.get("opt_level", "all"))
    return {"ok": True, "device": device_info(provider, threads), "results": results}


def main() -> int:
    try:
        response = handle(json.load(sys.stdin))
    except Exception as exc:  # the caller gets one JSON error line, never a traceback
        response = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(response, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0 if response["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
