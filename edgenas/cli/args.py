"""Command-line syntax: ``--arch`` forms, checked numeric flag types and the shared flag groups."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..checks import Range, torch_device
from ..errors import ArchError, EdgeNASError
from ..space import Arch, SearchSpace

__all__ = ["ARCH_HELP", "CLASSES", "IMAGES", "SEED", "THREADS", "device_args", "parse_arch", "timeout_arg", "torch_device_arg"]

ARCH_HELP = 'inline JSON {"ks":[...],"e":[...],"d":[...],"r":R}, @file.json (a pick or front member too), max, min or random:SEED'
SEED = Range(0, 2**31 - 1).arg("--seed")
CLASSES = Range(1, 100_000).arg("--num-classes")
IMAGES = Range(1, 10_000_000).arg("--calib-images")
THREADS = Range(1, 1024).arg("--threads")


def parse_arch(space: SearchSpace, text: str, resolutions: Sequence[int] | None = None) -> Arch:
    """``--arch``: inline JSON, ``@file.json``, ``max``, ``min`` or ``random:SEED``.

    ``resolutions`` (a latency table's, say) restricts the resolution ``random:SEED`` draws from.
    A missing ``r`` means the space's largest resolution; a ``front.json`` member or an
    ``edgenas pick`` result is accepted as well.
    """
    text = text.strip()
    if text == "max":
        return space.max_arch()
    if text == "min":
        return space.min_arch()
    if text.startswith("random:"):
        seed = text.split(":", 1)[1]
        if not (seed.isascii() and seed.isdigit() and int(seed) < 2**63):
            raise ArchError(f"--arch random:SEED needs a non-negative integer seed, got {seed!r}")
        rng = np.random.default_rng(int(seed))
        vec = space.sample_vectors(rng, 1)[0]
        if resolutions:
            vec[-1] = space.resolutions.index(int(rng.choice(sorted(resolutions))))
        return space.decode(vec)
    source = "--arch"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise ArchError(f"cannot read arch file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ArchError(f"arch file {path} is not text (expected OFA JSON)") from None
        source = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArchError(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            'expected {"ks": [...], "e": [...], "d": [...], "r": R} or max, min, random:SEED, @file.json'
        ) from None
    if isinstance(data, Mapping) and isinstance(data.get("arch"), Mapping):
        data = data["arch"]
    return space.arch(data)


def torch_device_arg(auto: bool = False) -> Callable[[str], str]:
    """An argparse ``type=`` for a PyTorch ``--device`` this machine has (``auto`` too where ``auto``)."""

    def parse(text: str) -> str:
        if not (auto and text == "auto"):
            try:
                torch_device(text)
            except EdgeNASError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return parse


def timeout_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runner-timeout", type=Range(1, 86_400, integer=False).arg("--runner-timeout"), default=600.0,
                   help="seconds one runner call may take before it and its children are stopped")


def device_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("--device", required=required, default=None if required else "cpu",
                   help="cpu, another ONNX Runtime provider (cuda, xnnpack, ...) or remote")
    p.add_argument("--threads", type=THREADS, default=1, help="intra-op threads")
    p.add_argument("--runner", help="with --device remote: the command that runs deploy/agent.py on the device")
    p.add_argument("--provider", default="cpu", help="with --device remote: the provider to use there")
    timeout_arg(p)
