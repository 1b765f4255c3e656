"""Training curves of run folders -> one PNG (``curves.png``), for any model.

Reads ``losses.csv`` (one row per step; whatever columns the model logs) and the in-training
evaluations (the trainer's ``history``: one dict per epoch, e.g. ``within_condition_spread_ratio``),
draws one panel per measured quantity (a column that is all zero, a feature that is off, is
left out), with the gradient norms and the learning rates grouped (log
scale), and shades a model's healthy ranges (``{column: (low, high)}``, None = open). Long
runs are downsampled to ``max_points`` bin means per curve, so a
10,000-row CSV draws in well under a second. Uses matplotlib's object API (no pyplot, no
global backend switch): safe inside training and in notebooks, where the figure displays.

    from src_new.utils.plots import plot_runs
    plot_runs(["outputs/wgan_gp/demo"], "outputs/wgan_gp/demo/curves.png")
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

INDEX_COLUMNS = ("step", "epoch")
GROUPS = (("gradient norms", lambda c: "grad_norm" in c),
          ("learning rates", lambda c: c == "lr" or c.startswith("lr_")))
LOG_GROUPS = {"gradient norms", "learning rates"}
# In-training evaluations drawn together: the critic's scores of training vs held-back images.
EVAL_GROUPS = (("critic score: train vs test (evaluation)", lambda c: c.startswith("critic_score_")),)


def read_losses(run_dir):
    """``losses.csv`` of a run folder -> pandas DataFrame (numeric columns, sorted by step)."""
    import pandas as pd

    path = Path(run_dir) / "losses.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run folder written by training "
                                f"(src_new/scripts/train.py)?")
    frame = pd.read_csv(path).apply(pd.to_numeric, errors="coerce")
    if "step" not in frame.columns:
        raise ValueError(f"{path}: no 'step' column; columns: {list(frame.columns)}")
    return frame.sort_values("step", kind="stable").reset_index(drop=True)


def read_history(run_dir):
    """The in-training evaluations stored in the run's ``checkpoint_latest.pt`` (list of
    per-epoch dicts); [] when there is no checkpoint yet."""
    from .checkpoint import load_checkpoint

    path = Path(run_dir) / "checkpoint_latest.pt"
    if not path.is_file():
        return []
    return list(load_checkpoint(path).get("history", []))


def downsample(x, y, max_points=300):
    """(x, y) with NaNs dropped, reduced to at most ``max_points`` bins of equal row count
    -> (x, y) bin means (a running mean that also smooths per-step noise)."""
    keep = np.isfinite(y)
    x, y = np.asarray(x, float)[keep], np.asarray(y, float)[keep]
    if len(y) <= max_points:
        return x, y
    starts = np.linspace(0, len(y), max_points, endpoint=False).astype(int)
    counts = np.diff(np.append(starts, len(y)))
    return np.add.reduceat(x, starts) / counts, np.add.reduceat(y, starts) / counts


def evaluation_series(history, losses):
    """{name: (steps, values)} of history keys not logged per step; an epoch's step is the
    last step logged in it (``losses`` has ``epoch`` and ``step``)."""
    if not history or "epoch" not in losses.columns:
        return {}
    last_step = losses.groupby("epoch")["step"].max().to_dict()
    series = {}
    for row in history:
        step = row.get("step", last_step.get(row.get("epoch")))
        for name, value in row.items():
            if name in INDEX_COLUMNS or name in losses.columns or step is None:
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                steps, values = series.setdefault(name, ([], []))
                steps.append(step)
                values.append(value)
    return series


def panels_for(columns, evaluations=()):
    """Panel titles in drawing order -> list of column names in each panel."""
    panels = {}
    for column in columns:
        if column in INDEX_COLUMNS:
            continue
        title = next((g for g, match in GROUPS if match(column)), column)
        panels.setdefault(title, []).append(column)
    for name in evaluations:
        title = next((g for g, match in EVAL_GROUPS if match(name)), f"{name} (evaluation)")
        panels.setdefault(title, []).append(name)
    return panels


def _robust_limits(values):
    """y-limits from the 1st-99th percentiles (first-step spikes do not flatten the rest)."""
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    lo, hi = np.percentile(values, [1, 99])
    pad = 0.1 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
    return lo - pad, hi + pad


def measured_columns(frames):
    """Columns that carry a measurement in at least one run: not all missing, and not all zero
    (a feature that is off, e.g. the clipping counters without clipping, logs zeros)."""
    columns = dict.fromkeys(c for f in frames for c in f.columns)
    return [c for c in columns if any(c in f.columns and (f[c].fillna(0) != 0).any() for f in frames)]


def _draw_series(ax, title, names, runs, max_points):
    """Every run's curve of each column in ``names`` onto ``ax`` -> the values drawn."""
    several, shown = len(runs) > 1, []
    for r, (frame, ev, label) in enumerate(runs):
        for k, name in enumerate(names):
            color = f"C{r if several else k}"
            tag = ", ".join(t for t in ((label if several else ""), (name if len(names) > 1 else "")) if t) or None
            if name in ev:
                ax.plot(ev[name][0], ev[name][1], "o-", color=color, ms=3, lw=1, label=tag)
                shown.append(np.asarray(ev[name][1], float))
                continue
            if name not in frame.columns:
                continue
            x, y = downsample(frame["step"].to_numpy(), frame[name].to_numpy(), max_points)
            if len(y):
                ax.plot(x, y, color=color, lw=1, label=tag, ls=("-", "--", ":")[k % 3] if several else "-")
                shown.append(y)
    return np.concatenate(shown) if shown else np.array([])


