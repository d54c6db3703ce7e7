"""Input validation in one place: numeric ranges for flags, field types of YAML/JSON settings, and devices.

Every number a user gives (a flag, a YAML key) is checked here against its type and range before
any work starts, so bad input ends in one line naming the setting instead of a traceback, a
silent acceptance or hours of work on ``--samples 1000000000``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from .errors import EdgeNASError

if TYPE_CHECKING:
    import torch

__all__ = ["Range", "check_fields", "finite", "ranged", "torch_device"]


def finite(value: Any) -> bool:
    """A real, finite number (not a bool, not NaN or infinity): what every number read from a file must be."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Range:
    """An inclusive range of integers (``integer=True``) or finite floats."""

    lo: float
    hi: float
    integer: bool = True

    def check(self, name: str, value: Any) -> Any:
        kind = "an integer" if self.integer else "a number"
        ok_type = isinstance(value, int) if self.integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type or (not self.integer and not math.isfinite(value)):
            raise EdgeNASError(f"{name} must be {kind} from {self._fmt(self.lo)} to {self._fmt(self.hi)}, got {value!r}")
        if not self.lo <= value <= self.hi:
            what = "negative" if value < 0 <= self.lo else "out of range"
            raise EdgeNASError(f"{name} = {value!r} is {what}; it must be from {self._fmt(self.lo)} to {self._fmt(self.hi)}")
        return value

    def arg(self, name: str) -> Callable[[str], Any]:
        """An argparse ``type=`` that parses and checks (argparse turns the error into one usage line)."""

        def parse(text: str) -> Any:
            try:
                value = int(text) if self.integer else float(text)
            except ValueError:
                kind = "an integer" if self.integer else "a number"
                raise argparse.ArgumentTypeError(f"{name} must be {kind}, got {text!r}") from None
            try:
                return self.check(name, value)
            except EdgeNASError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        parse.__name__ = name  # argparse names the type in its messages
        return parse

    @staticmethod
    def _fmt(v: float) -> str:
        return f"{int(v):,}" if float(v).is_integer() else f"{v:g}"


def ranged(default: Any, lo: float, hi: float, integer: bool = True) -> Any:
    """A dataclass field whose value ``check_fields`` keeps inside [lo, hi]."""
    return dataclasses.field(default=default, metadata={"range": Range(lo, hi, integer)})


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, t) for t in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return finite(value)
    if tp is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        k, v = typing.get_args(tp) or (Any, Any)
        return isinstance(value, dict) and all(_matches(a, k) and _matches(b, v) for a, b in value.items())
    if tp is list:
        return isinstance(value, list)
    return isinstance(tp, type) and isinstance(value, tp)


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_describe(t) for t in typing.get_args(tp))
    if tp is type(None):
        return "empty"
    if typing.get_origin(tp) is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    return {int: "an integer", float: "a finite number", str: "a string", bool: "true or false"}.get(tp, getattr(tp, "__name__", str(tp)))


def check_fields(obj: Any, what: str) -> None:
    """Check every field of dataclass ``obj`` against its annotation and ``ranged`` bounds."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not _matches(value, hints[f.name]):
            raise EdgeNASError(f"{what}: '{f.name}' must be {_describe(hints[f.name])}, got {value!r}")
        rng = f.metadata.get("range")
        if rng is not None and value is not None:
            rng.check(f"{what}: '{f.name}'", value)


def torch_device(value: Any) -> torch.device:
    """A PyTorch device that this machine has: a typo, or a GPU command run on a laptop, is one line
    naming the device, not the driver's error from inside the first copy to it."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise EdgeNASError(f"device {value!r} is not a PyTorch device (cpu, cuda, cuda:1, mps, ...)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise EdgeNASError(f"device {value!r}: PyTorch finds no CUDA GPU on this machine (torch {torch.__version__}, "
                               f"CUDA build {torch.version.cuda or 'none'}); use --device cpu")
        if device.index is not None and device.index >= count:
            raise EdgeNASError(f"device {value!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise EdgeNASError(f"device {value!r}: PyTorch finds no Apple GPU (MPS) on this machine; use --device cpu")
    return device
