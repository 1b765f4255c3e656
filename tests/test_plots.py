"""Training curves: drawn into the run folder at each evaluation, by plot_run.py for any run
(old ones, other models, several overlaid), cheap on long CSVs."""
import shutil

import numpy as np
import pandas as pd
from PIL import Image

from src_new.models.wgan_gp.train import HEALTHY_RANGES, WGANGPTrainer
from src_new.utils.plots import downsample, evaluation_series, panels_for, plot_runs

from conftest import make_cfg, run_script


def titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_visible()]


def test_training_writes_curves_and_the_cli_redraws_them(toy_root, tmp_path):
    cfg = make_cfg(toy_root, tmp_path / "out", training={"epochs": 2, "run_name": "a"})
    run = WGANGPTrainer(cfg, verbose=False).run()
    curves = run / "curves.png"
    assert curves.is_file() and Image.open(curves).size[0] > 500
    other = tmp_path / "out" / "b"
    shutil.copytree(run, other)
    (other / "checkpoint_latest.pt").unlink()                                   # an old run: no evaluations
    curves.unlink()
    run_script("plot_run.py", run)                                              # history from the checkpoint
    assert curves.is_file()
    run_script("plot_run.py", "--compare", run, other, "--out", tmp_path / "ab.png")
    assert (tmp_path / "ab.png").is_file()
    fig = plot_runs([run, other], ranges=HEALTHY_RANGES)
    shown = titles(fig)
    for title in ("critic_loss", "wasserstein_distance", "gradient_penalty", "generator_loss", "gradient norms",
                  "learning rates", "within_condition_spread_ratio (evaluation)"):
        assert title in shown, (title, shown)
    by_title = {ax.get_title(): ax for ax in fig.axes}
    assert len(by_title["critic_loss"].get_lines()) == 2                    # one line per run
    assert len(by_title["within_condition_spread_ratio (evaluation)"].get_lines()[0].get_xdata()) == 2   # 2 epochs
    assert by_title["gradient_penalty"].patches, "the healthy range is shaded"
    assert not by_title["wasserstein_distance"].patches                       # no range known: none


def test_any_model_columns_and_old_runs(tmp_path):
    """A DDPM-like run folder without a checkpoint: the columns present, no evaluations."""
    steps = np.arange(1, 10_001)
    pd.DataFrame({"step": steps, "epoch": (steps - 1) // 100 + 1, "loss": 1 / np.sqrt(steps),
                  "grad_norm": np.full(len(steps), 0.5), "lr": 2e-4}).to_csv(tmp_path / "losses.csv", index=False)
    fig = plot_runs([tmp_path], tmp_path / "curves.png")
    assert titles(fig) == ["loss", "gradient norms", "learning rates"]
    line = fig.axes[0].get_lines()[0]
    assert len(line.get_xdata()) == 300                                         # downsampled
    assert (tmp_path / "curves.png").is_file()


def test_downsample_keeps_means_and_skips_gaps():
    x = np.arange(10_000.0)
    y = np.where(x % 2 == 0, np.nan, x)                                         # logged every other step
    xs, ys = downsample(x, y, max_points=100)
    assert len(xs) == len(ys) == 100
    assert np.isclose(ys.mean(), np.nanmean(y), rtol=1e-3)
    assert downsample(x[:50], x[:50], max_points=100)[1].tolist() == x[:50].tolist()


def test_evaluations_are_placed_at_their_epochs_last_step():
    losses = pd.DataFrame({"step": [1, 2, 3, 4], "epoch": [1, 1, 2, 2], "critic_loss": [0.0, 0, 0, 0]})
    history = [{"epoch": 1, "critic_loss": 0.0, "sample_diversity_ratio": 0.5},
               {"epoch": 2, "critic_loss": 0.0, "sample_diversity_ratio": 0.7}]
    assert evaluation_series(history, losses) == {"sample_diversity_ratio": ([2, 4], [0.5, 0.7])}
    assert list(panels_for(["step", "lr_critic", "lr_generator"], ["fd"])) == ["learning rates", "fd (evaluation)"]


def test_only_measured_quantities_get_a_panel_and_titles_do_not_overlap(tmp_path):
    """Columns that are all missing or all zero (a feature that is off: clipping counters
    without clipping) get no panel; the run title sits above the first row's titles."""
    steps = np.arange(1, 101)
    pd.DataFrame({"step": steps, "epoch": 1, "critic_loss": np.sin(steps), "critic_clipped": 0,
                  "generator_clipped": 0, "mode_seeking_loss": np.nan, "gradient_penalty": 0.1,
                  "critic_grad_norm": 1.0}).to_csv(tmp_path / "losses.csv", index=False)
    fig = plot_runs([tmp_path], histories=[[]])
    assert titles(fig) == ["critic_loss", "gradient_penalty", "gradient norms"]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    renderer = FigureCanvasAgg(fig).get_renderer()
    suptitle = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        if ax.get_visible():
            assert not suptitle.overlaps(ax.title.get_window_extent(renderer)), ax.get_title()
