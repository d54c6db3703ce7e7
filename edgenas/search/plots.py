"""Pareto plots of a search run from its data: PNG (matplotlib) and a self-contained interactive HTML (plotly).

Every front member is a point; the line joins the members that are non-dominated in the two
plotted objectives (with 3 objectives the full front is not a curve in 2-D, so a line through
all of it zigzags).  Budgets are drawn as dashed lines and the pick (the most accurate member
within them, what ``edgenas pick`` returns) as a star.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_path
from ..space import SearchSpace

__all__ = ["pareto_plots"]

_LABEL = {"top1": "top-1", "latency": "latency (ms)", "macs": "MACs", "params": "parameters"}


def _fmt(name: str, value: float) -> str:
    if name == "latency":
        return f"{value:.3f} ms" if value >= 0.1 else f"{value * 1e3:.1f} µs"
    if name == "top1":
        return f"{100 * value:.2f}%"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.4g}"


def _axes(names: Sequence[str]) -> tuple[str, str, str | None]:
    """x: a cost, y: top1 when searched; colour: a third objective."""
    y = "top1" if "top1" in names else names[0]
    rest = [n for n in names if n != y]
    return (rest[0] if rest else y), y, (rest[1] if len(rest) > 1 else None)


def _front_2d(rows: list[dict], x: str, y: str) -> list[dict]:
    """Members non-dominated in (x lower, y higher when y is top1, else lower), sorted by x."""
    sign = -1.0 if y == "top1" else 1.0
    best, out = np.inf, []
    for r in sorted(rows, key=lambda r: (r[x], sign * r[y])):
        if sign * r[y] < best:
            best = sign * r[y]
            out.append(r)
    return out


def pareto_plots(space: SearchSpace, names: list[str], front: list[dict], baseline: list[dict], refs: list[dict], out: Path, *,
                 label: str = "search", constraints: Sequence[Any] = (), precisions: Sequence[str] = ("fp32",)) -> dict[str, str]:
    """Write ``pareto.png`` and ``pareto.html`` in ``out``; rows hold the objectives (and ``vector``)."""
    x, y, c = _axes(names)
    picked = max(front, key=lambda r: r[y]) if front and y == "top1" else None  # the front is feasible already
    limits = [(k.name, k.limit) for k in constraints if k.name in (x, y)]
    return {"plot_png": str(_png(space, names, front, baseline, refs, out, label, x, y, c, picked, limits)),
            "plot_html": str(_html(space, names, front, baseline, refs, out, label, x, y, c, picked, limits, precisions))}


def _png(space, names, front, baseline, refs, out, label, x, y, c, picked, limits) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    if baseline:
        b = _front_2d(baseline, x, y)
        ax.plot([r[x] for r in b], [r[y] for r in b], "o--", ms=3, color="gray", alpha=0.7, label=f"random search ({len(baseline)})")
    sc = ax.scatter([r[x] for r in front], [r[y] for r in front], c=[r[c] for r in front] if c else "C0", s=18, zorder=3,
                    label=f"{label} front ({len(front)})")
    line = _front_2d(front, x, y)
    ax.plot([r[x] for r in line], [r[y] for r in line], "-", color="C0", lw=1, alpha=0.6)
    from matplotlib.ticker import FuncFormatter

    if c:
        fig.colorbar(sc, ax=ax, label=_LABEL[c], format=FuncFormatter(lambda v, _: _fmt(c, v)))
    for axis, name in ((ax.xaxis, x), (ax.yaxis, y)):
        if name in ("macs", "params"):
            axis.set_major_formatter(FuncFormatter(lambda v, _, name=name: _fmt(name, v)))
    for name, limit in limits:
        (ax.axvline if name == x else ax.axhline)(limit, color="C3", ls="--", lw=1, label=f"budget {_fmt(name, limit)}")
    if picked is not None:
        ax.scatter([picked[x]], [picked[y]], marker="*", s=180, color="C1", edgecolor="k", zorder=5, label="pick")
    for r in refs:
        ax.scatter([r[x]], [r[y]], marker="D", s=40, color="C3", zorder=4)
        ax.annotate(r["name"], (r[x], r[y]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(_LABEL[x])
    ax.set_ylabel(_LABEL[y])
    ax.set_title(f"{space.name}: {' / '.join(names)}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    png = out / "pareto.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return png


def _html(space, names, front, baseline, refs, out, label, x, y, c, picked, limits, precisions) -> Path:
    import plotly.graph_objects as go

    def hover(rows: list[dict]) -> list[str]:
        G = space.n_genes
        return [(f"{space.decode(r['vector'][:G]).to_json()}" + (f" {precisions[int(r['vector'][G])]}" if len(r["vector"]) > G else "")
                 + "<br>" if "vector" in r else f"{r.get('name', '')}<br>")
                + "<br>".join(f"{n}: {_fmt(n, r[n])}" for n in names) for r in rows]

    traces = []
    if baseline:
        b = _front_2d(baseline, x, y)
        traces.append(go.Scatter(x=[r[x] for r in b], y=[r[y] for r in b], mode="lines+markers", name="random search",
                                 line={"dash": "dash", "color": "gray"}, text=hover(b), hoverinfo="text"))
    marker: dict[str, Any] = {"size": 7}
    if c:
        marker.update(color=[r[c] for r in front], colorscale="Viridis", showscale=True,
                      colorbar={"title": _LABEL[c], "x": 1.02, "len": 0.8})
    traces.append(go.Scatter(x=[r[x] for r in front], y=[r[y] for r in front], mode="markers", name=f"{label} front",
                             marker=marker, text=hover(front), hoverinfo="text"))
    line = _front_2d(front, x, y)
    traces.append(go.Scatter(x=[r[x] for r in line], y=[r[y] for r in line], mode="lines", name=f"front in {x} / {y}",
                             line={"color": "#1f77b4", "width": 1}, hoverinfo="skip"))
    if picked is not None:
        traces.append(go.Scatter(x=[picked[x]], y=[picked[y]], mode="markers", name="pick", text=hover([picked]), hoverinfo="text",
                                 marker={"symbol": "star", "size": 16, "color": "orange", "line": {"width": 1, "color": "black"}}))
    if refs:
        traces.append(go.Scatter(x=[r[x] for r in refs], y=[r[y] for r in refs], mode="markers+text", name="references",
                                 text=[r["name"] for r in refs], textposition="top center", marker={"symbol": "diamond", "size": 10}))
    figure = go.Figure(traces, layout={"xaxis_title": _LABEL[x], "yaxis_title": _LABEL[y], "title": f"{space.name} search front",
                                       "template": "plotly_white",
                                       "legend": {"orientation": "h", "yanchor": "top", "y": -0.15, "xanchor": "left", "x": 0}})
    for name, limit in limits:
        if name == x:
            figure.add_vline(x=limit, line_dash="dash", line_color="red", annotation_text=f"budget {_fmt(name, limit)}")
        else:
            figure.add_hline(y=limit, line_dash="dash", line_color="red", annotation_text=f"budget {_fmt(name, limit)}")
    html = out / "pareto.html"
    with atomic_path(html) as tmp:
        figure.write_html(str(tmp), include_plotlyjs=True, full_html=True)
    return html
