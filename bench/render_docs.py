"""Render the result sections of README.md and docs/results.md from the committed JSON files.

A rendered section sits between two markers in a document:

    <!-- results:NAME -->
    ...generated text, never edited by hand...
    <!-- /results:NAME -->

and ``RENDERERS[NAME]`` writes it from ``bench/results/*.json`` (the configuration reference: from
the config schema). Run after a measurement:

    python bench/render_docs.py            # rewrite the sections
    python bench/render_docs.py --check    # exit 1 when a document differs from its JSON (tests run this)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

DOCUMENTS = ("README.md", "docs/results.md")
MARKER = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def load(name):
    return json.loads((ROOT / "bench" / "results" / name).read_text())


def pct(x):
    return f"{100 * x:.0f}%"


def machine_line(prov):
    m = prov["machine"]
    return (f"{m['cpu']}, {m['torch_threads']} threads, torch {m['torch']}, commit {prov['commit'][:7]}"
            f"{' (+ uncommitted changes)' if prov.get('dirty') else ''}, {prov['date'][:10]}")


def bench_cpu():
    """The CPU benchmark table (bench/results/bench_cpu.json): a Markdown summary of the committed
    full run, with its own rounding and emphasis. ``bench_wgan.format_table`` is the other view of
    the same figures, the console report of any run (quick ones, --compile, --skip-plain), with
    every row (FLOPs, data loading, memory, top ops); the two share figures, not a layout."""
    r = load("bench_cpu.json")
    y, t, step, s, i = r["yardsticks"], r["train_iteration"], r["training_step"], r["sampling"], r["inpainting"]
    rng = lambda sp: f"[{sp['min']:.2f}-{sp['max']:.2f}]"
    stick = lambda p: (f"{y[p]['best']:.0f} GFLOP/s = max(matmul {y[p]['matmul']:.0f}, 3x3 conv {y[p]['conv']:.0f}); "
                       f"conv forward + backward {y[p]['conv_fwd_bwd']:.0f}")
    rows = [("yardstick, fp32", stick("fp32")), ("yardstick, bf16", stick("bf16"))]
    for p in ("fp32", "bf16"):
        q = step[p]
        rows.append((f"training step, {p}", f"**{q['seconds']:.2f} s** {rng(q['timing'])} = {q['images_per_s']:.1f} img/s; "
                     f"{q['gflops_executed']:.0f} GFLOP/s executed = {pct(q['utilisation_fp32_yardstick'])} of the fp32 "
                     f"yardstick, **{pct(q['utilisation_bf16_yardstick'])} of the bf16 yardstick** "
                     f"({pct(q['utilisation_bf16_conv_fwd_bwd'])} of the bf16 conv forward + backward)"))
    rows += [
        ("bf16 speed-up (side by side)", f"training step **{step['bf16_speedup']:.2f}x**, sampling "
                                         f"{s['bf16_speedup_unconditional']:.2f}x, inpainting {i['bf16_speedup']:.2f}x"),
        ("GAN iteration fp32, ours / plain", f"{t['seconds_ours']:.2f} s {rng(t['timing_ours'])} / {t['seconds_plain']:.2f} s "
                                             f"{rng(t['timing_plain'])}: {t['speedup_vs_plain']:.2f}x = "
                                             f"{t['avoided_work_factor']:.2f}x avoided work x "
                                             f"{t['gflops_executed'] / t['gflops_plain_executed']:.2f}x the rate"),
        (f"sampling, {s['num_samples']} samples", "; ".join(
            f"{p} {s[p]['images_per_s_unconditional']:.0f} img/s unconditional, {s[p]['images_per_s_guided']:.0f} guided"
            for p in ("fp32", "bf16"))),
        (f"inpainting {i['batch']} x {i['steps']} steps", f"{i['seconds_ours']:.1f} s fp32, {i['seconds_bf16']:.1f} s bf16; "
                                                          f"plain loop {i['seconds_plain']:.1f} s"),
    ]
    if "profile" in r:
        for p, prof in r["profile"].items():
            shares = ", ".join(f"{k} {pct(v)}" for k, v in prof["category_shares"].items())
            rows.append((f"where a {p} step goes", f"{shares}; gradient penalty {pct(prof['penalty_share'])} of a "
                                                    f"critic update"))
    lines = [f"`{r['provenance']['command']}` -> `bench/results/bench_cpu.json` ({machine_line(r['provenance'])}; "
             f"config {r['config']}, batch {r['batch_size']}, median of {r['repeats']} alternated rounds):", "",
             "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def precision():
    """fp32 vs bf16 sampling and inpainting of a trained toy model (bench/results/precision.json)."""
    r = load("precision.json")
    lines = [f"`{r['provenance']['command']}` -> `bench/results/precision.json` ({machine_line(r['provenance'])}):", "",
             "| | fp32 | bf16 | speed-up | binarized pixels agreeing |", "|---|---|---|---|---|"]
    for kind, q in r["sampling"].items():
        lines.append(f"| sampling, {kind} ({q['n']} images) | {q['ms_per_image_fp32']:.2f} ms/image | "
                     f"{q['ms_per_image_bf16']:.2f} ms/image | {q['bf16_speedup']:.2f}x | {100 * q['pixel_agreement']:.3f}% |")
    q = r["inpainting"]
    lines.append(f"| inpainting ({q['n']} images, keeping {', '.join(q['kept'])}) | {q['s_per_image_fp32']:.3f} s/image "
                 f"(IoU {q['iou_vs_truth']['fp32']:.3f}) | {q['s_per_image_bf16']:.3f} s/image (IoU "
                 f"{q['iou_vs_truth']['bf16']:.3f}) | {q['bf16_speedup']:.2f}x | "
                 f"{100 * q['pixel_agreement_generated']:.2f}% of generated pixels |")
    return "\n".join(lines) + "\n"


def seeds_table(base_name, new_name, command):
    """Mean ± sd of two designs' seeds (bench/results/seeds.json) with the verdict per figure
    (none for a one-seed screening row)."""
    from seeds import HEADLINE, verdict
    entries = load("seeds.json")
    missing = [n for n in (base_name, new_name) if n not in entries]
    if missing:
        return f"(not measured yet: {', '.join(missing)} missing from bench/results/seeds.json)\n"
    base, new = entries[base_name], entries[new_name]
    prov = new["provenance"]
    screening = len(new["per_seed"]) == 1
    fmt = lambda s: f"{s['mean']:.3f}" if s["n"] == 1 else f"{s['mean']:.3f} ± {s['sd']:.3f}"
    steps = lambda e: e["summary"]["generator_steps"]
    lines = [f"`{command}` -> `bench/results/seeds.json` entries `{base_name}` / `{new_name}` ({machine_line(prov)}); "
             f"{prov['budget_seconds']:.0f} s of training per seed, mean ± sd over training seeds "
             f"{', '.join(str(r['seed']) for r in new['per_seed'])}, sampling seed {prov['sampling_seed']}:", "",
             f"| | {base_name} | {new_name} | verdict |", "|---|---|---|---|",
             f"| generator steps in the budget | {steps(base)['mean']:.0f} ± {steps(base)['sd']:.0f} | "
             f"{steps(new)['mean']:.0f} ± {steps(new)['sd']:.0f} | |"]
    for key, better in HEADLINE.items():
        if key in base["summary"] and key in new["summary"]:
            b, n = base["summary"][key], new["summary"][key]
            said = "screening: one seed" if screening else verdict(b, n, better)
            lines.append(f"| {key} | {fmt(b)} | {fmt(n)} | {said} |")
    return "\n".join(lines) + "\n"


def guidance():
    """Guidance scale x space vs unguided (bench/results/guidance.json)."""
    r = load("guidance.json")
    prov, summary, verdicts = r["provenance"], r["summary"], r["verdicts_vs_unguided"]
    fmt = lambda s: f"{s['mean']:.3f} ± {s['sd']:.3f}"
    figures = list(next(iter(summary.values())))
    lines = [f"`python bench/guidance.py --design {prov['design']}` -> `bench/results/guidance.json` "
             f"({machine_line(prov)}); the checkpoints of design `{prov['design']}` (training seeds "
             f"{', '.join(map(str, prov['training_seeds']))}), one sample per test condition, sampling seed "
             f"{prov['sampling_seed']}; mean ± sd over the seeds, verdict vs unguided per figure:", "",
             "| space @ scale | " + " | ".join(figures) + " |", "|---" * (len(figures) + 1) + "|"]
    for setting, row in summary.items():
        said = verdicts.get(setting, {})
        cells = [fmt(row[k]) + ("" if k not in said or said[k] == "within noise" else f" ({said[k]})")
                 for k in figures]
        lines.append(f"| {'unguided' if setting == 'none@0' else setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def kill_soak():
    """The kill soak's summary (bench/results/kill_soak.json)."""
    r = load("kill_soak.json")
    yes = lambda flag: "yes" if flag else "**no**"
    return (f"`python bench/kill_soak.py --kills {r['kills']}` -> `bench/results/kill_soak.json` "
            f"({machine_line(r['provenance'])}): {r['kills']} SIGKILLs at random instants "
            f"({r['kills_during_checkpoint_save']} during a checkpoint save), a checkpoint every "
            f"{r['checkpoint_interval_steps']} steps, a resume after each: {r['unloadable_checkpoints']} unloadable "
            f"checkpoints, {r['failed_resumes']} failed resumes, at most {r['max_steps_back']} steps lost, "
            f"{r['final_steps']} steps with {r['duplicate_steps']} duplicated and {r['missing_steps']} missing rows in "
            f"`losses.csv` ({r['rows_logged_again']} replayed rows trimmed); TensorBoard every step once: "
            f"{yes(r['tensorboard_every_step_once'])}; losses equal to an uninterrupted run: "
            f"{yes(r['losses_equal_uninterrupted_run'])}.\n")


