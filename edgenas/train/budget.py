"""Fit the progressive-shrinking schedule into a wall-clock budget (``edgenas train --time-budget``).

A short probe times a one-network step (the full phase: the largest net only) and a sandwich
step (largest, smallest and the random subnets), plus one evaluation.  Every step trains the
largest network; each other network it trains costs ``a`` (launch overhead: what dominates
small images on a GPU) plus ``b`` per MAC (what dominates on a CPU).  The two probes give ``a``
and ``b`` (with ``--compile`` and without ``--static-shapes``, which compiles the largest network
only, a third probe times it run eagerly like the others), and each phase's expected networks and MACs per step (seeded
sandwiches of its choices at its resolutions) give its step time: the kernel phase trains four
nearly largest networks a step, the expand phase four of every size.  Every phase's epochs are then scaled by
one factor, so the schedule keeps the default proportions and ends within the budget.  As the
run goes, the phases still to come are re-fitted into the time left at each phase start and
after each phase's epochs 1, 2, 4, 8, ... (:func:`refits_after`, :func:`replan`).
Plan and re-fits are recorded in ``config.yaml``, so a resumed run keeps its epochs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from ..space import SearchSpace
from .config import Phase
from .sampling import sandwich

__all__ = ["PROBE_PHASES", "epoch_seconds", "fit_epochs", "measured_epochs", "plan_epochs", "refits_after", "replan", "replay",
           "step_work", "work"]

#: the two step kinds the probe times: one network per step, and the full sandwich
PROBE_PHASES = {"one_network": Phase("probe-one-network", 1, 0.0, "max", "max", "max"),
                "sandwich": Phase("probe-sandwich", 1, 0.0, "all", "all", "all")}


def work(space: SearchSpace, archs: list) -> tuple[int, int]:
    """(networks, MACs summed over them) of one training step of ``archs``: what its time is modelled on."""
    from ..cost import stats

    return len(archs), sum(stats(space, a).macs for a in archs)


def step_work(phase: Phase, space: SearchSpace, random_subnets: int, resolutions: list[int], samples: int = 48) -> tuple[float, float]:
    """(networks, MACs summed over them) of an average training step of ``phase``, from seeded sandwiches."""
    rng = np.random.default_rng(0)
    steps = [work(space, sandwich(space, phase, rng, random_subnets, resolutions[i % len(resolutions)])) for i in range(samples)]
    return float(np.mean([n for n, _ in steps])), float(np.mean([m for _, m in steps]))


def plan_epochs(phases: list[Phase], space: SearchSpace, random_subnets: int, steps_per_epoch: int,
                probe: dict[str, float], budget_s: float, resolutions: list[int] | None = None) -> tuple[list[Phase], dict[str, Any]]:
    """Epochs per phase scaled by one factor so the estimated time fits ``budget_s`` (at least 1 epoch each)."""
    one, full = probe["one_network_step_s"], probe["sandwich_step_s"]
    eager = probe.get("one_network_eager_step_s", one)  # sliced with --compile, only the largest network is compiled
    res = list(resolutions or space.resolutions)
    # every step trains the largest network (``one``) and then the others at a per network + b per MAC;
    # a and b from the eager largest network and the rest of the sandwich step
    n1, m1, ns, ms = probe["one_network_nets"], probe["one_network_macs"], probe["sandwich_nets"], probe["sandwich_macs"]
    denom = (ms - m1) - (ns - n1) * m1 / n1
    b = (full - one - (ns - n1) * eager / n1) / denom if denom < 0 else 0.0
    b = min(max(b, 0.0), eager / m1)
    a = (eager - b * m1) / n1
    step_s = [one + a * (n - n1) + b * (m - m1) for n, m in (step_work(p, space, random_subnets, p.resolutions(res)) for p in phases)]
    epoch_s = [steps_per_epoch * t + probe["eval_s"] for t in step_s]
    epochs, scale = fit_epochs([p.epochs for p in phases], epoch_s, budget_s)
    planned = sum(e * t for e, t in zip(epochs, epoch_s))
    plan = {"budget_s": round(budget_s, 1), "planned_s": round(planned, 1), "scale": round(scale, 4),
            "steps_per_epoch": steps_per_epoch, **{k: round(v, 5) for k, v in probe.items()},
            "epoch_s": {p.name: round(t, 3) for p, t in zip(phases, epoch_s)},
            "epochs": {p.name: e for p, e in zip(phases, epochs)}, "over_budget": planned > budget_s}
    if plan["over_budget"]:  # one epoch a phase is the least: this many steps an epoch would fit (fewer images, --limit)
        plan["fits_steps_per_epoch"] = max(0, int((budget_s - len(phases) * probe["eval_s"]) / sum(step_s)))
    return [replace(p, epochs=e) for p, e in zip(phases, epochs)], plan


def fit_epochs(epochs: list[int], epoch_s: list[float], budget_s: float) -> tuple[list[int], float]:
    """``epochs`` scaled by one factor so that at ``epoch_s`` seconds each they fill ``budget_s`` (at
    least 1 each; what flooring leaves goes to the phases furthest below their share); and the factor."""
    default_s = sum(e * t for e, t in zip(epochs, epoch_s))
    scale = budget_s / default_s if default_s > 0 else 1.0
    out = [max(1, math.floor(e * scale)) for e in epochs]
    left = budget_s - sum(e * t for e, t in zip(out, epoch_s))
    for i in sorted(range(len(epochs)), key=lambda i: out[i] / max(epochs[i] * scale, 1e-9)):
        if epoch_s[i] <= left:
            out[i] += 1
            left -= epoch_s[i]
    return out, scale


def epoch_seconds(row: dict[str, Any]) -> float:
    """Wall-clock seconds a finished epoch (a metrics row) spent: training, evaluation and checkpoint
    writes (runs from before ``wall_seconds`` was recorded: training and evaluation)."""
    return float(row["wall_seconds"]) if "wall_seconds" in row else float(row["train_seconds"]) + float(row["eval_seconds"])


def measured_epochs(rows: Iterable[dict[str, Any]]) -> dict[str, list[float]]:
    """Each phase's epoch times, in order, from a run's metrics rows (``metrics.csv``)."""
    seconds: dict[str, list[float]] = {}
    for row in rows:
        seconds.setdefault(row["phase"], []).append(epoch_seconds(row))
    return seconds


def refits_after(pi: int, done: int) -> bool:
    """Whether ``--time-budget`` re-fits the schedule ``done`` epochs into phase ``pi``.

    At each phase start but the first's; after a phase's first epoch, the only measure of what its
    new layer shapes cost; and after its epochs 2, 4, 8, ..., so that a phase whose kind (one
    network or several a step) only the probe had costed, the first phase always, and a machine
    whose speed drifts are caught while few re-fits bend the learning-rate schedule.  Re-fitted
    at phase starts and first epochs only, the largest network alone on a 2-core CPU ran its epochs
    about 10% slower than probed and overran a 14-minute budget by a minute.
    """
    return (done == 0 and pi > 0) or (done > 0 and done & (done - 1) == 0)


def replan(phases: list[Phase], start: int, plan: dict[str, Any], history: list[dict[str, Any]], space: SearchSpace,
           done: int = 0) -> list[Phase]:
    """``phases[start:]`` refitted into what the budget has left after the finished epochs of
    ``history``, ``done`` epochs into phase ``start`` (where: :func:`refits_after`).  After its first
    epoch, whose time is the only measure of the set-up its new layer shapes cost; after later
    ones, as the steady epochs show what the probe got wrong.

    The probe cannot foresee everything: the first epoch of a phase that trains new layer shapes
    (kernel sizes, expand ratios, widths) pays their one-time set-up (on a GPU about 100x a step
    for each shape: half a minute per phase), and the step-time model can be off.  So what is left
    is costed at the planned epoch times, times the ratio measured so far for phases of the same
    kind (one network or several per step), plus the largest first-epoch surcharge measured so far
    for each phase still to come that brings new shapes.  On an H200 the all-elastic phase's first
    epoch cost 89 s where its steady epochs cost 12, a surcharge no earlier phase had shown: the
    re-fit after that epoch gives the phase the epochs the budget has left (at least one more), so
    its learning rate still decays to zero by the end.  A function of the history alone: a run
    resumed at any epoch plans the phases exactly as before.
    """
    choices = [p.choices(space) for p in phases]
    several = [any(len(v) > 1 for v in c.values()) for c in choices]
    new_shapes = [i == 0 or any(set(c[k]) - {v for prev in choices[:i] for v in prev[k]} for k in ("ks", "e", "w", "style"))
                  for i, c in enumerate(choices)]
    index = {p.name: i for i, p in enumerate(phases)}
    planned = {p.name: float(plan["epoch_s"][p.name]) for p in phases}
    seconds = measured_epochs(history)
    spent = sum(sum(v) for v in seconds.values())
    # steady epochs: a new-shape phase's first epoch is the surcharge's, not the ratio's
    steady = {n: v[1:] if new_shapes[index[n]] else v for n, v in seconds.items()}
    ratio = {}
    for kind in (False, True):
        names = [n for n in steady if several[index[n]] == kind]
        expected = sum(planned[n] * len(steady[n]) for n in names)
        ratio[kind] = sum(sum(steady[n]) for n in names) / expected if expected > 0 else 1.0
    surcharge = max([max(0.0, v[0] - float(np.median(v[1:]))) for n, v in seconds.items() if new_shapes[index[n]] and len(v) > 1],
                    default=0.0)
    rest = range(start, len(phases))
    paid = start if done else -1  # the phase under way has paid its set-up
    left = float(plan["budget_s"]) - spent - surcharge * sum(new_shapes[i] for i in rest if i != paid)
    epoch_s = [planned[phases[i].name] * ratio[several[i]] for i in rest]
    first = plan.get("epochs") or {p.name: p.epochs for p in phases}  # the first plan's proportions
    share = [max(1, int(first[phases[i].name]) - (done if i == start else 0)) for i in rest]
    epochs, _ = fit_epochs(share, epoch_s, left)
    epochs[0] += done
    return phases[:start] + [replace(phases[i], epochs=e) for i, e in zip(rest, epochs)]


def replay(phases: list[Phase], plan: dict[str, Any], seconds: dict[str, list[float]], space: SearchSpace,
           refit: bool = True) -> tuple[float, list[Phase]]:
    """(seconds, phases run) of a schedule whose epoch k of phase P takes ``seconds[P][k]`` (an epoch
    beyond those measured: that phase's median), its plan kept or re-fitted where the trainer re-fits
    (:func:`refits_after`): how a plan is judged on a run's measured epoch times."""
    history: list[dict[str, Any]] = []
    for pi in range(len(phases)):
        took, k = seconds[phases[pi].name], 0
        while k < phases[pi].epochs:  # a re-fit after k epochs leaves at least k + 1
            if refit and refits_after(pi, k):
                phases = replan(phases, pi, plan, history, space, done=k)
            history.append({"phase": phases[pi].name, "train_seconds": took[k] if k < len(took) else float(np.median(took)),
                            "eval_seconds": 0.0})
            k += 1
    return sum(r["train_seconds"] for r in history), phases
