"""Figures of a behaviour check: the student's runs against the reference's, and the lecture's animation.

Used by the feedback page (``feedback.py``), by the student's public checks (``public.py``) and by
``python -m autograder animate``. Everything here draws numbers it is given (the drivers' outputs, one per seed);
it runs no student or reference code. Figures are made without pyplot, so nothing depends on a display.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ACTIONS = ("L", "C", "R")
YOURS, REFERENCE = "tab:blue", "tab:gray"


def png(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()


def base64_png(fig: Figure) -> str:
    """For an ``<img src='data:image/png;base64,...'>`` that keeps an HTML page self-contained."""
    return base64.b64encode(png(fig)).decode("ascii")


def band(ax, series: list, label: str, color: str, width: float = 1.5, style: str = "-", smooth: int = 1) -> None:
    """Mean ± standard deviation over seeds of equally long series (the lecture's ``draw_plots`` style), each series
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
    views = {"bandit": bandit_views, "chain": chain_views}
    if check.view in views:
        return views[check.view](check, runs, reference, extra or {})
    return curve_view(check, runs, reference)


def curve_view(check, runs: list, reference: list) -> Figure:
    """The check's learning curve: yours against the reference band, with the pass threshold dashed."""
    fig = Figure(figsize=(8, 3.6), dpi=100)
    ax = fig.subplots()
    band(ax, series(reference, check.curve), "reference", REFERENCE, 3.5)  # wide: visible under yours
    band(ax, series(runs, check.curve), "your code", YOURS)
    ax.axhline(check.threshold, color="tab:red", linestyle="--", label=f"threshold {check.threshold:g}")
    ax.set(xlabel=check.axes[0], ylabel=check.axes[1], title=f"mean ± std over seeds {list(check.seeds)}")
    if check.ylim:
        ax.set_ylim(*check.ylim)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def bandit_views(check, runs: list, reference: list, extra: dict) -> Figure:
    """The lecture's ``draw_plots``: action probabilities over time, reward per step, total reward per run."""
    fig = Figure(figsize=(12, 3.8), dpi=100)
    ax_probs, ax_reward, ax_total = fig.subplots(1, 3, gridspec_kw={"width_ratios": [3, 3, 2]})
    colors = ("tab:green", "tab:orange", "tab:purple")
    for i, (name, color) in enumerate(zip(ACTIONS, colors)):
        mine = [np.asarray(p)[:, i] if p else None for p in series(runs, "probs")]
        band(ax_probs, mine, f"P({name}) yours", color)
        ref = [np.asarray(p)[:, i] for p in series(reference, "probs")]
        band(ax_probs, ref, f"P({name}) reference", color, 1.0, ":")
    ax_probs.axhline(check.threshold, color="tab:red", linestyle="--", linewidth=0.8)
    ax_probs.set(xlabel="Time step", ylabel="Action probability", ylim=(0, 1.05),
                 title=f"P(L) must reach {check.threshold:g}")
    ax_probs.legend(fontsize=7, ncol=2, loc="center right")
    window = max(1, len(runs[0]["rewards"] if runs and runs[0] else reference[0]["rewards"]) // 50)
    band(ax_reward, series(reference, "rewards"), "reference", REFERENCE, 3.5, smooth=window)
    band(ax_reward, series(runs, "rewards"), "your code", YOURS, smooth=window)
    ax_reward.set(xlabel="Time step", ylabel="Reward", ylim=(-0.05, 1.05),
                  title=f"reward per step (mean ± std, moving average of {window})")
    ax_reward.legend(loc="lower right")
    totals = [sum(r) if r else np.nan for r in series(runs, "rewards")]
    ref_totals = [sum(r) for r in series(reference, "rewards")]
    x = np.arange(len(check.seeds))
    ax_total.bar(x - 0.2, (ref_totals + [np.nan] * len(x))[:len(x)], 0.4, color=REFERENCE, label="reference")
    ax_total.bar(x + 0.2, (totals + [np.nan] * len(x))[:len(x)], 0.4, color=YOURS, label="your code")
    ax_total.set(xticks=x, xticklabels=[str(s) for s in check.seeds], xlabel="Seed (one run each)",
                 ylabel="Total reward", title="total reward per run")
    ax_total.legend(loc="lower right", fontsize=8)
    for ax in (ax_probs, ax_reward, ax_total):
        ax.grid(alpha=0.3)
    return fig


def chain_views(check, runs: list, reference: list, extra: dict) -> Figure:
    """REINFORCE on the chain: return and loss per episode, without the baseline (graded) and with it (shown)."""
    fig = Figure(figsize=(12, 3.8), dpi=100)
    ax_return, ax_loss = fig.subplots(1, 2)
    with_baseline = (extra.get("runs") or [], extra.get("reference") or [])
    for label, (mine, ref), style in (("", (runs, reference), "-"), (" + baseline", with_baseline, "--")):
        if not ref and not any(mine):
            continue
        for ax, key in ((ax_return, "episode_returns"), (ax_loss, "losses")):
            band(ax, series(ref, key), "reference" + label, REFERENCE, 3.0 if not label else 2.0, style, smooth=10)
            band(ax, series(mine, key), "your code" + label, YOURS if not label else "tab:cyan", 1.5, style, smooth=10)
    ax_return.axhline(check.threshold, color="tab:red", linestyle="--", linewidth=0.8,
                      label=f"threshold {check.threshold:g} (last {check.window}, no baseline)")
    ax_return.set(xlabel="Episode", ylabel="Episode return", title="return per episode (moving average of 10)")
    ax_loss.set(xlabel="Episode", ylabel="Episode loss", title="loss per episode (moving average of 10)")
    for ax in (ax_return, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return fig


def animation_gif(probs: list, path, frames: int = 150, fps: int = 40) -> None:
    """The lecture's animation of the action distribution over time, as a GIF (matplotlib's Pillow writer; the
    lecture's ``imagemagick`` writer is not installed). ``probs`` holds one [L, C, R] triple per time step."""
    probs = np.asarray(probs, dtype=float)[:frames]
    fig = Figure(figsize=(4, 3), dpi=80)
    ax = fig.subplots()
    bars = ax.bar(range(3), probs[0], color="tab:blue")
    ax.set(ylim=(0, 1.05), xticks=range(3), xticklabels=ACTIONS, xlabel="Action", ylabel="Probability")
    title = ax.set_title("")

    def draw(i):
        for bar, p in zip(bars, probs[i]):
            bar.set_height(p)
        title.set_text(f"Action Distribution at Time {i}")
        return [*bars, title]

    FigureCanvasAgg(fig)
    FuncAnimation(fig, draw, frames=len(probs), blit=False).save(str(path), writer=PillowWriter(fps=fps))
