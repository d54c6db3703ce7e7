"""Starting a run from another run's weights (``--init``): a new schedule continues a trained supernet.

Why: one GPU session rarely holds a whole schedule, and a user's data is often not the data a
supernet was trained on.  A continued run keeps the weights (and BN statistics), takes a fresh
optimizer and schedule, and refuses the one thing that would make its numbers lie: holding out
images the initial weights were trained on.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..data import same_data
from ..errors import CheckpointError, EdgeNASError
from ..space import SearchSpace
from ..supernet import Supernet, read_checkpoint
from .config import Phase

__all__ = ["load_init", "reached", "widen"]

CLASSIFIER = "head.classifier."  # the only weights whose shape follows the data (its number of classes)


def load_init(net: Supernet, spec: str, data_info: dict[str, Any]) -> dict[str, Any]:
    """Load the supernet checkpoint ``spec`` (a path or a built-in name) into ``net``; returns what
    was loaded, for the run's config.

    The checkpoint must be of ``net``'s space.  Its classifier is kept only for the same class
    names in the same order (another dataset starts a new one).  On the same images (same
    fingerprint) its held-out split must be this run's, else this run would score on images the
    weights were trained on; a subset of those images has another fingerprint and is not caught.
    Channels are sorted later, by :func:`widen`, only where the new schedule makes more choices
    elastic than the checkpoint's training had.
    """
    from ..pretrained import resolve_checkpoint

    try:
        ckpt = read_checkpoint(spec, net.space)
    except CheckpointError as exc:
        raise CheckpointError(f"--init: {exc}") from None
    theirs = ckpt.get("data") or {}
    if same_data(theirs, data_info) and not data_info.get("val_spec"):
        if _holdout(theirs) != _holdout(data_info):
            raise EdgeNASError(
                f"--init {spec} was trained on these same images with another held-out split ({_describe(theirs)}); this run "
                f"holds out {_describe(data_info)}, so it would score images the weights have learnt: use the same split "
                "(--split, --val-per-class / --val-fraction, --seed)")
    same_classes = theirs.get("classes") == data_info.get("classes") and int(ckpt["num_classes"]) == net.num_classes
    state = {k: v for k, v in ckpt["state_dict"].items() if same_classes or not k.startswith(CLASSIFIER)}
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"--init: {spec}'s weights do not fit space '{net.space.name}': {str(exc).splitlines()[0][:200]}") from None
    if unexpected or any(not k.startswith(CLASSIFIER) for k in missing):
        raise CheckpointError(f"--init: {spec}'s weights do not fit space '{net.space.name}' (keys {(unexpected or missing)[:3]})")
    path = resolve_checkpoint(spec)
    return {"checkpoint": str(spec), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
            "epochs": len(ckpt.get("history") or []), "data_fingerprint": theirs.get("fingerprint"),
            "classifier": "loaded" if same_classes else "new", "elastic": _reached(ckpt, net.space)}


def widen(net: Supernet, before: dict[str, int], now: dict[str, tuple]) -> None:
    """Sort channels as a phase makes more expand ratios (or widths) elastic than training had
    reached (``before``: how many of each were trained), keeping the bands already trained: the
    small choices keep the channels they learnt with."""
    if len(now["e"]) > before["e"]:
        net.sort_channels(keep_bands=max(0, before["e"] - 1))
    if len(now["w"]) > before["w"]:
        net.sort_widths(keep_bands=max(0, before["w"] - 1))


def reached(phases: list[Phase], space: SearchSpace, record: dict[str, Any] | None) -> dict[str, int]:
    """How many expand ratios and widths have been trained before phase ``len(phases)``: those
    phases', and the initial weights' (``record``: :func:`load_init`'s)."""
    counts = dict((record or {}).get("elastic") or {"e": 0, "w": 0})
    for p in phases:
        c = p.choices(space)
        counts = {k: max(counts.get(k, 0), len(c[k])) for k in ("e", "w")}
    return counts


def _reached(ckpt: dict[str, Any], space: SearchSpace) -> dict[str, int]:
    """Elastic choices the checkpoint's own schedule had trained (all of them when it records none)."""
    phases = (ckpt.get("config") or {}).get("phases")
    if not phases:
        return {"e": len(space.e_choices), "w": len(space.widths)}
    try:
        done = [Phase(**p) for p in phases[: int(ckpt.get("phase", len(phases) - 1)) + 1]]
    except TypeError:
        return {"e": len(space.e_choices), "w": len(space.widths)}
    return reached(done, space, None)


def _holdout(info: dict[str, Any]) -> tuple:
    """What decides the held-out images of a split of the same images."""
    split = info.get("split", "random")
    size = ("per class", info.get("val_per_class")) if info.get("val_per_class") else ("fraction", info.get("val_fraction", 0.1))
    return split, size, info.get("seed", 0) if split == "random" else None


def _describe(info: dict[str, Any]) -> str:
    split, (kind, n), seed = _holdout(info)
    return f"{split} {n} {kind}" + (f", seed {seed}" if seed is not None else "")
