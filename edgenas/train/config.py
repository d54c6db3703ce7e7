"""The whole training schedule as one value, read from YAML and/or CLI flags, written back resolved."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ..checks import check_fields, ranged
from ..errors import EdgeNASError
from ..space import SearchSpace, definition_record, get_space

__all__ = ["COMPILE_MODES", "Phase", "TrainConfig", "default_phases", "load_config"]

Choice = str | list  # "max", "all" or an explicit list of values
# torch.compile's modes, and its cudagraphs backend; "reduce-overhead" and "cudagraphs" replay CUDA graphs:
# for small images, where a step is bound by kernel launches rather than arithmetic
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs", "cudagraphs")


def compile_options(mode: bool | str) -> dict[str, Any]:
    """torch.compile's arguments for a ``compile`` setting: a mode, or ``cudagraphs``, the backend that replays
    PyTorch's own kernels as CUDA graphs and generates no code, so it is ready far sooner (tracing the
    static-shapes ``cifar-mbv3`` supernet's first step took 43 s on a 2-core CPU, inductor's code generation
    215 s: ``benchmarks/static_shapes.py --compiled``)."""
    if mode == "cudagraphs":
        return {"backend": "cudagraphs"}
    return {"mode": None if mode is True else str(mode)}


@dataclass(frozen=True)
class Phase:
    """One progressive-shrinking phase: which choices are elastic, for how long, at what LR."""

    name: str
    epochs: int = ranged(MISSING, 0, 100_000)
    lr: float = ranged(MISSING, 0.0, 10.0, integer=False)
    ks: Choice = "all"
    e: Choice = "all"
    d: Choice = "all"
    style: str = "all"  # per-stage activation / SE where a space makes them elastic: "max" (the largest's) or "all"
    w: Choice = "all"  # per-stage width multipliers where a space makes width elastic
    r: Choice = "all"  # the training resolutions its steps draw from: "max" trains at the largest only

    def resolutions(self, allowed: list[int]) -> list[int]:
        """The resolutions of ``allowed`` (the run's) that this phase's steps draw from."""
        if self.r == "all":
            return list(allowed)
        if self.r == "max":
            return [max(allowed)]
        if isinstance(self.r, str) or not self.r or any(v not in allowed for v in self.r):
            raise EdgeNASError(f"phase '{self.name}': r must be 'max', 'all' or a subset of the resolutions {list(allowed)}, got {self.r!r}")
        return sorted(self.r)

    def choices(self, space: SearchSpace) -> dict[str, tuple]:
        check_fields(self, f"training phase '{self.name}'")
        if self.style not in ("max", "all"):
            raise EdgeNASError(f"phase '{self.name}': style must be 'max' or 'all', got {self.style!r}")
        n = len(space.styles)
        out: dict[str, tuple] = {"style": (n - 1,) if self.style == "max" else tuple(range(n))}
        for key, all_ in (("ks", space.ks_choices), ("e", space.e_choices), ("d", space.d_choices), ("w", space.widths)):
            value = getattr(self, key)
            if value == "max":
                out[key] = (max(all_),)
            elif value == "all":
                out[key] = tuple(all_)
            else:
                bad = [v for v in value if v not in all_]
                if bad or not value:
                    raise EdgeNASError(f"phase '{self.name}': {key} {value} not a subset of {list(all_)}")
                out[key] = tuple(sorted(value))
        return out


def default_phases(space: SearchSpace, scale: float = 1.0) -> list[Phase]:
    """OFA's order: full network, then elastic kernel, depth (two steps), expand (two steps).  An
    elastic activation / SE is trained from the first phase: joining later cost its ReLU subnets
    3-4 points on CIFAR-10 (``benchmarks/elastic.py --choice style``).  An elastic width shrinks channels as
    the expand ratio does, so it joins in the expand phases (as OFA's ResNet widths do)."""
    ep = lambda n: max(1, round(n * scale))  # noqa: E731
    d, e = space.d_choices, space.e_choices
    phases = [Phase("full", ep(4), 0.1, "max", "max", "max"), Phase("kernel", ep(2), 0.03, "all", "max", "max")]
    if len(d) > 2:
        phases.append(Phase("depth-1", ep(1), 0.01, "all", "max", list(d[-2:])))
    phases.append(Phase("depth", ep(2), 0.01, "all", "max", "all"))
    phases = [replace(p, w="max") for p in phases]
    if len(e) > 2:
        phases.append(Phase("expand-1", ep(1), 0.01, "all", list(e[-2:]), "all"))
    phases.append(Phase("expand", ep(2), 0.01, "all", "all", "all"))
    return phases


@dataclass
class TrainConfig:
    space: str  # a registered name or a space file; written back as the name, with space_def beside it
    space_def: dict[str, Any] | None = None  # the definition of a space not built in (so the run never needs its file)
    data: str = "digits"
    val_data: str | None = None
    val_fraction: float = ranged(0.1, 0.0, 0.9, integer=False)
    val_per_class: int | None = ranged(None, 1, 10_000_000)
    split: str = "random"
    limit: int | None = ranged(None, 1, 1_000_000_000)
    seed: int = ranged(0, 0, 2**63 - 1)
    batch_size: int = ranged(128, 1, 65_536)
    lr_base_size: int | None = ranged(None, 1, 10_000_000)  # phases' lr are for this global batch: scaled linearly to the real one
    momentum: float = ranged(0.9, 0.0, 1.0, integer=False)
    weight_decay: float = ranged(3e-5, 0.0, 1.0, integer=False)
    label_smoothing: float = ranged(0.1, 0.0, 1.0, integer=False)
    random_subnets: int = ranged(2, 0, 64)
    kd_weight: float = ranged(1.0, 0.0, 100.0, integer=False)
    kd_temperature: float = ranged(1.0, 0.01, 100.0, integer=False)
    teacher: str | None = None
    init: str | None = None  # a supernet checkpoint (path or built-in name) whose weights start the run: a new schedule continues it
    init_record: dict[str, Any] | None = None  # what --init loaded (written once, kept on resume)
    resolutions: list[int] | None = None
    translate: float = ranged(0.125, 0.0, 0.5, integer=False)
    bn_calib_images: int = ranged(1000, 1, 10_000_000)
    device: str = "auto"
    bf16: bool | None = None  # None: on for CUDA
    channels_last: bool | None = None  # None: on for CPU and CUDA (NHWC is faster on both)
    compile: bool | str = False  # True (torch.compile's default mode) or a mode: COMPILE_MODES
    cudnn_benchmark: bool = False  # time cuDNN's algorithms per new layer shape and keep the fastest (each shape's first step pays)
    grad_checkpointing: bool = False  # recompute blocks in backward: activation memory of about one block
    static_shapes: bool = False  # every subnet at the largest layer shapes: a GPU sets each shape up once (Supernet.set_static_shapes)
    resident: bool | None = None  # keep the uint8 dataset on the device (None: on for CUDA)
    stream: bool | None = None  # decode per batch from disk (None: when the decoded set exceeds memory_budget)
    memory_budget: float | None = ranged(None, 0.01, 100_000.0, integer=False)  # GB (None: a quarter of RAM)
    image_size: int | None = ranged(None, 1, 8192)  # decode-time size (None: 1.15x the largest resolution)
    workers: int | None = ranged(None, 0, 256)  # DataLoader processes when streaming (None: min(8, cores))
    epoch_scale: float = ranged(1.0, 0.001, 1000.0, integer=False)
    time_budget: float | None = ranged(None, 0.05, 1_000_000.0, integer=False)  # minutes for the whole schedule
    budget_plan: dict[str, Any] | None = None  # how --time-budget set the epochs (written once, kept on resume)
    phases: list[Phase] = field(default_factory=list)

    def resolve(self) -> TrainConfig:
        check_fields(self, "training config")
        if self.split not in ("random", "last"):
            raise EdgeNASError(f"training config: 'split' must be 'random' or 'last', got {self.split!r}")
        if isinstance(self.compile, str) and self.compile not in COMPILE_MODES:
            raise EdgeNASError(f"training config: 'compile' must be true, false or one of {', '.join(COMPILE_MODES)}; got {self.compile!r}")
        if self.compile and self.grad_checkpointing:
            raise EdgeNASError("training config: 'compile' and 'grad_checkpointing' cannot be combined (choose one)")
        space = get_space(self.space, self.space_def)
        res = self.resolutions or list(space.resolutions)
        bad = [r for r in res if r not in space.resolutions]
        if bad:
            raise EdgeNASError(f"resolutions {bad} are not in space '{space.name}' ({list(space.resolutions)})")
        phases = self.phases or default_phases(space, self.epoch_scale)
        for p in phases:
            p.choices(space)
            p.resolutions(res)
        return replace(self, space=space.name, space_def=definition_record(space).get("space_def"), resolutions=sorted(res),
                       phases=phases)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["phases"] = [asdict(p) for p in self.phases]
        return d

    def dump(self, path: str | Path) -> None:
        from ..io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        phases = data.get("phases") or []
        if not isinstance(phases, list) or not all(isinstance(p, dict) for p in phases):
            raise EdgeNASError("training config: 'phases' must be a list of mappings (name, epochs, lr, ks, e, d)")
        try:
            data["phases"] = [Phase(**p) for p in phases]
        except TypeError as exc:
            raise EdgeNASError(f"bad phase in training config: {exc}") from None
        return cls(**data)


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """YAML file (optional) with CLI overrides (None values ignored) -> resolved config."""
    from ..io import load_settings

    return TrainConfig.from_dict(load_settings([f.name for f in fields(TrainConfig)], path, overrides, "training config")).resolve()
