"""Fit the progressive-shrinking schedule into a wall-clock budget (``edgenas train --time-budget``).

A short probe times a one-network step (the full phase: the largest net only) and a sandwich
step (largest, smallest and the random subnets), plus one evaluation.  Each phase's step time is
interpolated by how many subnets it trains per step; every phase's epochs are then scaled by
one factor, so the schedule keeps the default proportions and ends within the budget.  The
plan is recorded in ``config.yaml``, so a resumed run keeps its epochs.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from ..space import SearchSpace
from .config import Phase

__all__ = ["PROBE_PHASES", "plan_epochs", "subnets_per_step"]

#: the two step kinds the probe times: one network per step, and the full sandwich
PROBE_PHASES = {"one_network": Phase("probe-one-network", 1, 0.0, "max", "max", "max"),
                "sandwich": Phase("probe-sandwich", 1, 0.0, "all", "all", "all")}


def subnets_per_step(phase: Phase, space: SearchSpace, random_subnets: int) -> int:
    """Networks a step of ``phase`` trains: 1 when nothing is elastic, else largest + smallest + random."""
    c = phase.choices(space)
    return 1 if all(len(v) == 1 for v in c.values()) else 2 + random_subnets


def plan_epochs(phases: list[Phase], space: SearchSpace, random_subnets: int, steps_per_epoch: int,
                probe: dict[str, float], budget_s: float) -> tuple[list[Phase], dict[str, Any]]:
    """Epochs per phase scaled by one factor so the estimated time fits ``budget_s`` (at least 1 epoch each)."""
    one, full = probe["one_network_step_s"], probe["sandwich_step_s"]
    n_full = subnets_per_step(PROBE_PHASES["sandwich"], space, random_subnets)
    per_net = (full - one) / (n_full - 1) if n_full > 1 else 0.0
    epoch_s = []
    for p in phases:
        n = subnets_per_step(p, space, random_subnets)
        epoch_s.append(steps_per_epoch * (one + (n - 1) * per_net) + probe["eval_s"])
    default_s = sum(p.epochs * t for p, t in zip(phases, epoch_s))
    scale = budget_s / default_s if default_s > 0 else 1.0
    epochs = [max(1, math.floor(p.epochs * scale)) for p in phases]
    # spend what flooring left on the phases furthest below their share, in order
    left = budget_s - sum(e * t for e, t in zip(epochs, epoch_s))
    for i in sorted(range(len(phases)), key=lambda i: epochs[i] / max(phases[i].epochs * scale, 1e-9)):
        if epoch_s[i] <= left:
            epochs[i] += 1
            left -= epoch_s[i]
    planned = sum(e * t for e, t in zip(epochs, epoch_s))
    plan = {"budget_s": round(budget_s, 1), "planned_s": round(planned, 1), "scale": round(scale, 4),
            "steps_per_epoch": steps_per_epoch, **{k: round(v, 5) for k, v in probe.items()},
            "epoch_s": {p.name: round(t, 3) for p, t in zip(phases, epoch_s)}, "over_budget": planned > budget_s}
    return [replace(p, epochs=e) for p, e in zip(phases, epochs)], plan
