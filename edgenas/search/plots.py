"""Pareto plots of a search run: PNG (matplotlib) and a self-contained interactive HTML (plotly)."""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_path

__all__ = ["pareto_plots"]

_LABEL = {"top1": "top-1", "latency": "latency (ms)", "macs": "MACs", "params": "parameters"}


def _axes(objectives: list[str]) -> tuple[str, str, str | None]:
    """x: a cost, y: top1 when searched; colour: a third objective."""
    names = list(objectives)
    y = "top1" if "top1" in names else names[0]
    rest = [n for n in names if n != y]
    x = rest[0] if rest else y
    return x, y, rest[1] if len(rest) > 1 else None


def pareto_plots(run, front: list[dict], baseline: list[dict], refs: list[dict], out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    names = [o.name for o in run.objectives]
    x, y, c = _axes(names)
    space = run.space

    def arch_text(rows: list[dict]) -> list[str]:
        return [f"{space.decode(r['vector']).to_json()}<br>" + "<br>".join(f"{n}: {r[n]:.4g}" for n in names) if "vector" in r
                else r.get("name", "") for r in rows]

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=120)
    if baseline:
        b = sorted(baseline, key=lambda r: r[x])
        ax.plot([r[x] for r in b], [r[y] for r in b], "o--", ms=3, color="gray", alpha=0.7, label=f"random search front ({len(b)})")
    f = sorted(front, key=lambda r: r[x])
    sc = ax.scatter([r[x] for r in f], [r[y] for r in f], c=[r[c] for r in f] if c else "C0", s=18, zorder=3,
                    label=f"{run.cfg.algorithm} front ({len(f)})")
    ax.plot([r[x] for r in f], [r[y] for r in f], "-", color="C0", lw=1, alpha=0.6)
    if c:
        fig.colorbar(sc, ax=ax, label=_LABEL[c])
    for r in refs:
        ax.scatter([r[x]], [r[y]], marker="*", s=120, color="C3", zorder=4)
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

    traces = []
    if baseline:
        b = sorted(baseline, key=lambda r: r[x])
        traces.append(go.Scatter(x=[r[x] for r in b], y=[r[y] for r in b], mode="lines+markers", name="random search front",
                                 line={"dash": "dash", "color": "gray"}, text=arch_text(b), hoverinfo="text"))
    traces.append(go.Scatter(x=[r[x] for r in f], y=[r[y] for r in f], mode="lines+markers", name=f"{run.cfg.algorithm} front",
                             marker={"color": [r[c] for r in f], "colorscale": "Viridis", "showscale": True,
                                     "colorbar": {"title": _LABEL[c]}} if c else {}, text=arch_text(f), hoverinfo="text"))
    if refs:
        traces.append(go.Scatter(x=[r[x] for r in refs], y=[r[y] for r in refs], mode="markers+text", name="references",
                                 text=[r["name"] for r in refs], textposition="top center", marker={"symbol": "star", "size": 14}))
    figure = go.Figure(traces, layout={"xaxis_title": _LABEL[x], "yaxis_title": _LABEL[y], "title": f"{space.name} search front",
                                       "template": "plotly_white"})
    html = out / "pareto.html"
    with atomic_path(html) as tmp:
        figure.write_html(str(tmp), include_plotlyjs=True, full_html=True)
    return {"plot_png": str(png), "plot_html": str(html)}
