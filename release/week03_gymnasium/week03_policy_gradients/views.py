"""Figures of Week 3: the lecture's ``draw_plots`` views of the bandit runs, REINFORCE's return and loss on the chain
with and without the student's baseline, and the lecture's animation of the action distribution.

Each check names its view (``BanditTableLearns.view``); the feedback page and the public checks draw it from numbers
(the drivers' outputs, one per seed), never running any code of the student's or the reference's. matplotlib is
imported where a figure is drawn: the grader imports this module with the checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradekit.plots import REFERENCE, YOURS, band, series

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ACTIONS = ("L", "C", "R")


def bandit_views(check, runs: list, reference: list, extra: dict) -> Figure:
    """The lecture's ``draw_plots``: action probabilities over time, reward per step, total reward per run."""
    from matplotlib.figure import Figure

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
    mark_missing(ax_total, x + 0.2, runs)
    ax_total.set(xticks=x, xticklabels=[str(s) for s in check.seeds], xlabel="Seed (one run each)",
                 ylabel="Total reward", title="total reward per run")
    ax_total.legend(loc="lower left", fontsize=8)
    for ax in (ax_probs, ax_reward, ax_total):
        ax.grid(alpha=0.3)
    return fig


def mark_missing(ax, x, runs: list) -> None:
    """Write "not run" over the seeds that early stopping skipped (the verdict was already settled) and "error" over
    those whose run failed, so that an empty bar never reads as a zero."""
    low, high = ax.get_ylim()
    for i, xi in enumerate(x):
        if i >= len(runs) or runs[i] is None:
            ax.text(xi, (low + high) / 2, "not run" if i >= len(runs) else "error", rotation=90, ha="center",
                    va="center", fontsize=9, color=YOURS, bbox={"facecolor": "white", "edgecolor": YOURS,
                                                                 "boxstyle": "round,pad=0.2", "alpha": 0.9})


def chain_views(check, runs: list, reference: list, extra: dict) -> Figure:
    """REINFORCE on the chain: return and loss per episode, without a baseline and with the student's state-value
    baseline, yours and the reference's. A check's graded runs are one of the two (``check.baselined``), its
    feedback-only runs (``extra``) the other. The baseline's check adds the variance ratio of each seed."""
    from matplotlib.figure import Figure

    baselined = getattr(check, "baselined", False)
    fig = Figure(figsize=(15 if baselined else 12, 3.8), dpi=100)
    ax_return, ax_loss, *ax_ratio = fig.subplots(1, 3 if baselined else 2,
                                                 gridspec_kw={"width_ratios": [3, 3, 2] if baselined else [1, 1]})
    graded = (runs, reference)
    other = (extra.get("runs") or [], extra.get("reference") or [])
    with_baseline, without = (graded, other) if baselined else (other, graded)
    for label, (mine, ref), style in (("", without, "-"), (" + baseline", with_baseline, "--")):
        if not ref and not any(mine):
            continue
        for ax, key in ((ax_return, "episode_returns"), (ax_loss, "losses")):
            band(ax, series(ref, key), "reference" + label, REFERENCE, 3.0 if not label else 2.0, style, smooth=10)
            band(ax, series(mine, key), "your code" + label, YOURS if not label else "tab:cyan", 1.5, style, smooth=10)
    ax_return.axhline(check.threshold, color="tab:red", linestyle="--", linewidth=0.8,
                      label=f"threshold {check.threshold:g} (last {check.window}"
                            + (", with the baseline)" if baselined else ", no baseline)"))
    ax_return.set(xlabel="Episode", ylabel="Episode return", title="return per episode (moving average of 10)")
    ax_loss.set(xlabel="Episode", ylabel="Episode loss", title="loss per episode (moving average of 10)")
    for ax in (ax_return, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if baselined:
        ax = ax_ratio[0]
        ratio = lambda run: run.get("variance_ratio", np.nan) if run else np.nan  # noqa: E731
        x = np.arange(len(check.seeds))
        ax.bar(x - 0.2, ([ratio(r) for r in reference] + [np.nan] * len(x))[:len(x)], 0.4, color=REFERENCE,
               label="reference")
        ax.bar(x + 0.2, ([ratio(r) for r in runs] + [np.nan] * len(x))[:len(x)], 0.4, color=YOURS, label="your code")
        ax.axhline(check.max_ratio, color="tab:red", linestyle="--", linewidth=0.8,
                   label=f"must be ≤ {check.max_ratio:g}")
        ax.set_ylim(0, max([1.2] + [v * 1.1 for v in (ratio(r) for r in runs) if np.isfinite(v)]))
        mark_missing(ax, x + 0.2, runs)
        ax.set(xticks=x, xticklabels=[str(s) for s in check.seeds], xlabel="Seed (one run each)",
               ylabel="Var(G − b) / Var(G)", title="variance of the advantages / of the returns")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    return fig


def animation_gif(probs: list, path, frames: int = 150, fps: int = 40) -> None:
    """The lecture's animation of the action distribution over time, as a GIF (matplotlib's Pillow writer; the
    lecture's ``imagemagick`` writer is not installed). ``probs`` holds one [L, C, R] triple per time step."""
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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


def animation_file(answer: dict, path) -> str:
    """The ``animate`` export: a bandit run's action distribution over its first 150 steps, as a GIF."""
    animation_gif(answer["probs"], path)
    return f"animation: {path} ({min(150, len(answer['probs']))} frames)"
