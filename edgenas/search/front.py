"""``edgenas pick``: choose one model from a search run's front under a budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..io import read_json, read_yaml
from .config import LIMITS
from .objectives import SearchError, parse_limit

__all__ = ["pick"]


def pick(run: str | Path, strategy: str = "best", **limits: Any) -> dict[str, Any]:
    """The front member that satisfies ``limits`` and is best by ``strategy``.

    ``best``: highest top1 (or the lowest value of the first objective when top1 was not
    searched); ``knee``: closest to the ideal point after normalising each objective over the front.
    """
    run = Path(run)
    path = run / "front.json"
    if not path.is_file():
        raise SearchError(f"{run} has no front.json: not a finished `edgenas search` run")
    front = read_json(path, "search front", SearchError)
    if not isinstance(front, list):
        raise SearchError(f"{path} is not a search front (a list of members)")
    if not front:
        raise SearchError(f"the front in {path} is empty (no feasible arch was found)")
    if not all(isinstance(m, dict) and isinstance(m.get("arch"), dict) and
               all(isinstance(v, int | float) and not isinstance(v, bool) for k, v in m.items() if k not in ("arch", "precision"))
               for m in front):
        raise SearchError(f"{path} has a malformed member (each needs 'arch' and numeric objectives)")
    objectives = [k for k in front[0] if k not in ("arch", "precision")]
    ok = np.ones(len(front), dtype=bool)
    for key, value in limits.items():
        if value is None:
            continue
        name, upper = LIMITS[key]
        if name not in objectives:
            raise SearchError(f"--{key.replace('_', '-')}: the run did not search {name} (objectives: {', '.join(objectives)})")
        limit = parse_limit(value, name)
        vals = np.array([m[name] for m in front])
        ok &= vals <= limit if upper else vals >= limit
        if not ok.any():
            best = vals.min() if upper else vals.max()
            raise SearchError(f"no front member has {name} {'<=' if upper else '>='} {limit:g}; the best has {best:.4g}")
    cand = [m for m, keep in zip(front, ok) if keep]
    if strategy == "best":
        chosen = max(cand, key=lambda m: m["top1"]) if "top1" in objectives else min(cand, key=lambda m: m[objectives[0]])
    elif strategy == "knee":
        F = np.array([[-m[o] if o == "top1" else m[o] for o in objectives] for m in front], dtype=float)
        span = np.where(np.ptp(F, 0) > 0, np.ptp(F, 0), 1.0)
        N = (F - F.min(0)) / span
        dist = np.linalg.norm(N, axis=1)
        dist[~ok] = np.inf
        chosen = front[int(np.argmin(dist))]
    else:
        raise SearchError(f"unknown pick strategy '{strategy}' (best or knee)")
    cfg = read_yaml(run / "config.yaml", "search run config") if (run / "config.yaml").exists() else {}
    return {**chosen, "space": cfg.get("space"), "strategy": strategy, "run": str(run)}
