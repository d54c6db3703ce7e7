"""ONNX Runtime's OpenVINO provider on this x86 CPU: int8 speed, latency tables and accuracy against the default CPU provider.

    python benchmarks/openvino.py     # ~10 min on 2 cores (the first run also installs a venv); run alone (it times things)

The pip package `onnxruntime-openvino` replaces `onnxruntime` (the same module), so it lives in a venv of its own
(benchmarks/_work/openvino/venv: onnxruntime-openvino and numpy), reached as a device is: `deploy/agent.py` run by that
venv's Python (`edgenas profile --device remote --runner ... --provider openvino`).

1. Speed: the largest subnets of cifar-mbv3-lite @32, ofa-mbv3-lite @224 and cifar-mbv3 @32 in fp32 and int8 (as
   `edgenas export --int8` writes it), timed by the default CPU provider (in this process) and by OpenVINO (the agent),
   one thread, batch 1, the two alternated over rounds; the median of each model's per-round medians.
2. Tables: cifar-mbv3-lite @32, fp32 and int8, profiled through the agent with OpenVINO and validated on 40 random
   subnets measured end to end twice.
3. Accuracy: subnets of the shipped CIFAR-10 supernet exported fp32 and int8 (int8 calibrated as export
   does: `quantize.CALIBRATION_IMAGES` training images, 256 before 2026-12-07), top-1 on its 1,000 shipped held-out images under each provider.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _report import machine, per_cpu, update_section
from int8_tables import fmt, slug

from edgenas import get_space
from edgenas.data import augment, batches, checkpoint_data
from edgenas.deploy import export_subnet
from edgenas.latency import LocalBackend, RemoteBackend
from edgenas.latency.profile import network_model, profile
from edgenas.latency.validate import validate
from edgenas.pretrained import resolve_checkpoint
from edgenas.quantize import quantize_int8
from edgenas.supernet import read_checkpoint

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / "_work" / "openvino"
VENV = WORK / "venv"
SPEED = (("cifar-mbv3-lite", 32), ("ofa-mbv3-lite", 224), ("cifar-mbv3", 32))
ROUNDS, PROTOCOL = 4, {"warmup": 10, "rounds": 3, "runs": 15}
#: top-1 under OpenVINO, run by the venv's Python: the session `deploy/infer.py --provider openvino` classifies with,
#: argmax over batches of 100 preprocessed images
TOP1 = """import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from infer import Classifier
d = np.load(sys.argv[3])
s = Classifier(sys.argv[2], 1, "openvino").session
pred = np.concatenate([s.run(None, {"input": d["x"][i:i + 100]})[0].argmax(1) for i in range(0, len(d["x"]), 100)])
print(float((pred == d["y"]).mean()))
"""


def venv() -> str:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "onnxruntime-openvino", "numpy"], check=True)
    return str(py)


def speed(cpu: LocalBackend, ov: RemoteBackend) -> list[str]:
    g = np.random.default_rng(0)
    models = {}
    for name, r in SPEED:
        sp = get_space(name)
        models[f"{name} fp32"] = network_model(sp, sp.max_arch(r))
        models[f"{name} int8"] = quantize_int8(models[f"{name} fp32"], [g.standard_normal((1, 3, r, r)).astype(np.float32) for _ in range(8)])
    ms: dict[tuple[str, str], list[float]] = {}
    for _ in range(ROUNDS):
        for label, backend in (("cpu", cpu), ("openvino", ov)):
            for k, v in backend.measure(models, PROTOCOL).items():
                ms.setdefault((label, k), []).append(v["median_ms"])
    med = {k: float(np.median(v)) for k, v in ms.items()}
    rows = ["| network (largest subnet) | CPU fp32 | CPU int8 | OpenVINO fp32 | OpenVINO int8 | int8 vs fp32: CPU | int8 vs fp32: OpenVINO "
            "| OpenVINO int8 vs CPU fp32 |", "|---|---|---|---|---|---|---|---|"]
    for name, r in SPEED:
        a, b, c, d = (med[(p, f"{name} {q}")] for p in ("cpu", "openvino") for q in ("fp32", "int8"))
        rows.append(f"| {name} @ {r} | {a:.3f} ms | {b:.3f} ms | {c:.3f} ms | {d:.3f} ms | {a / b:.2f}x | **{c / d:.2f}x** | **{a / d:.2f}x** |")
    return rows


def tables(ov: RemoteBackend) -> list[str]:
    rows = ["| table | entries | profile time | ±5% / ±10% | drift-corrected | noise floor | Spearman |", "|---|---|---|---|---|---|---|"]
    for precision in ("fp32", "int8"):
        out = ROOT / "latency_tables" / f"{slug()}_cifar-mbv3-lite_openvino-t1_{precision}.json"
        out.unlink(missing_ok=True)
        t = time.perf_counter()
        table, _ = profile("cifar-mbv3-lite", [32], ov, out, precision=precision)
        seconds = time.perf_counter() - t
        rep = validate(table, ov, 40, str(out).removesuffix(".json") + ".validation")
        rows.append(f"| `{out.name}` | {len(table.entries)} | {seconds:.0f} s | {fmt(rep['overall'])} | {fmt(rep['drift_corrected'])} "
                    f"| {fmt(rep['noise_floor'])} | {rep['overall']['spearman']:.3f} |")
    return rows


def accuracy(py: str) -> list[str]:
    sp = get_space("cifar-mbv3")
    ckpt = read_checkpoint(str(resolve_checkpoint("cifar10")), sp)
    split = checkpoint_data(ckpt.get("data"), None)
    rng = np.random.default_rng(1)
    archs = {"largest": sp.max_arch(32), "smallest": sp.min_arch(32), **{f"random {i}": sp.sample(rng) for i in range(2)}}
    rows = ["| subnet | CPU fp32 | CPU int8 | OpenVINO fp32 | OpenVINO int8 |", "|---|---|---|---|---|"]
    for label, arch in archs.items():
        x, y = zip(*((augment(im, arch.r, split.mean, split.std).numpy(), lab.numpy()) for im, lab in batches(split.val, 500)))
        npz = WORK / "heldout.npz"
        np.savez(npz, x=np.concatenate(x), y=np.concatenate(y))
        r = export_subnet(sp, arch, WORK / "model.onnx", checkpoint="cifar10", int8=True, time_int8=False)
        ov = [float(subprocess.run([py, "-c", TOP1, str(ROOT / "deploy"), path, str(npz)], capture_output=True, text=True, check=True).stdout)
              for path in (r["path"], r["int8_path"])]
        rows.append(f"| {label} @ {arch.r} | {r['top1_fp32']:.3f} | {r['top1_int8']:.3f} | {ov[0]:.3f} | {ov[1]:.3f} |")
    return rows


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    py = venv()
    version = subprocess.run([py, "-c", "import onnxruntime; print(onnxruntime.__version__)"], capture_output=True, text=True, check=True)
    runner = f"{shlex.quote(py)} {shlex.quote(str(ROOT / 'deploy' / 'agent.py'))}"
    cpu, ov = LocalBackend("cpu", 1), RemoteBackend(runner, "openvino", 1)
    import onnxruntime

    parts = {"speed": speed(cpu, ov), "tables": tables(ov), "accuracy": accuracy(py)}
    body = "\n".join([
        f"onnxruntime {onnxruntime.__version__} (CPU provider) against onnxruntime-openvino {version.stdout.strip()} (OpenVINO provider, "
        "CPU device, `num_of_threads` 1, precision FP32: `edgenas.agent.provider_options`); one thread, batch 1.",
        "",
        f"Speed, the two providers alternated over {ROUNDS} rounds (median of the per-round medians):",
        "",
        *parts["speed"],
        "",
        "Latency tables profiled and validated with OpenVINO (columns as in \"int8 latency tables\"):",
        "",
        *parts["tables"],
        "",
        "Top-1 on the shipped CIFAR-10 supernet's 1,000 held-out images, the same exported files under each provider:",
        "",
        *parts["accuracy"],
    ])
    update_section(per_cpu("OpenVINO"), body, "python benchmarks/openvino.py", machine())
    print(body)


if __name__ == "__main__":
    main()