def config_reference():
    """The README's configuration reference, from the schema (src_new/pipeline/config.py)."""
    from src_new.pipeline.config import reference_table
    return reference_table()


# The WGAN-GP vs DDPM table: (label, WGAN-GP folder, DDPM folder, metric, better). The WGAN-GP's
# unconditional default is `marginal`; the DDPM's unconditional mode is its null condition.
COMPARE_ROWS = [
    ("conditional: geometric FD", "wgan_gp_conditional", "ddpm_conditional", "geometric_fd", "lower"),
    ("conditional: precision", "wgan_gp_conditional", "ddpm_conditional", "precision", "higher"),
    ("conditional: recall", "wgan_gp_conditional", "ddpm_conditional", "recall", "higher"),
    ("conditional: coverage", "wgan_gp_conditional", "ddpm_conditional", "coverage", "higher"),
    ("conditional: condition MAE (px)", "wgan_gp_conditional", "ddpm_conditional", "condition_mae", "lower"),
    ("conditional: same piece count as real", "wgan_gp_conditional", "ddpm_conditional", "same_pieces_fraction", "higher"),
    ("unconditional FD (WGAN-GP `marginal`)", "wgan_gp_unconditional_marginal", "ddpm_unconditional", "geometric_fd", "lower"),
    ("unconditional FD (WGAN-GP `null`)", "wgan_gp_unconditional_null", "ddpm_unconditional", "geometric_fd", "lower"),
    ("inpainting: IoU of the generated components", "wgan_gp_inpainting", "ddpm_inpainting", "iou_generated", "higher"),
    ("inpainting: same piece count as truth", "wgan_gp_inpainting", "ddpm_inpainting", "same_pieces_generated", "higher"),
    ("time per image, conditional (ms)", "wgan_gp_conditional", "ddpm_conditional", "seconds_per_image", "lower"),
    ("time per image, inpainting (ms)", "wgan_gp_inpainting", "ddpm_inpainting", "seconds_per_image", "lower"),
]


