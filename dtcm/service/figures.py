"""Every plotly figure the UIs show: Top-5 bars, the timeline and the fine-tune's loss curves."""

from __future__ import annotations

from dtcm.service.ui import LOSS_NAMES

__all__ = ["loss_figure", "timeline_figure", "top5_figure"]

_MARGIN = dict(l=10, r=10, t=40, b=10)


def top5_figure(top5: list[tuple[str, float]], title: str = "Top-5 actions"):
    """A horizontal plotly bar chart of (label, probability) pairs, best on top."""
    import plotly.graph_objects as go

    labels = [label for label, _ in top5][::-1]
    probs = [p for _, p in top5][::-1]
    bars = go.Bar(
        x=probs,
        y=labels,
        orientation="h",
        text=[f"{p:.1%}" for p in probs],
        textposition="outside",
        textangle=0,
        cliponaxis=False,
        marker_color="#f59e0b",
    )
    fig = go.Figure(bars)
    axis = dict(range=[0, 1], tickformat=".0%", title="probability")
    fig.update_layout(title=title, xaxis=axis, height=300, margin=_MARGIN)
    return fig


def timeline_figure(result: dict):
    """The timeline as a plotly chart: one bar per window at its time, coloured by its top probability."""
    import plotly.graph_objects as go

    w = result["windows"]
    fig = go.Figure(
        go.Bar(
            x=[(r["start_s"] + r["end_s"]) / 2 for r in w],
            y=[r["p"] for r in w],
            width=[max(r["end_s"] - r["start_s"], 0.05) for r in w],
            text=[r["top1"] for r in w],
            textposition="inside",
            marker=dict(color=[r["p"] for r in w], colorscale="Viridis", cmin=0, cmax=1),
            hovertemplate="%{text} %{y:.0%}<br>at %{x:.1f} s<extra></extra>",
        )
    )
    fig.update_layout(
        height=220,
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(title="time in the clip (s)", range=[0, result["duration_s"]]),
        yaxis=dict(title="top probability", range=[0, 1], tickformat=".0%"),
    )
    return fig


def loss_figure(status: dict | None = None):
    """Every loss term (log scale) and the batch accuracy of a fine-tune, as a plotly figure.

    Args:
        status: a ``finetune_status()`` result; None (or empty) for the anonymous caller's.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if not status:
        from dtcm.service.finetune import finetune_status

        status = finetune_status()
    m = status["metrics"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("losses", "batch accuracy"))
    steps = [r.get("step") for r in m]
    for term, name in LOSS_NAMES.items():
        ys = [r.get(term) for r in m]
        if any(y is not None for y in ys):
            fig.add_trace(go.Scatter(x=steps, y=ys, mode="lines", name=name), row=1, col=1)
    fig.add_trace(go.Scatter(x=steps, y=[r.get("acc") for r in m], mode="lines", name="acc"), row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=320, margin=_MARGIN, legend=dict(orientation="h"))
    return fig
