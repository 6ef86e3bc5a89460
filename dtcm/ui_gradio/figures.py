"""The Gradio app's own charts (the service draws the ones both UIs show)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dtcm import service

__all__ = ["compare_figure"]


def compare_figure(result: dict) -> go.Figure:
    """Brightness and flicker (L_STC) per enhancer (bars) beside each enhancer's Top-5 probabilities (heat map)."""
    done = [m for m in result["_order"] if "error" not in result[m]]
    names = [service.METHOD_LABELS.get(m, m) for m in done]
    labels = []
    for m in done:
        labels += [label for label, _ in result[m]["top5"] if label not in labels]
    z = [[dict(result[m]["top5"]).get(label) for label in labels] for m in done]  # (methods, labels)
    text = [[f"{p:.0%}" if p is not None else "" for p in row] for row in z]
    titles = ("Brightness (0-255)", "Flicker L_STC (lower: steadier)", "Top-5 probabilities")
    fig = make_subplots(
        rows=1,
        cols=3,
        column_widths=[0.18, 0.22, 0.6],
        horizontal_spacing=0.07,
        subplot_titles=titles,
        shared_yaxes=True,
    )
    colours = ["#f59e0b" if m == "dtcm" else "#94a3b8" for m in done]
    for col, key, fmt in ((1, "luma", "{:.0f}"), (2, "stc", "{:.4f}")):
        values = [result[m][key] for m in done]
        bars = go.Bar(x=values, y=names, orientation="h", marker_color=colours, showlegend=False)
        fig.add_trace(bars.update(text=[fmt.format(v) for v in values], textposition="auto"), row=1, col=col)
    heat = go.Heatmap(z=z, x=labels, y=names, text=text, texttemplate="%{text}", hoverongaps=False)
    fig.add_trace(heat.update(colorscale="YlOrBr", zmin=0, zmax=1, showscale=False), row=1, col=3)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=120 + 42 * len(done), margin=dict(l=10, r=10, t=64, b=10))
    return fig