def _scale_and_shade(ax, title, names, values, ranges):
    """Log scale for the grouped norms / rates, robust limits otherwise; healthy ranges shaded."""
    if title in LOG_GROUPS:
        if len(values) and (values > 0).all():
            ax.set_yscale("log")
    elif (limits := _robust_limits(values)) is not None:
        ax.set_ylim(*limits)
    for name in (n for n in names if n in ranges):
        low, high = ranges[name]
        y0, y1 = ax.get_ylim()
        ax.axhspan(y0 if low is None else low, y1 if high is None else high, color="tab:green",
                   alpha=0.12, lw=0, label="healthy range")
        ax.set_ylim(y0, y1)


def plot_runs(run_dirs, out_path=None, histories=None, ranges=None, labels=None, max_points=300, ncols=3):
    """Draw the curves of one or several runs (overlaid) -> matplotlib Figure, saved to
    ``out_path`` when given. One panel per measured quantity (``measured_columns``).

    run_dirs: run folders (each with ``losses.csv``). histories: per run, the list of
    per-epoch dicts (default: read from each run's checkpoint). ranges: {column: (low, high)}
    healthy ranges to shade. labels: legend names (default: the folder names)."""
    from matplotlib.figure import Figure

    run_dirs = [Path(r) for r in run_dirs]
    if not run_dirs:
        raise ValueError("plot_runs: no run folder given")
    frames = [read_losses(r) for r in run_dirs]
    histories = histories if histories is not None else [read_history(r) for r in run_dirs]
    evals = [evaluation_series(h, f) for h, f in zip(histories, frames)]
    labels = labels or [r.name if sum(o.name == r.name for o in run_dirs) == 1 else f"{r.parent.name}/{r.name}"
                        for r in run_dirs]
    panels = panels_for(measured_columns(frames), list(dict.fromkeys(n for e in evals for n in e)))
    if not panels:
        raise ValueError(f"{run_dirs[0]}/losses.csv has no quantity to plot (columns: {list(frames[0].columns)})")
    ranges, runs = ranges or {}, list(zip(frames, evals, labels))
    nrows = math.ceil(len(panels) / ncols)
    height = 2.6 * nrows + 0.4                                  # + a band for the run title
    fig = Figure(figsize=(4.2 * ncols, height), dpi=80)        # fixed margins: a layout engine costs 2x
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.5 / height, top=1 - 0.85 / height,
                        wspace=0.22, hspace=0.55)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (title, names) in zip(axes, panels.items()):
        values = _draw_series(ax, title, names, runs, max_points)
        _scale_and_shade(ax, title, names, values, ranges)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if ax.get_legend_handles_labels()[0] and (len(runs) > 1 or len(names) > 1 or any(n in ranges for n in names)):
            ax.legend(fontsize=7, loc="best")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(" vs ".join(labels) if len(runs) > 1 else str(run_dirs[0]), fontsize=10, y=1 - 0.2 / height)
    if out_path is not None:
        fig.savefig(out_path)
    return fig