def compare_models():
    """WGAN-GP vs DDPM, mean ± sd over training seeds (bench/results/compare_models.json)."""
    from seeds import verdict
    r = load("compare_models.json")
    if "summary" not in r:
        return "(not measured yet with several seeds: run `BUDGET=600 bash scripts/compare_models.sh`)\n"
    prov, runs, train = r["provenance"], r["summary"]["runs"], r["summary"]["training"]
    seeds = sorted(set(prov["training_seeds"].values()))
    first = lambda name: next(v for k, v in r["runs"].items() if k.endswith("/" + name))
    def fmt(s, key):
        scale, digits = (1000, 1) if key == "seconds_per_image" else (1, 3)
        return f"{scale * s['mean']:.{digits}f} ± {scale * s['sd']:.{digits}f}"
    said = {"gain": "WGAN-GP better", "loss": "DDPM better", "within noise": "within noise"}
    budget = train["wgan_gp"]["train_seconds"]["mean"]
    inpaint = first("wgan_gp_inpainting")["options"]["components"]
    lines = [f"`{prov['command']}` -> `bench/results/compare_models.json` ({machine_line(prov)}): each model "
             f"trained {budget:.0f} s (wall clock, start-up included) with training seeds "
             f"{', '.join(map(str, seeds))}, then sampled with its defaults (sampling seed "
             f"{', '.join(map(str, prov['sampling_seeds']))}): one sample for each of the "
             f"{first('wgan_gp_conditional')['num_samples']} test conditions, "
             f"{first('wgan_gp_inpainting')['num_samples']} inpaintings keeping {', '.join(inpaint)}. "
             "Mean ± sd over the seeds; a verdict needs the means apart by more than their standard errors added.",
             "", "| | WGAN-GP | DDPM | verdict |", "|---|---|---|---|",
             f"| training steps in the budget | {train['wgan_gp']['steps']['mean']:.0f} ± {train['wgan_gp']['steps']['sd']:.0f} "
             f"| {train['ddpm']['steps']['mean']:.0f} ± {train['ddpm']['steps']['sd']:.0f} | |"]
    for label, w, d, key, better in COMPARE_ROWS:
        if key in runs.get(w, {}) and key in runs.get(d, {}):
            a, b = runs[w][key], runs[d][key]
            lines.append(f"| {label} | {fmt(a, key)} | {fmt(b, key)} | {said[verdict(b, a, better)]} |")
    return "\n".join(lines) + "\n"


RENDERERS = {
    "compare_models": compare_models,
    "config_reference": config_reference,
    "guidance": guidance,
    "kill_soak": kill_soak,
    "bench_cpu": bench_cpu,
    "precision": precision,
    "seeds_precision": lambda: seeds_table("toy_fp32_400s", "toy_bf16_400s", "BUDGET=400 bash scripts/seeds_precision.sh"),
    "seeds_cond_head": lambda: seeds_table("toy_fp32_400s", "toy_fp32_cond1_400s",
                                           "python bench/seeds.py --name toy_fp32_cond1_400s --budget 400 --set "
                                           "training.precision=fp32 --set model.lambda_cond=1"),
    "seeds_patch": lambda: seeds_table("toy_bf16_400s", "toy_bf16_patch1_400s",
                                       "python bench/seeds.py --name toy_bf16_patch1_400s --budget 400 --set "
                                       "model.critic_patch_weight=1"),
    "seeds_reach": lambda: seeds_table("toy_fp32_400s", "toy_fp32_rec1_400s",
                                       "python bench/seeds.py --name toy_fp32_rec1_400s --budget 400 --seeds 0 --set "
                                       "training.precision=fp32 --set model.lambda_rec=1 --set model.lambda_latent_kl=0.1"),
}


def render(text):
    """``text`` with every marked section re-rendered; an unknown section name is an error."""
    def section(match):
        name = match.group("name")
        if name not in RENDERERS:
            raise ValueError(f"unknown results section '{name}'; known: {sorted(RENDERERS)}")
        return match.group(1) + RENDERERS[name]() + match.group(4)
    return MARKER.sub(section, text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 when a document differs from its JSON")
    args = p.parse_args(argv)
    stale = []
    for doc in DOCUMENTS:
        path = ROOT / doc
        text = path.read_text()
        new = render(text)
        if new != text:
            stale.append(doc)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"out of date with bench/results: {stale}; run python bench/render_docs.py", file=sys.stderr)
        return 1
    print("rendered" if not args.check else "up to date", ", ".join(DOCUMENTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
