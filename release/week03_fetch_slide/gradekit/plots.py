"""Figures of a behaviour check: the student's runs against the reference's.

Used by the grader's feedback page and by the student's public checks (``public.py``). A check draws its ``view`` (a
function of its assignment's ``views.py``), or the learning curve below. Everything here draws numbers it is given
(the drivers' outputs, one per seed); it runs no student or reference code. Figures are made without pyplot, so
nothing depends on a display. matplotlib is imported where a figure is drawn: the grader imports this module with the
checks, and most commands draw nothing.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

YOURS, REFERENCE = "tab:blue", "tab:gray"


def png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def base64_png(fig: Figure) -> str:
    """For an ``<img src='data:image/png;base64,...'>`` that keeps an HTML page self-contained."""
    return base64.b64encode(png(fig)).decode("ascii")


def band(ax, series: list, label: str, color: str, width: float = 1.5, style: str = "-", smooth: int = 1) -> None:
    """Mean ± standard deviation over seeds of equally long series (a mean ± std band), each series
    first averaged over a moving window of ``smooth`` steps."""
    values = np.asarray([s for s in series if s is not None], dtype=float)
    if values.size == 0:
        return
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        values = np.asarray([np.convolve(v, kernel, mode="valid") for v in values])
    mean, std = values.mean(axis=0), values.std(axis=0)
    steps = np.arange(1, len(mean) + 1)
    ax.plot(steps, mean, color=color, linewidth=width, linestyle=style, label=label)
    ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.15)


def series(runs: list, key: str) -> list:
    return [run[key] if run else None for run in runs]


def figure(check, runs: list, reference: list, extra: dict | None = None) -> Figure:
    """The check's figure: its ``view`` of the student's ``runs`` (driver outputs per seed, None where a seed failed)
    against the reference's; ``extra`` holds feedback-only runs (e.g. with a baseline), student's and reference's."""
    if check.view is not None:
        return check.view(check, runs, reference, extra or {})
    return curve_view(check, runs, reference)


def curve_view(check, runs: list, reference: list) -> Figure:
    """The check's learning curve: yours against the reference band, with the pass threshold dashed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6), dpi=100)
    ax = fig.subplots()
    band(ax, series(reference, check.curve), "reference", REFERENCE, 3.5)  # wide: visible under yours
    band(ax, series(runs, check.curve), "your code", YOURS)
    ax.axhline(check.threshold, color="tab:red", linestyle="--", label=f"threshold {check.threshold:g}")
    run = list(check.seeds)[:len(runs)]
    skipped = list(check.seeds)[len(runs):]
    title = f"mean ± std over seeds {run}" + (f"; {skipped} not run (verdict settled)" if skipped else "")
    ax.set(xlabel=check.axes[0], ylabel=check.axes[1], title=title)
    if check.ylim:
        ax.set_ylim(*check.ylim)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig
