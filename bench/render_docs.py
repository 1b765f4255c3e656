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


def unmeasured(name, script):
    """The placeholder for a section whose results file ``name`` does not exist yet (it is written
    by ``python bench/<script> --out bench/results/<name>``), else None."""
    if (ROOT / "bench" / "results" / name).is_file():
        return None
    return f"(not measured yet: run python bench/{script} --out bench/results/{name})\n"


def pct(x):
    return f"{100 * x:.0f}%"


def machine_line(prov):
    m = prov["machine"]
    amx = {True: ", AMX", False: ", no AMX"}.get(m.get("amx"), "")     # recorded since round sixteen
    return (f"{m['cpu']}{amx}, {m['torch_threads']} threads, torch {m['torch']}, commit {prov['commit'][:7]}"
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


def command_of(prov):
    """The command line a provenance block records, as a user types it (``python``, whatever the
    interpreter's name was)."""
    return "python " + prov["command"].split(" ", 1)[1]


def seeds_command(name, prov):
    """The ``bench/seeds.py`` command line of entry ``name``, from its provenance."""
    parts = ["python bench/seeds.py --name", name, f"--budget {prov['budget_seconds']:g}"]
    if prov["config_file"] != "configs/wgan_gp_toy.yaml":
        parts.append(f"--config {prov['config_file']}")
    if sorted(prov["seeds"]) != [0, 1, 2]:
        parts.append("--seeds " + " ".join(map(str, prov["seeds"])))
    return " ".join(parts + [f"--set {item}" for item in prov["overrides"]])


def seed_list(entry):
    """'0, 1, 2': the training seeds of a seeds.json entry, in order."""
    return ", ".join(str(seed) for seed in sorted(row["seed"] for row in entry["per_seed"]))


def seeds_table(base_name, new_name, command=None):
    """Mean ± sd of two designs' seeds (bench/results/seeds.json) with the verdict per figure
    (none for a one-seed screening row); ``command``: what produced the new entry (default: its
    ``bench/seeds.py`` command, from its provenance)."""
    from seeds import HEADLINE, verdict
    entries = load("seeds.json")
    missing = [n for n in (base_name, new_name) if n not in entries]
    if missing:
        return f"(not measured yet: {', '.join(missing)} missing from bench/results/seeds.json)\n"
    base, new = entries[base_name], entries[new_name]
    prov = new["provenance"]
    command = command or seeds_command(new_name, prov)
    screening = len(new["per_seed"]) == 1
    fmt = lambda s: f"{s['mean']:.3f}" if s["n"] == 1 else f"{s['mean']:.3f} ± {s['sd']:.3f}"
    steps = lambda e: e["summary"]["generator_steps"]
    lines = [f"`{command}` -> `bench/results/seeds.json` entries `{base_name}` / `{new_name}` ({machine_line(prov)}); "
             f"{prov['budget_seconds']:.0f} s of training per seed, mean ± sd over training seeds "
             f"{seed_list(new)}, sampling seed {prov['sampling_seed']}:", "",
             f"| | {base_name} | {new_name} | verdict |", "|---|---|---|---|",
             f"| generator steps in the budget | {steps(base)['mean']:.0f} ± {steps(base)['sd']:.0f} | "
             f"{steps(new)['mean']:.0f} ± {steps(new)['sd']:.0f} | |"]
    for key, better in HEADLINE.items():
        if key in base["summary"] and key in new["summary"]:
            b, n = base["summary"][key], new["summary"][key]
            said = "screening: one seed" if screening else verdict(b, n, better)
            lines.append(f"| {key} | {fmt(b)} | {fmt(n)} | {said} |")
    return "\n".join(lines) + "\n"


# The issues' targets that bench/seeds.py measures: (figure, label, issue, "min" / "max", bound).
SEEDS_TARGETS = [
    ("cond_fd", "conditional FD", "27", "max", 1.6),
    ("cond_precision", "precision", "27", "min", 0.9),
    ("cond_recall", "recall", "27", "min", 0.5),
    ("cond_coverage", "coverage", "27", "min", 0.85),
    ("cond_condition_mae", "condition MAE (px)", "27", "max", 0.85),
    ("cond_condition_mae", "condition MAE (px)", "31", "max", 0.5),
    ("cond_same_pieces_fraction", "same piece count, all components", "31", "min", 0.995),
    ("inversion_iou", "inversion IoU of G(E(x))", "27", "min", 0.85),
]


def seeds_targets(name, pieces_file=None):
    """One seeds.json entry's mean ± sd against the issues' targets (``SEEDS_TARGETS``; the
    default unconditional mode against 1.5x the conditional FD): met when the mean is.
    ``pieces_file``: a bench/pieces.py results file with the entry's checkpoints, for issue 31's
    piece bound per component (its lowest component's mean)."""
    entries = load("seeds.json")
    if name not in entries:
        return f"(not measured yet: {name} missing from bench/results/seeds.json)\n"
    entry = entries[name]
    summary, prov = entry["summary"], entry["provenance"]
    fmt = lambda s: f"{s['mean']:.3f} ± {s['sd']:.3f}"
    def met(value, how, bound):
        value = round(value, 6)        # a mean of a few shares can land a float step off the bound it equals
        return "met" if (value <= bound if how == "max" else value >= bound) else "missed"
    rows = [[label, f"#{issue}", ("<= " if how == "max" else ">= ") + f"{bound:g}", fmt(summary[key]),
             met(summary[key]["mean"], how, bound)] for key, label, issue, how, bound in SEEDS_TARGETS]
    ratio = summary["uncond_marginal_fd"]["mean"] / summary["cond_fd"]["mean"]
    rows.append(["default unconditional mode (`marginal`) FD / conditional FD", "#31", "<= 1.5",
                 f"{ratio:.2f} (means)", met(ratio, "max", 1.5)])
    if pieces_file:
        at, (_, _, issue, how, bound) = next((i, t) for i, t in enumerate(SEEDS_TARGETS)
                                             if t[0] == "cond_same_pieces_fraction")
        component, lowest = min(component_pieces(load(pieces_file)["summary"][name]).items(),
                                key=lambda kv: kv[1]["mean"])
        rows.insert(at + 1, [f"same piece count, each component (the lowest: `{component}`, `{pieces_file}`)",
                             f"#{issue}", f">= {bound:g}", fmt(lowest), met(lowest["mean"], how, bound)])
    steps = summary["generator_steps"]
    return join(f"`{seeds_command(name, prov)}` -> `bench/results/seeds.json` entry `{name}` ({machine_line(prov)}); "
                f"{prov['budget_seconds']:.0f} s of training per seed ({steps['mean']:.0f} ± {steps['sd']:.0f} "
                f"generator steps), mean ± sd over training seeds "
                f"{seed_list(entry)}, sampling seed {prov['sampling_seed']}; "
                "a target counts as met when the mean meets it:", "",
                table(["figure", "issue", "target", "measured", ""], rows))


def compare_reach():
    """The WGAN-GP column of the headline before the reach term (compare_models_before_reach.json,
    the headline file as committed at 072e4a7) and now (compare_models.json), with verdicts."""
    from seeds import verdict
    before, now = load("compare_models_before_reach.json"), load("compare_models.json")
    fmt = lambda s, key: (f"{1000 * s['mean']:.1f} ± {1000 * s['sd']:.1f}" if key == "seconds_per_image"
                          else f"{s['mean']:.3f} ± {s['sd']:.3f}")
    steps = lambda r: r["summary"]["training"]["wgan_gp"]["steps"]
    rows = [["training steps in the budget", f"{steps(before)['mean']:.0f} ± {steps(before)['sd']:.0f}",
             f"{steps(now)['mean']:.0f} ± {steps(now)['sd']:.0f}", ""]]
    for label, w, _, key, better in COMPARE_ROWS:
        a, b = before["summary"]["runs"].get(w, {}).get(key), now["summary"]["runs"].get(w, {}).get(key)
        if a and b:
            rows.append([label, fmt(a, key), fmt(b, key), verdict(a, b, better)])
    return join(f"The WGAN-GP column of `bench/results/compare_models_before_reach.json` (the headline file as "
                f"committed before the reach term, {machine_line(before['provenance'])}) and of "
                f"`bench/results/compare_models.json` ({machine_line(now['provenance'])}); the same command, "
                "three training seeds each, measured in two sessions:", "",
                table(["WGAN-GP", "reach term off", "reach term on (shipped)", "verdict"], rows))


def guidance(name="guidance.json"):
    """Guidance scale x space (and truncation, flow temperature) vs unguided (bench/results/<name>,
    bench/guidance.py); one seed is a screening: its figures without sd or verdicts."""
    r = load(name)
    prov, summary = r["provenance"], r["summary"]
    screening = len(prov["training_seeds"]) == 1
    verdicts = {} if screening else r["verdicts_vs_unguided"]
    fmt = lambda s: f"{s['mean']:.3f}" if screening else f"{s['mean']:.3f} ± {s['sd']:.3f}"
    figures = list(next(iter(summary.values())))
    lines = [f"`{command_of(prov)}` -> `bench/results/{name}` "
             f"({machine_line(prov)}); the checkpoints of design `{prov['design']}` (training seeds "
             f"{', '.join(map(str, prov['training_seeds']))}), one sample per test condition, sampling seed "
             f"{prov['sampling_seed']}; "
             + ("one seed: a screening, no verdicts:" if screening else "mean ± sd over the seeds, verdict vs unguided per figure:"),
             "",
             "| space @ scale | " + " | ".join(figures) + " |", "|---" * (len(figures) + 1) + "|"]
    for setting, row in summary.items():
        said = verdicts.get(setting, {})
        cells = [fmt(row[k]) + ("" if k not in said or said[k] == "within noise" else f" ({said[k]})")
                 for k in figures]
        lines.append(f"| {'unguided, z ~ N(0, I)' if setting == 'none@0' else setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def flow_vs_normal(name):
    """Flow-prior vs N(0, I) samples of the same checkpoints (seeds.json entry ``name``, trained
    with ``training.flow_every``): the conditional figures side by side, and the flow's AUROCs."""
    from seeds import verdict
    entries = load("seeds.json")
    if name not in entries:
        return f"(not measured yet: {name} missing from bench/results/seeds.json)\n"
    entry = entries[name]
    summary, prov = entry["summary"], entry["provenance"]
    screening = len(entry["per_seed"]) == 1
    fmt = lambda s: f"{s['mean']:.3f}" if screening else f"{s['mean']:.3f} ± {s['sd']:.3f}"
    rows = []
    for key, better in (("fd", "lower"), ("precision", "higher"), ("recall", "higher"), ("coverage", "higher"),
                        ("condition_mae", "lower"), ("same_pieces_fraction", "higher")):
        normal, flow = summary[f"cond_{key}"], summary[f"flow_cond_{key}"]
        rows.append([key, fmt(normal), fmt(flow), "screening: one seed" if screening else verdict(normal, flow, better)])
    auroc = lambda k: fmt(summary[f"flow_auroc_{k}"])
    fitted = {r.get("flow_phase_epochs") for r in entry["per_seed"]}
    if fitted == {None}:
        how = "the flow trained along (`training.flow_every`)"
    else:
        epochs = " / ".join(str(e) for e in sorted(fitted, key=str))
        how = (f"the flow fitted afterwards, {epochs} epochs of `training.phase=flow` on each checkpoint, "
               f"then `python bench/seeds.py --rescore {name}`")
    return join(f"`{seeds_command(name, prov)}` -> `bench/results/seeds.json` entry `{name}` ({machine_line(prov)}); "
                f"{prov['budget_seconds']:.0f} s of training per seed, {how}; mean ± sd over training seeds "
                f"{seed_list(entry)}; the same checkpoints sampled with z from "
                f"N(0, I) and from the flow (sampling seed {prov['sampling_seed']}), one sample per "
                "test condition:", "",
                table(["conditional", "prior normal", "prior flow", "flow vs normal"], rows), "",
                f"AUROC of the flow likelihood log p(E(x) | c) of the test designs against the same designs with "
                f"shuffled conditions: {auroc('shuffled_conditions')}; against the designs with one component "
                f"shifted 3 px: {auroc('corrupted')}.")


# A scored run's figures: (label, key in a bench/trajectory.py row, key in a seeds.json summary).
RUN_FIGURES = [("FD", "geometric_fd", "cond_fd"), ("precision", "precision", "cond_precision"),
               ("recall", "recall", "cond_recall"), ("coverage", "coverage", "cond_coverage"),
               ("condition MAE (px)", "condition_mae", "cond_condition_mae"),
               ("same piece count", "same_pieces_fraction", "cond_same_pieces_fraction")]


def trajectory(name="trajectory.json"):
    """Models over several multiples of one budget, one seed (a bench/trajectory.py results file)."""
    if placeholder := unmeasured(name, "trajectory.py"):
        return placeholder
    r = load(name)
    prov = r["provenance"]
    rows = [[model, f"{row['multiple']}x", f"{row['train_seconds']:.0f}", row["steps"]]
            + [f"{row[key]:.3f}" if key in row else "" for _, key, _ in RUN_FIGURES]
            + [f"{1000 * row['seconds_per_image']:.1f}" if row.get("seconds_per_image") else ""]
            for model, run in r["models"].items() for row in run["rows"]]
    return join(f"`{command_of(prov)}` -> `bench/results/{name}` ({machine_line(prov)}): each model's "
                f"toy config trained for {prov['budget_seconds']:g} s of wall clock, scored, resumed for another "
                f"{prov['budget_seconds']:g} s, and so on (training seed {prov['training_seed']}, one run per model: "
                f"a screening, not a 3-seed figure); scored at every multiple with `sample.py`'s defaults, one "
                f"sample per test condition ({prov['n']}), sampling seed {prov['sampling_seed']}:", "",
                table(["model", "budget", "training (s)", "steps", *(f for f, _, _ in RUN_FIGURES), "ms / image"], rows))


def models_at_budget(ddpm_name, seeds_names):
    """The DDPM's one run of a bench/trajectory.py file (its first multiple) beside WGAN-GP
    seeds.json entries trained for the same budget, in one table (the same evaluator: one sample
    per test condition, sampling seed 0)."""
    entries = load("seeds.json")
    missing = [n for n in seeds_names if n not in entries]
    if not (ROOT / "bench" / "results" / ddpm_name).is_file() or missing:
        return f"(not measured yet: bench/results/{ddpm_name} and seeds.json entries {', '.join(seeds_names)})\n"
    r = load(ddpm_name)
    prov, ddpm = r["provenance"], r["models"]["ddpm"]["rows"][0]
    rows = [["DDPM (`configs/ddpm_toy.yaml`)", prov["training_seed"], f"{ddpm['train_seconds']:.0f}", ddpm["steps"]]
            + [f"{ddpm[key]:.3f}" for _, key, _ in RUN_FIGURES]]
    for name in seeds_names:
        summary = entries[name]["summary"]
        steps = summary["generator_steps"]
        rows.append([f"WGAN-GP `{name}`", seed_list(entries[name]),
                     f"{entries[name]['provenance']['budget_seconds']:.0f}", f"{steps['mean']:.0f} ± {steps['sd']:.0f}"]
                    + [f"{summary[key]['mean']:.3f} ± {summary[key]['sd']:.3f}" for _, _, key in RUN_FIGURES])
    return join(f"`{command_of(prov)}` -> `bench/results/{ddpm_name}` ({machine_line(prov)}), beside "
                f"`bench/results/seeds.json` entries {', '.join(f'`{n}`' for n in seeds_names)} (mean ± sd over "
                "their seeds); every model trained through `train.py` for the wall clock shown and scored with one "
                "sample per test condition, sampling seed 0 (the DDPM with its defaults: DDIM, its guidance):", "",
                table(["model", "training seeds", "training (s)", "steps", *(f for f, _, _ in RUN_FIGURES)], rows))


# Issue 27's ablation: (change, the seeds.json entry without it, the entry with it, shipped?), each
# pair measured in one round (docs/results.md names it) at that round's budget.
REACH_ABLATION = [
    ("reach term, weight 1 (`lambda_rec: 1`, batch KL 0.1)", "base_400s", "reach1_400s", False),
    ("reach term, weight 5", "base_400s", "reach5_400s", False),
    ("reach term, weight 20", "base_400s", "reach20_400s", True),
    ("reach term, weight 50", "base_400s", "reach50_400s", False),
    ("DiffAugment, p 0.5 (`augment_p`)", "base_400s", "augment05_400s", False),
    ("binarized critic input (`critic_input: binary`)", "base_400s", "binary_400s", False),
    ("flow prior trained along (`training.flow_every: 1`)", "reach20_400s", "reach20_flow_400s", False),
    ("condition head (`lambda_cond: 1`)", "reach20_400s", "reach20_cond1_400s", False),
    ("critic on reconstructions (`lambda_rec_adv: 1`)", "reach20_400s", "reach20_recadv1_400s", False),
    ("condition in every norm (`cond_modulation`)", "shipped_400s", "condmod_400s", False),
    ("topology term (`lambda_euler: 1`, issue 31)", "shipped2_400s", "euler1_400s", True),
    ("condition planes into the critic (`cond_planes: critic`)", "shipped3_400s", "planes_critic_400s", True),
    ("size term (`lambda_size: 0.3`)", "base9_400s", "size03_400s", True),
    ("topology term at 2, both gaps (`euler_gap: both`)", "base11_900s", "eulerboth2_900s", True),
    ("flatten encoder (`encoder_pool: flatten`)", "base12_900s", "encflat_900s", False),
    ("flatten encoder + code critic (`lambda_code: 1`)", "base12_900s", "encflat_code1_900s", False),
    ("flatten encoder + warm start (`reach_warmup_epochs: 20`)", "base12_900s", "encflat_warm20_900s", False),
    ("twice the latent (`latent_dim_per_component: 8`)", "base12_900s", "lat8_900s", False),
    ("flatten encoder, variational (`latent_kl: sample`, KL 0.02)", "base12_900s", "encflat_vae002_900s", True),
    ("variational + warm start (`reach_warmup_epochs: 20`; a host without AMX, fp32)", "vae_noamx_900s",
     "vae_warm20_noamx_900s", False),
]
ABLATION_FIGURES = [("FD", "cond_fd"), ("precision", "cond_precision"), ("recall", "cond_recall"),
                    ("coverage", "cond_coverage"), ("condition MAE (px)", "cond_condition_mae"),
                    ("inversion IoU", "inversion_iou"), ("s / generator step", "seconds_per_step")]


def reach_ablation(rows=REACH_ABLATION, baseline="base_400s", chosen="encflat_vae002_900s"):
    """Issue 27's ablation table: one row per change, each figure without -> with it (means over the
    entries' seeds, ``+`` / ``-`` where the verdict is a gain / loss beyond the seed spread), then the
    baseline's and the chosen design's mean ± sd."""
    from seeds import HEADLINE, verdict
    entries = load("seeds.json")
    if missing := sorted({n for _, off, on, _ in rows for n in (off, on) if n not in entries}
                         | {n for n in (baseline, chosen) if n not in entries}):
        return f"(not measured yet: {', '.join(missing)} missing from bench/results/seeds.json)\n"
    seeds = lambda name: len(entries[name]["per_seed"])
    lines = []
    for change, off, on, shipped in rows:
        a, b = entries[off]["summary"], entries[on]["summary"]
        mark = lambda key: ("" if seeds(on) == 1 else
                            {"gain": " +", "loss": " -"}.get(verdict(a[key], b[key], HEADLINE[key]), ""))
        lines.append([change, f"`{off}` -> `{on}` ({seeds(on)} seed{'s' if seeds(on) > 1 else ''}, "
                              f"{entries[on]['provenance']['budget_seconds']:.0f} s)",
                      *[f"{a[key]['mean']:.3f} -> {b[key]['mean']:.3f}{mark(key)}" for _, key in ABLATION_FIGURES],
                      "yes" if shipped else "no"])
    ends = [[f"{label}: `{name}` ({seeds(name)} seeds, {entries[name]['provenance']['budget_seconds']:.0f} s)",
             *[f"{entries[name]['summary'][key]['mean']:.3f} ± {entries[name]['summary'][key]['sd']:.3f}"
               for _, key in ABLATION_FIGURES]]
            for label, name in (("baseline, before issue 27", baseline), ("chosen design (shipped)", chosen))]
    return join("`bench/results/seeds.json` (`python bench/seeds.py --name NAME --budget B --set ...`; each entry's "
                "command, machine and commit are in its provenance and in docs/results.md's round that measured it): "
                "each change against the design it was measured beside, in the same round and at the same budget, "
                "training seeds 0, 1, 2 (one seed: a screening, no verdict), sampling seed 0; a cell is the mean "
                "without -> with the change, `+` / `-` a gain / loss by more than the two standard errors added:", "",
                table(["change", "without -> with", *(f for f, _ in ABLATION_FIGURES), "shipped"], lines), "",
                "The baseline and the chosen design, mean ± sd over training seeds 0, 1, 2 (different budgets: "
                "the rows above say which changes made the difference and at what budget):", "",
                table(["design", *(f for f, _ in ABLATION_FIGURES)], ends))


def ddpm_seeds_vs(ddpm_files, wgan_name):
    """The DDPM's runs (one bench/trajectory.py file per training seed, its first multiple) and a
    WGAN-GP seeds.json entry trained for the same budget: mean ± sd of each, with the verdict
    (the same evaluator: one sample per test condition, sampling seed 0)."""
    from seeds import HEADLINE, summarize, verdict
    entries = load("seeds.json")
    missing = [f for f in ddpm_files if not (ROOT / "bench" / "results" / f).is_file()]
    if missing or wgan_name not in entries:
        return f"(not measured yet: {', '.join(missing + ([] if wgan_name in entries else [wgan_name]))})\n"
    runs = [load(f) for f in ddpm_files]
    ddpm = summarize([{"steps": r["models"]["ddpm"]["rows"][0]["steps"],
                       **{key: r["models"]["ddpm"]["rows"][0][figure] for _, figure, key in RUN_FIGURES}}
                      for r in runs])
    wgan = entries[wgan_name]["summary"]
    fmt = lambda s: f"{s['mean']:.3f} ± {s['sd']:.3f}"
    rows = [["training steps in the budget", f"{ddpm['steps']['mean']:.0f} ± {ddpm['steps']['sd']:.0f}",
             f"{wgan['generator_steps']['mean']:.0f} ± {wgan['generator_steps']['sd']:.0f}", ""]]
    for label, _, key in RUN_FIGURES:
        verdict_ = {"gain": "WGAN-GP better", "loss": "DDPM better"}.get(
            verdict(ddpm[key], wgan[key], HEADLINE[key]), "within noise")
        rows.append([label, fmt(ddpm[key]), fmt(wgan[key]), verdict_])
    seeds = ", ".join(str(r["provenance"]["training_seed"]) for r in runs)
    budgets = {r["provenance"]["budget_seconds"] for r in runs} | {entries[wgan_name]["provenance"]["budget_seconds"]}
    if len(budgets) != 1:
        raise ValueError(f"ddpm_seeds_vs: {ddpm_files} and {wgan_name} were trained for different budgets {budgets}")
    made = "; ".join(f"seed {r['provenance']['training_seed']}: {machine_line(r['provenance'])}" for r in runs)
    others = ", ".join(str(r["provenance"]["training_seed"]) for r in runs[1:])
    return join(f"`{command_of(runs[0]['provenance'])}` and the same with `--seed` {others} -> "
                f"{', '.join(f'`bench/results/{f}`' for f in ddpm_files)} (the DDPM, training seeds {seeds}; "
                f"{made}), beside `bench/results/seeds.json` entry `{wgan_name}` "
                f"(`{seeds_command(wgan_name, entries[wgan_name]['provenance'])}`, "
                f"{machine_line(entries[wgan_name]['provenance'])}); {budgets.pop():.0f} s of training per model "
                "and seed through `train.py`, one sample per test condition, sampling seed 0, each model's sampling "
                "defaults (the DDPM: DDIM, its guidance). Mean ± sd over the training seeds; a verdict needs the "
                "means apart by more than their standard errors added:", "",
                table(["", "DDPM (`configs/ddpm_toy.yaml`)", f"WGAN-GP (`{wgan_name}`, shipped)", "verdict"], rows))


def condition_error():
    """Where the condition error comes from (bench/results/condition_error.json)."""
    if not (ROOT / "bench" / "results" / "condition_error.json").is_file():
        return "(not measured yet: run bench/condition_error.py)\n"
    r = load("condition_error.json")
    prov = r["provenance"]
    rows = []
    for folder, f in r["folders"].items():
        for col, raw in f["raw"].items():
            rows.append([f"`{folder}`", col, f"{raw['mean']:.3f}", f"{raw['mean_signed']:+.3f}", pct(raw["share_exact"]),
                         f"{raw['median']:.2f}", f"{raw['p90']:.2f}", f"{raw['p99']:.2f}",
                         pct(raw["share_above_2px"]), f"{f['cleaned'][col]['mean']:.3f}"])
    return join(f"`{command_of(prov)}` -> `bench/results/condition_error.json` ({machine_line(prov)}): the absolute "
                "error per condition column in px, through the conventions fitted on the train split "
                "(evaluate.py's), on the raw samples and after `clean` (the mirror side read from the data):", "",
                table(["samples", "column", "mean (the MAE)", "signed mean", "on target", "median", "p90", "p99",
                       "> 2 px", "mean after clean"],
                      rows))


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
    lines = [f"`{prov.get('command_of_measurement') or prov['command']}` -> `bench/results/compare_models.json` "
             f"({machine_line(prov)}): each model "
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


# ---- The tables of docs/results.md: make quality and its companion files, and the earlier designs'
# files written before provenance (LEGACY in tests/test_results_files.py). Each names the command that wrote its file.

def source(name, command=None):
    """Where a section's figures come from: the command (default: the one its provenance records),
    the committed file and its provenance (a file written before results carried provenance says so)."""
    data = load(name)
    prov = data.get("provenance") if isinstance(data, dict) else None
    legacy = "written before results carried provenance: commit, machine and date not recorded"
    return f"`{command or command_of(prov)}` -> `bench/results/{name}` ({machine_line(prov) if prov else legacy})"


def table(header, rows):
    """A Markdown table's lines: the header cells, then one list of cells per row."""
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def join(*parts):
    """A section's text from its lines (lists of lines are spliced in)."""
    lines = [line for part in parts for line in (part if isinstance(part, list) else [part])]
    return "\n".join(lines) + "\n"


def slash(values, digits=3):
    return " / ".join(f"{v:.{digits}f}" for v in values)


def spread(values, digits=2, unit=""):
    """'a-b unit': the range of a few figures."""
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}{unit}"


def kept_sets():
    """The preserved sets of make quality's inpainting, in the order of bench/inpaint_curve.py."""
    return [tuple(row["preserved"]) for row in load("inpaint_references.json")["rows"]]


def inpainting_runs(results):
    """A quality file's inpainting folders in the order of ``kept_sets``."""
    runs = {tuple(r["options"]["components"]): r for k, r in results.items() if k.startswith("inpainting_")}
    return [runs[keep] for keep in kept_sets()]


def inpainting_setting(options):
    return f"{options['inpaint_loss']}, {options['restarts']} x {options['inpaint_steps']}"


# The targets the documents hold figures against. Issue 14's for the quality run: metric key ->
# ("<=" or ">=", bound, as the table writes it), and unconditional FD at most this many times the
# conditional one; issue 16's for inpainting; the flow prior's AUROC.
QUALITY_TARGETS = {"geometric_fd": ("<=", 1.6, "<= 1.6 (half the 2-px shift)"), "precision": (">=", 0.8, ">= 0.8"),
                   "recall": (">=", 0.5, ">= 0.5"), "coverage": (">=", 0.85, ">= 0.85"),
                   "condition_mae": ("<=", 1.0, "<= 1.0"), "within_condition_diversity_ratio": (">=", 0.5, ">= 0.5")}
UNCOND_FD_RATIO_TARGET = 1.5
INPAINT_GAIN_TARGET, INPAINT_SECONDS_TARGET = 0.10, 0.5    # baseline + 0.10 IoU, <= 0.5 s per image
FLOW_AUROC_TARGET = 0.9
MAKE_QUALITY = "make quality"


def meets(key, value):
    sense, bound, _ = QUALITY_TARGETS[key]
    return value <= bound if sense == "<=" else value >= bound


def marked(key, value, digits):
    """A figure, in bold where it meets its issue-14 target."""
    s = f"{value:.{digits}f}"
    return f"**{s}**" if key in QUALITY_TARGETS and meets(key, value) else s


def quality_run():
    """make quality's file (bench/results/quality.json): (its sample folders by name, its training run)."""
    q = load("quality.json")
    return q["runs"], next(iter(q["training"].values()))


def quality_headline():
    """make quality in a few lines: one training seed of the shipped design and its companion files."""
    q, run = quality_run()
    refs = load("inpaint_references.json")["rows"]
    c, m = q["conditional_g0"]["metrics"], q["conditional_g0"]["references"]
    inpaint = inpainting_runs(q)
    inversions = load("inversion.json")["rows"]
    inversion = inversions[-1]
    gan_steps = next(r["global_step"] for r in inversions if r["phase"] == "gan")    # the GAN phase's checkpoint
    per_image = [r["seconds_per_image"] for r in inpaint]
    lines = [
        f"{source('quality.json', MAKE_QUALITY)}; one training seed ({run['precision']}, {gan_steps} generator "
        f"steps in {run['train_seconds']:.0f} s, then the encoder-only phase):", "",
        f"- conditional (guidance 0): geometric FD {c['geometric_fd']:.2f} (2-px shift reference "
        f"{m['shift_2px']['geometric_fd']:.2f}), precision {c['precision']:.2f}, recall {c['recall']:.2f}, coverage "
        f"{c['coverage']:.2f}, condition MAE {c['condition_mae']:.2f} px, same piece count as real "
        f"{c['same_pieces_fraction']:.2f}, within-condition diversity {c['within_condition_diversity_ratio']:.2f}x that of "
        "real designs of nearly equal size;",
        f"- unconditional: `marginal` FD {q['unconditional_marginal']['metrics']['geometric_fd']:.2f}, `null` FD "
        f"{q['unconditional_null']['metrics']['geometric_fd']:.2f};",
        f"- inpainting ({inpainting_setting(inpaint[0]['options'])} steps): IoU on the generated components "
        f"{slash(r['metrics']['iou_generated'] for r in inpaint)} for the three preserved sets vs "
        f"{slash(r['references']['nearest_train']['iou_generated'] for r in inpaint)} for the nearest training sample, "
        f"{spread(per_image)} s per image; exact posterior samples of the synthetic generator would score "
        f"{slash((r['posterior']['sample_iou'] for r in refs), 2)} (`bench/results/inpaint_references.json`);",
        f"- inversion: G(E(x)) reconstructs a full test image at IoU {inversion['full']:.3f} "
        "(`bench/results/inversion.json`);",
        f"- samples at {1000 * q['conditional_g0']['seconds_per_image']:.1f} ms per image (CPU, batch "
        f"{q['conditional_g0']['options']['batch_sz']}).",
    ]
    return join(lines)


def quality():
    """make quality's table (bench/results/quality.json) beside the references, then the
    unconditional / conditional FD ratios."""
    q, _ = quality_run()
    runs = [("cond. g=0", q["conditional_g0"]), ("cond. g=2", q["conditional_g2"]),
            ("uncond. `null`", q["unconditional_null"]), ("uncond. `marginal`", q["unconditional_marginal"])]
    refs = q["conditional_g0"]["references"]
    references = [("real-train", refs["real_train"]), ("2-px shift", refs["shift_2px"]),
                  ("shuffled parts", refs["shuffled_components"])]

    def metric(key, digits):
        return ([marked(key, r["metrics"][key], digits) for _, r in runs]
                + [f"{ref[key]:.{digits}f}" for _, ref in references])

    def condition(run):
        m = run["metrics"]
        detail = (f"{m['condition_mae_width']:.2f} / {m['condition_mae_height']:.2f}" if run["mode"] == "conditional"
                  else "none asked")
        return f"{marked('condition_mae', m['condition_mae'], 2)} ({detail})"

    def diversity(run):
        m = run["metrics"]
        if "within_condition_diversity" not in m:
            return ""
        return (f"{m['within_condition_diversity']:.4f} / {m['within_condition_diversity_real']:.4f} "
                f"({marked('within_condition_diversity_ratio', m['within_condition_diversity_ratio'], 2)})")

    target = lambda key: QUALITY_TARGETS[key][2] if key in QUALITY_TARGETS else ""
    rows = [
        ["geometric FD", target("geometric_fd")] + metric("geometric_fd", 2),
        ["precision", target("precision")] + metric("precision", 2),
        ["recall", target("recall")] + metric("recall", 2),
        ["coverage", target("coverage")] + metric("coverage", 2),
        ["condition MAE px (width / height)", target("condition_mae")] + [condition(r) for _, r in runs]
        + ["", "", f"shuffled conditions {refs['real_test_shuffled_conditions']['condition_mae']:.2f}"],
        ["within-condition diversity / real pairs (ratio)", target("within_condition_diversity_ratio")]
        + [diversity(r) for _, r in runs] + ["", "", ""],
        ["binarization", ""] + metric("binarization", 3),
        ["same piece count as real", ""] + metric("same_pieces_fraction", 2),
        ["sampling time / image", ""] + [f"{1000 * r['seconds_per_image']:.1f} ms" for _, r in runs] + ["", "", ""],
    ]
    cond = q["conditional_g0"]["metrics"]["geometric_fd"]
    ratio = {mode: q[f"unconditional_{mode}"]["metrics"]["geometric_fd"] / cond for mode in ("marginal", "null")}
    said = lambda x: "met" if x <= UNCOND_FD_RATIO_TARGET else "missed"
    return join(f"{source('quality.json', MAKE_QUALITY)}; n = {q['conditional_g0']['metrics']['n']} per column, bold where the issue-14 target is met:", "",
                table(["metric (geometric features)", "issue-14 target"] + [name for name, _ in runs + references], rows),
                "", f"Unconditional FD / conditional FD (target <= {UNCOND_FD_RATIO_TARGET}x): `marginal` {ratio['marginal']:.2f}x "
                f"({said(ratio['marginal'])}), `null` {ratio['null']:.2f}x ({said(ratio['null'])}).")


def quality_trajectory():
    """The previous design's quality run at its checkpoints (bench/results/quality_trajectory.json)."""
    rows = load("quality_trajectory.json")
    best = min(rows, key=lambda r: r["cond_fd"])
    return join(source("quality_trajectory.json", "python bench/ablation.py --checkpoint "
                       "outputs/wgan_gp/quality/checkpoint_E.pt --name quality_epoch_E --time_steps 0 --out "
                       "bench/results/quality_trajectory.json") + ":", "",
                table(["generator steps", "FD", "precision", "recall", "coverage", "cond. MAE px",
                       "uncond. FD null / marginal", "within-cond. spread ratio"],
                      [[r["generator_steps"], f"{r['cond_fd']:.2f}", f"{r['cond_precision']:.2f}", f"{r['cond_recall']:.3f}",
                        f"{r['cond_coverage']:.2f}", f"{r['cond_condition_mae']:.2f}",
                        f"{r['uncond_null_fd']:.1f} / {r['uncond_marginal_fd']:.2f}", f"{r['within_condition_ratio']:.2f}"]
                       for r in rows]),
                "", f"FD's best, {best['cond_fd']:.2f}, was at {best['generator_steps']} steps; between checkpoints it "
                f"moved by up to {max(abs(a['cond_fd'] - b['cond_fd']) for a, b in zip(rows, rows[1:])):.2f}.")


def quality_inpainting():
    """make quality's inpainting per preserved set, beside the nearest-train-sample baseline
    (bench/results/quality.json), against issue 16's targets."""
    runs = inpainting_runs(quality_run()[0])
    o = runs[0]["options"]
    rows = []
    for run in runs:
        m, b = run["metrics"], run["references"]["nearest_train"]
        generated = [k[4:] for k in m if k.startswith("iou_") and k != "iou_generated"]
        rows.append([", ".join(run["options"]["components"]), ", ".join(generated),
                     f"{m['iou_generated']:.3f} / {m['dice_generated']:.3f}",
                     f"{b['iou_generated']:.3f} / {b['dice_generated']:.3f}",
                     f"{m['same_pieces_generated']:.2f} / {b['same_pieces_generated']:.2f}",
                     f"{m['condition_mae']:.2f} / {b['condition_mae']:.2f}",
                     f"{m['overlap_kept_generated']:.3f} / {b['overlap_kept_generated']:.3f}",
                     f"{1000 * run['seconds_per_image']:.0f} ms"])
    gains = [r["metrics"]["iou_generated"] - r["references"]["nearest_train"]["iou_generated"] for r in runs]
    seconds = [r["seconds_per_image"] for r in runs]
    reached = sum(g >= INPAINT_GAIN_TARGET for g in gains)
    return join(f"{source('quality.json', MAKE_QUALITY)}: {runs[0]['metrics']['n']} test samples per set, "
                f"{o['inpaint_loss']}, {o['restarts']} batched restarts x {o['inpaint_steps']} Adam steps (lr "
                f"{o['inpaint_lr']}, {o['inpaint_lr_schedule']}); known components copied back exactly (max abs change "
                f"{max(r['metrics']['preserved_max_abs_diff'] for r in runs):g}); the overlap is the "
                "share of generated pixels on kept components (ground truth 0):", "",
                table(["preserved", "generated", "IoU / Dice", "nearest train IoU / Dice",
                       "same pieces as truth (model / baseline)", "condition MAE px (model / baseline)",
                       "overlap with kept (model / baseline)", "time / image"], rows),
                "", f"Issue 16's targets: IoU of the baseline + {INPAINT_GAIN_TARGET:.2f} reached on {reached} of "
                f"{len(runs)} sets (gains {' / '.join(f'{g:+.3f}' for g in gains)}); at most {INPAINT_SECONDS_TARGET} s "
                f"per image {'met' if max(seconds) <= INPAINT_SECONDS_TARGET else 'missed'} "
                f"({spread([1000 * s for s in seconds], 1, ' ms')}).")


def inversion():
    """IoU of G(E(x)) against x (bench/results/inversion.json)."""
    label = lambda r: ("+ the encoder-only phase against the final EMA generator" if r["phase"] == "encoder"
                       else "trained alongside the GAN (every `training.encoder_every` steps)")
    rows = load("inversion.json")["rows"]
    sets = kept_sets()
    return join(source("inversion.json") + f": {rows[0]['n']} test images, the encoder's latent alone, no optimization; full input = mean over all "
                "components, partial input = mean over the hidden components:", "",
                table(["encoder", "steps", "full input"] + [f"keep {', '.join(s)}" for s in sets],
                      [[label(r), r["global_step"], f"{r['full']:.3f}"]
                       + [f"{r['keep_' + '+'.join(s)]:.3f}" for s in sets] for r in rows]))


def flow_prior():
    """The flow prior on the previous design's quality run (bench/results/quality_no_mbstd.json)."""
    prev = load("quality_no_mbstd.json")
    like = prev["likelihood"]
    flow, normal = like["scores"]["flow"], like["scores"]["normal"]
    sampled, base = prev["conditional_g0_flow"]["metrics"], prev["conditional_g0"]["metrics"]
    said = lambda ok: "met" if ok else "missed"
    command = "python src_new/scripts/evaluate.py --likelihood <ckpt> --out samples/wgan_gp/quality/likelihood.json"
    return join(f"{source('quality_no_mbstd.json', command)}, "
                f"{like['n']} test designs: test-latent NLL {flow['nll_per_dim']:.2f} nats/dim under the flow vs "
                f"{normal['nll_per_dim']:.2f} under N(0, I) (target: below N(0, I), "
                f"{said(flow['nll_per_dim'] < normal['nll_per_dim'])}); AUROC real vs shuffled conditions "
                f"{flow['auroc_shuffled_conditions']:.2f} (N(0, I): {normal['auroc_shuffled_conditions']:.2f}), real vs "
                f"corrupted (one component shifted {like['shift_px']} px) {flow['auroc_corrupted']:.2f} (N(0, I): "
                f"{normal['auroc_corrupted']:.2f}) (target {FLOW_AUROC_TARGET} for both: "
                f"{said(min(flow['auroc_shuffled_conditions'], flow['auroc_corrupted']) >= FLOW_AUROC_TARGET)}). Sampling "
                f"with `--prior flow` vs `normal`: FD {sampled['geometric_fd']:.2f} vs {base['geometric_fd']:.2f}, "
                f"condition MAE {sampled['condition_mae']:.2f} vs {base['condition_mae']:.2f}, recall "
                f"{sampled['recall']:.2f} vs {base['recall']:.2f}.")


def inpaint_curve(name="inpaint_curve.json"):
    """Inpainting IoU and time per setting on one checkpoint (a bench/inpaint_curve.py results file)."""
    if placeholder := unmeasured(name, "inpaint_curve.py"):
        return placeholder
    r = load(name)
    sets = kept_sets()
    settings = list(dict.fromkeys((x["loss"], x["restarts"], x["steps"]) for x in r["rows"]))
    cell = {(tuple(x["preserved"]), (x["loss"], x["restarts"], x["steps"])): x for x in r["rows"]}
    best = {s: max(cell[s, k]["iou_generated"] for k in settings) for s in sets}
    was = lambda o: (o["inpaint_loss"], o["restarts"], o["inpaint_steps"])
    notes = {was(inpainting_runs(quality_run()[0])[0]["options"]): " (the toy config's, make quality's)"}
    rows = []
    for k in settings:
        loss, restarts, steps = k
        label = "encoder only (no optimization)" if steps == 0 else f"{loss}, {restarts} x {steps}{notes.get(k, '')}"
        iou = [cell[s, k]["iou_generated"] for s in sets]
        rows.append([label] + [f"**{v:.3f}**" if v == best[s] else f"{v:.3f}" for v, s in zip(iou, sets)]
                    + [f"{1000 * sum(cell[s, k]['seconds_per_image'] for s in sets) / len(sets):.0f} ms"])
    rows.append(["nearest train sample"] + [f"{cell[s, settings[0]]['nearest_train_iou']:.3f}" for s in sets] + [""])
    return join(source(name) + f" (training seed {r['provenance']['training_seed']}, generator step "
                f"{r['provenance']['global_step']}): the first {r['n']} test samples per preserved set, IoU on the generated components (bold: the "
                f"best setting per set), lr {r['rows'][0]['lr']} with the cosine schedule; time per image is the mean over "
                "the sets:", "",
                table(["setting (loss, restarts x steps)"] + [f"keep {', '.join(s)}" for s in sets] + ["time / image"],
                      rows))


INPAINT_SETTINGS = {"mse:2:100": "mse, 2 x 100", "bce:0:0": "encoder only"}


def setting_of(row):
    """A bench/inpaint_curve.py row's setting as its command line names it: loss:restarts:steps[:bf16]."""
    bf16 = ":bf16" if row.get("precision", "fp32") == "bf16" else ""
    return f"{row['loss']}:{row['restarts']}:{row['steps']}{bf16}"


def inpaint_seeds(designs, settings=INPAINT_SETTINGS):
    """Inpainting's margin over the nearest training sample on several training seeds per design
    (bench/inpaint_curve.py files, each written with every one of ``settings``): {design: [file,
    ...]}, {setting: label} -> mean ± sd per preserved set and setting."""
    from seeds import summarize
    if missing := [f for files in designs.values() for f in files if not (ROOT / "bench" / "results" / f).is_file()]:
        return f"(not measured yet: {', '.join(missing)} missing from bench/results/)\n"
    sets = kept_sets()
    rows = []
    for design, files in designs.items():
        cells = [{(tuple(x["preserved"]), setting_of(x)): x for x in load(f)["rows"]} for f in files]
        for setting, label in settings.items():
            margins = [summarize([{"m": c[s, setting]["iou_generated"] - c[s, setting]["nearest_train_iou"]}
                                  for c in cells])["m"] for s in sets]
            met = sum(m["mean"] >= 0.10 for m in margins)
            ms = 1000 * sum(c[s, setting]["seconds_per_image"] for c in cells for s in sets) / (len(cells) * len(sets))
            rows.append([f"`{design}` ({len(files)} seed{'s' if len(files) > 1 else ''})", label,
                         *[f"{m['mean']:+.3f} ± {m['sd']:.3f}" for m in margins], f"{met} of {len(sets)}",
                         f"{ms:.0f} ms"])
    first = load(next(iter(designs.values()))[0])
    return join(f"`python bench/inpaint_curve.py --checkpoint outputs/wgan_gp/seeds/<design>_s<seed>/checkpoint_latest.pt "
                f"--settings {','.join(settings)} --out bench/results/inpaint_<design>_s<seed>.json` -> "
                + ", ".join(f"`{f}`" for files in designs.values() for f in files)
                + f" ({machine_line(first['provenance'])}); the first {first['n']} test samples per preserved set; "
                "IoU of the generated components minus the nearest training sample's, mean ± sd over the training "
                "seeds; time per image averaged over the seeds and sets; issue 27's margin is +0.10 on every set:", "",
                table(["design", "setting", *[f"keep {', '.join(s)}" for s in sets], "sets >= +0.10", "time / image"],
                      rows))


def autoencoder(name="autoencoder.json"):
    """The encoder and generator trained by the reach term alone, per design (a bench/autoencoder.py file)."""
    if placeholder := unmeasured(name, "autoencoder.py"):
        return placeholder
    r = load(name)
    names = [k[len("iou_"):] for k in r["rows"][0]["trace"][-1] if k.startswith("iou_")]
    evals = max(len(row["trace"]) - 1 for row in r["rows"])
    rows = [[f"{row['design']} (`{' '.join(row['overrides'])}`)" if row["overrides"] else row["design"],
             *[f"{x['iou']:.3f} ({x['seconds']:.0f} s, {x['step']} steps)" for x in row["trace"][:-1]],
             *[""] * (evals + 1 - len(row["trace"])),
             f"**{row['trace'][-1]['iou']:.3f}** ({row['trace'][-1]['step']} steps)",
             " / ".join(f"{row['trace'][-1]['iou_' + n]:.3f}" for n in names)] for row in r["rows"]]
    return join(source(name) + f": `{r['config']}`, training seed {r['seed']}, {r['budget']:.0f} s of training per "
                "design (evaluations not counted); IoU of G(E(x, c), c) against all test images, every "
                "evaluation, then at the end, and per component at the end:", "",
                table(["design"] + [f"evaluation {i + 1}" for i in range(evals)]
                      + [f"at {r['budget']:.0f} s", " / ".join(names)], rows))


SCREENING_COLUMNS = [("steps", "generator_steps", ".0f"), ("FD", "cond_fd", ".3f"),
                     ("precision", "cond_precision", ".3f"), ("recall", "cond_recall", ".3f"),
                     ("coverage", "cond_coverage", ".3f"), ("cond. MAE px", "cond_condition_mae", ".3f"),
                     ("same pieces", "cond_same_pieces_fraction", ".3f"), ("null FD", "uncond_null_fd", ".3f"),
                     ("inversion IoU", "inversion_iou", ".3f"), ("s / step", "seconds_per_step", ".3f")]


def screening(names, seed=0):
    """One-seed screening rows against their references (bench/results/seeds.json): every entry's
    figures at training seed ``seed``, and, for an entry with more seeds, its mean ± sd beneath
    (the spread that a one-seed difference must exceed to mean anything)."""
    entries = load("seeds.json")
    if missing := [n for n in names if n not in entries]:
        return f"(not measured yet: {', '.join(missing)} missing from bench/results/seeds.json)\n"
    rows = []
    for name in names:
        entry = entries[name]
        at_seed = next(row for row in entry["per_seed"] if row["seed"] == seed)
        overrides = " ".join(f"`{o}`" for o in entry["provenance"]["overrides"]) or "none"
        rows.append([f"`{name}` seed {seed}", overrides, *[format(at_seed[k], f) for _, k, f in SCREENING_COLUMNS]])
        if len(entry["per_seed"]) > 1:
            s = entry["summary"]
            rows.append([f"`{name}` seeds {seed_list(entry)}", "",
                         *[f"{s[k]['mean']:{f}} ± {s[k]['sd']:{f}}" for _, k, f in SCREENING_COLUMNS]])
    prov = entries[names[-1]]["provenance"]
    return join(f"`python bench/seeds.py --name NAME --budget {prov['budget_seconds']:g} --seeds {seed} --set ...` "
                f"-> `bench/results/seeds.json` entries {', '.join(f'`{n}`' for n in names)} (the last: "
                f"{machine_line(prov)}); {prov['budget_seconds']:.0f} s of training per seed, sampling seed "
                f"{prov['sampling_seed']}:", "",
                table(["design", "--set", *[label for label, _, _ in SCREENING_COLUMNS]], rows))


def latents(name="latents.json"):
    """The covariance spectrum of the encoder's latents of the train split and the reach term's
    batch KL, per checkpoint (a bench/latents.py file)."""
    if placeholder := unmeasured(name, "latents.py"):
        return placeholder
    r = load(name)
    eig = lambda row: row["eigenvalues"]
    rows = [[f"`{row['design']}` seed {row['training_seed']}", f"{eig(row)[0]:.3f}",
             f"{eig(row)[len(eig(row)) // 2]:.3f}", f"{eig(row)[-1]:.3f}",
             f"{sum(v < 0.1 for v in eig(row))} of {len(eig(row))}", f"{row['kl_diagonal']:.3f}",
             f"{row['kl_full']:.3f}"] for row in r["rows"]]
    return join(source(name) + f": E(x, c) of the {r['rows'][0]['n']} training designs; eigenvalues of their "
                f"covariance (N(0, I) has all of them at 1) and the reach term's KL per latent, mean over batches of "
                f"{r['rows'][0]['batch_size']} (the training batch):", "",
                table(["checkpoint", "smallest eigenvalue", "median", "largest", "below 0.1", "KL diagonal",
                       "KL full"], rows))


def step_time(name="step_time.json"):
    """Seconds per training step of several designs, timed side by side (a bench/step_time.py file)."""
    if placeholder := unmeasured(name, "step_time.py"):
        return placeholder
    r = load(name)
    base = r["rows"][0]["seconds_per_step"]
    rows = [[f"`{row['design']}`", " ".join(f"`{o}`" for o in row["overrides"]) or "none",
             f"{row['seconds_per_step']:.3f}", f"{row['spread']['min']:.3f} .. {row['spread']['max']:.3f}",
             f"{row['seconds_per_step'] / base:.2f}"] for row in r["rows"]]
    return join(source(name) + f": the trainer's whole step (n_critic critic updates, the generator update, EMA, "
                f"the encoder update, and the code critic's where it is on) on training minibatches, "
                f"{r['threads']} threads, the designs alternating over {r['repeats']} rounds after a warm-up; the "
                f"median over rounds, its range, and its ratio to the first design's:", "",
                table(["design", "--set", "s / step", "range", "ratio"], rows))


def inpaint_references():
    """Model-free inpainting references (bench/results/inpaint_references.json)."""
    r = load("inpaint_references.json")
    rows, draws = r["rows"], r["rows"][0]["posterior"]["draws"]
    target = [x["nearest"]["1"] + INPAINT_GAIN_TARGET for x in rows]
    margin = [x["posterior"]["sample_iou"] - t for x, t in zip(rows, target)]
    return join(source("inpaint_references.json", "python bench/inpaint_references.py")
                + f": the first {r['n']} test samples, {r['train_size']} training images, no model involved:", "",
                table(["reference"] + [f"keep {', '.join(x['preserved'])}" for x in rows], [
                    ["nearest train sample on the known pixels (k = 1, the baseline)"]
                    + [f"{x['nearest']['1']:.3f}" for x in rows],
                    ["pixelwise majority of the 10 nearest"] + [f"{x['nearest']['10']:.3f}" for x in rows],
                    [f"**exact posterior sample** (mean of {draws})"]
                    + [f"**{x['posterior']['sample_iou']:.3f}**" for x in rows],
                    [f"majority of the {draws} posterior samples"] + [f"{x['posterior']['majority_iou']:.3f}" for x in rows],
                    [f"issue 16's target (baseline + {INPAINT_GAIN_TARGET:.2f})"] + [f"{t:.3f}" for t in target]]),
                "", f"An exact posterior sample beats the target by {spread(margin)} per set.")


def ablation_row(name):
    return next(r for r in load("ablation.json") if r["name"] == name)


# The ablation tables: (row, its name in bench/results/ablation.json, the change it makes).
ABLATION_A = [
    ("A0", "A0_plan", "the plan's design (one real batch for all critic steps, the critic always sees the true "
                      "condition, concat critic, z enters once)"),
    ("A1", "A1_fresh", "+ a fresh real minibatch per critic step (Algorithm 1)"),
    ("A2", "A2_jointnull", "+ joint null condition (the critic uses the learned null token for dropped samples)"),
    ("A3", "A3_modulation", "+ mapping network, style modulates every norm (style_dim 128)"),
    ("A4", "A4_projection", "+ projection critic head (instead of concat)"),
    ("A5", "A5_msgan", "+ mode seeking, lambda_ms 0.2"),
    ("A6", "A6_mbstd", "+ minibatch std (group 4); stopped early (machine time), not comparable"),
    ("B1", "B1_nomod_projection", "A2 + projection critic, no modulation (**the chosen design**)"),
]
ABLATION_C = [
    ("C0", "C0", "none (n_critic 5, batch 32, lr 2e-4 / 2e-4)"), ("C1", "C1", "n_critic 2"), ("C2", "C2", "n_critic 1"),
    ("C3", "C3", "n_critic 1, TTUR (lr 1e-4 generator / 4e-4 critic)"), ("C4", "C4", "batch 64"),
    ("C5", "C5", "lr 4e-4 / 4e-4"), ("C6", "C6", "n_critic 10"),
    ("C7", "C7", "lazy penalty, every 2nd critic update (weight 2)"),
    ("C8", "C8", "lazy penalty, every 5th critic update (weight 5)"),
]
ABLATION_D = [
    ("D0", "D0", "none (B1's design: projection critic, joint null, no modulation)"),
    ("D1", "D1", "+ style modulation (style_dim 128)"), ("D2", "D2", "+ mode seeking, lambda_ms 0.05"),
    ("D3", "D3", "+ minibatch std in the critic, groups of 4 (**now the toy config**)"),
    ("D3s1", "D3s1", "D3 again, training.seed 1 (seed-to-seed noise)"),
    ("D4", "D4", "D3 + mode seeking, lambda_ms 0.01"), ("D5", "D5", "D3 + critic width 32 (critic_dim 16 -> 32)"),
    ("D6", "D6", "D3 + batch 16 (n_critic 5 fresh minibatches of 16 per step)"),
    ("D7", "D7", "D3 + condition dropout 0.2 (0.1)"),
]
ABLATION_COLUMNS = [
    ("FD", lambda r: f"{r['cond_fd']:.2f}"), ("precision", lambda r: f"{r['cond_precision']:.2f}"),
    ("recall", lambda r: f"{r['cond_recall']:.3f}"), ("coverage", lambda r: f"{r['cond_coverage']:.2f}"),
    ("cond. MAE px", lambda r: f"{r['cond_condition_mae']:.2f}"),
    ("uncond. FD null / marginal", lambda r: f"{r['uncond_null_fd']:.1f} / {r['uncond_marginal_fd']:.2f}"),
    ("within-cond. spread ratio", lambda r: f"{r['within_condition_ratio']:.2f}"),
    ("z-sensitivity", lambda r: f"{r['z_sensitivity_l1']:.3f}"),
]


def ablation_table(spec, command, steps_header, extra=None):
    """One ablation table of bench/results/ablation.json: a row per (row, name, change) of ``spec``,
    the common columns, and ``extra`` = (header, cell) if the table has one more."""
    columns = ABLATION_COLUMNS + ([extra] if extra else [])
    rows = []
    for row, name, change in spec:
        r = ablation_row(name)
        rows.append([row, change, r["generator_steps"]] + [cell(r) for _, cell in columns])
    return join(source("ablation.json", command) + ":", "",
                table(["row", "change", steps_header] + [h for h, _ in columns], rows))


def wall_seconds_per_step(r):
    return f"{r['train_seconds'] / r['generator_steps']:.2f}"


def recall_diagnosis():
    """What holds recall down (bench/results/recall_diagnosis.json)."""
    r = load("recall_diagnosis.json")
    base = r["rows"][0]
    ratio, shift, std = base["residual_spread_ratio"], base["mean_shift"], base["std_ratio"]
    ordered = sorted(ratio, key=ratio.get)
    median = sorted(ratio.values())[len(ratio) // 2]
    far = {k: v for k, v in shift.items() if abs(v) > 0.25}
    missed, covered = base["mean_abs_z_missed_vs_covered"]
    return join(source("recall_diagnosis.json")
                + f"; n = {r['n']}, k = {r['k']}. Per geometric feature, the spread "
                "of the samples "
                "left after a least-squares fit on the condition, over the same for the test images "
                f"(`metrics.residual_spread_ratio`): median {median:.2f}, below 0.9 for "
                f"{sum(v < 0.9 for v in ratio.values())} of the {len(ratio)} features, lowest for "
                f"{', '.join(f'{k} {ratio[k]:.2f}' for k in ordered[:5])}. The marginals are close: every feature's mean "
                "within 0.25 standard deviations of the test images' "
                + (f"except {', '.join(f'{k} ({v:+.2f})' for k, v in far.items())}" if far else "")
                + f", total spread {spread(std.values())}x that of the test images (lowest: {min(std, key=std.get)}); the "
                f"real images no sample comes near are not unusual ones (mean |z| of their standardized features "
                f"{missed:.2f} vs {covered:.2f} for the covered ones). Spreading the latent, z ~ N(0, tau^2 I):", "",
                table(["tau", "FD", "precision", "recall", "coverage", "condition MAE px"],
                      [[f"{x['temperature']:.1f}", f"{x['fd']:.2f}", f"{x['precision']:.2f}", f"{x['recall']:.3f}",
                        f"{x['coverage']:.2f}", f"{x['condition_mae']:.2f}"] for x in r["rows"]]))


def component_pieces(design):
    """{component: figure}: a bench/pieces.py design's raw piece-count share per component."""
    prefix = "raw_same_pieces_"
    return {k[len(prefix):]: v for k, v in design.items() if k.startswith(prefix) and k != prefix + "fraction"}


def pieces(name="pieces.json"):
    """Raw piece counts per component and FD raw vs cleaned, per design (bench/results/<name>,
    bench/pieces.py)."""
    if placeholder := unmeasured(name, "pieces.py"):
        return placeholder
    r = load(name)
    designs = r["summary"]
    first = next(iter(designs.values()))
    names = list(component_pieces(first))
    fmt = lambda s, d=3: f"{s['mean']:.{d}f}" if s["n"] == 1 else f"{s['mean']:.{d}f} ± {s['sd']:.{d}f}"
    rows = [[f"`{d}` ({v['raw_fd']['n']} seed{'s' if v['raw_fd']['n'] > 1 else ''})", fmt(v["raw_same_pieces_fraction"]),
             *[fmt(v[f"raw_same_pieces_{n}"]) for n in names], fmt(v["raw_fd"]), fmt(v["clean_fd"]),
             fmt(v["fd_raw_over_clean"], 2), fmt(v["raw_condition_mae"]), fmt(v["clean_same_pieces_fraction"])]
            for d, v in designs.items()]
    return join(source(name) + f"; one sample per test condition (n = {r['rows'][0]['n']}), sampling "
                "seed 0; share of raw samples with the real piece count, every component and each one, "
                "FD raw and after `--postprocess clean` (mirror side read from the data: "
                f"{', '.join(sorted({row['mirror'] for row in r['rows']}))}):", "",
                table(["design", "same pieces, all", *names, "FD raw", "FD cleaned", "raw / cleaned",
                       "condition MAE px (raw)", "same pieces, all (cleaned)"], rows))


def frames():
    """The picture path's run (bench/results/frames.json, written by `make frames`)."""
    if not (ROOT / "bench" / "results" / "frames.json").is_file():
        return "(not measured yet: run `make frames`)\n"
    r = load("frames.json")
    (run, train), = r["training"].items()
    sample = r["runs"]["unconditional"]
    m, refs = sample["metrics"], sample["references"]
    columns = [("generated", m), ("real train frames", refs["real_train"]), ("2-px shift", refs["shift_2px"]),
               ("mean picture", refs["mean_image"])]
    rows = [("pixel FD (pooled 16 x 16)", "pixel_fd", ".1f"), ("pixel KID", "pixel_kid", ".3f"),
            ("precision", "pixel_precision", ".2f"), ("recall", "pixel_recall", ".2f"),
            ("coverage", "pixel_coverage", ".2f")]
    lines = [f"`make frames` -> `bench/results/frames.json` ({machine_line(r['provenance'])}): "
             f"{train['train_seconds']:.0f} s of training, {train['steps']} generator steps "
             f"({train['precision']}), then {m['n']} samples scored against {sample['num_real']} held-out test "
             f"frames, each reference at the same n; {1000 * sample['seconds_per_image']:.1f} ms per sample.", "",
             "| | " + " | ".join(name for name, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for label, key, spec in rows:
        lines.append(f"| {label} | " + " | ".join(format(c[key], spec) for _, c in columns) + " |")
    test = refs["real_test"]
    lines += ["", f"Memorisation: the median distance to the nearest training frame is "
                  f"{m['nearest_train_median']:.3f} for the samples and {test['nearest_train_median']:.3f} for "
                  f"held-out test frames (ratio {m['nearest_train_ratio']:.2f}; copies would read 0); "
                  f"{pct(m['near_copy_fraction'])} of the samples are closer to a training frame than the nearest "
                  f"5% of test frames are.", "", "![real training frames beside generated ones](docs/frames_grid.png)"]
    return "\n".join(lines) + "\n"


RENDERERS = {
    "frames": frames,
    "compare_models": compare_models,
    "compare_reach": compare_reach,
    "config_reference": config_reference,
    "guidance": guidance,
    "guidance_reach20": lambda: guidance("guidance_reach20.json"),
    "flow_temperature": lambda: guidance("flow_temperature.json"),
    "seeds_reach_adv": lambda: seeds_table("reach20_400s", "reach20_recadv1_400s"),
    "reach_adversarial_encoder": lambda: guidance("reach_adversarial_encoder.json"),
    "condition_error": condition_error,
    "trajectory": trajectory,
    "seeds_flow": lambda: seeds_table("reach20_400s", "reach20_flow_400s"),
    "flow_vs_normal": lambda: flow_vs_normal("reach20_flow_400s"),
    "flow_vs_normal_fitted": lambda: flow_vs_normal("reach20_400s"),
    "kill_soak": kill_soak,
    "bench_cpu": bench_cpu,
    "precision": precision,
    "seeds_precision": lambda: seeds_table("toy_fp32_400s", "toy_bf16_400s", "BUDGET=400 bash scripts/seeds_precision.sh"),
    "seeds_cond_head": lambda: seeds_table("toy_fp32_400s", "toy_fp32_cond1_400s"),
    "seeds_patch": lambda: seeds_table("toy_bf16_400s", "toy_bf16_patch1_400s"),
    "seeds_reach": lambda: seeds_table("toy_fp32_400s", "toy_fp32_rec1_400s"),
    "seeds_binary": lambda: seeds_table("base_400s", "binary_400s"),
    "seeds_augment": lambda: seeds_table("base_400s", "augment05_400s"),
    "seeds_reach1": lambda: seeds_table("base_400s", "reach1_400s"),
    "seeds_reach5": lambda: seeds_table("base_400s", "reach5_400s"),
    "seeds_reach20": lambda: seeds_table("base_400s", "reach20_400s"),
    "seeds_reach50": lambda: seeds_table("base_400s", "reach50_400s"),
    "seeds_reach50_vs_20": lambda: seeds_table("reach20_400s", "reach50_400s"),
    "seeds_condmod": lambda: seeds_table("shipped_400s", "condmod_400s"),
    "seeds_shipped_drift": lambda: seeds_table("reach20_400s", "shipped_400s"),
    "seeds_reach_cond": lambda: seeds_table("reach20_400s", "reach20_cond1_400s"),
    "seeds_euler01": lambda: seeds_table("shipped2_400s", "euler01_400s"),
    "seeds_euler1": lambda: seeds_table("shipped2_400s", "euler1_400s"),
    "seeds_euler2": lambda: seeds_table("shipped2_400s", "euler2_400s"),
    "seeds_euler5": lambda: seeds_table("shipped2_400s", "euler5_400s"),
    "seeds_shipped_drift2": lambda: seeds_table("shipped_400s", "shipped2_400s"),
    "seeds_shipped_drift3": lambda: seeds_table("euler1_400s", "shipped3_400s"),
    "seeds_planes_generator": lambda: seeds_table("shipped3_400s", "planes_generator_400s"),
    "seeds_planes_both": lambda: seeds_table("shipped3_400s", "planes_both_400s"),
    "seeds_planes_critic": lambda: seeds_table("shipped3_400s", "planes_critic_400s"),
    "targets_planes_critic": lambda: seeds_targets("planes_critic_900s"),
    "seeds_planes_budget": lambda: seeds_table("planes_critic_400s", "planes_critic_900s"),
    "candidates": lambda: guidance("candidates.json"),
    "pieces_planes": lambda: pieces("pieces_planes.json"),
    "seeds_shipped_drift4": lambda: seeds_table("planes_critic_400s", "base9_400s"),
    "seeds_size1": lambda: seeds_table("base9_400s", "size1_400s"),
    "seeds_size03": lambda: seeds_table("base9_400s", "size03_400s"),
    "seeds_size_budget": lambda: seeds_table("planes_critic_900s", "size03_900s"),
    "targets_size": lambda: seeds_targets("size03_900s"),
    "pieces_size": lambda: pieces("pieces_size.json"),
    "guidance_size": lambda: guidance("guidance_size.json"),
    "seeds_size_euler2": lambda: seeds_table("size03_400s", "size03_euler2_400s"),
    "seeds_shipped_drift5": lambda: seeds_table("size03_900s", "base10_900s"),
    "seeds_eulerst1": lambda: seeds_table("base10_900s", "eulerst1_900s"),
    "seeds_eulerboth": lambda: seeds_table("base10_900s", "eulerboth_900s"),
    "targets_base10": lambda: seeds_targets("base10_900s"),
    "pieces_euler_gap": lambda: pieces("pieces_euler_gap.json"),
    "seeds_shipped_drift6": lambda: seeds_table("base10_900s", "base11_900s"),
    "seeds_eulerboth2": lambda: seeds_table("base11_900s", "eulerboth2_900s"),
    "pieces_euler_weight": lambda: pieces("pieces_euler_weight.json"),
    "targets_eulerboth2": lambda: seeds_targets("eulerboth2_900s", "pieces_euler_weight.json"),
    "seeds_eulerboth3": lambda: seeds_table("eulerboth2_900s", "eulerboth3_900s"),
    "inpaint_eulerboth2": lambda: inpaint_curve("inpaint_eulerboth2.json"),
    "ddpm_900s": lambda: models_at_budget("ddpm_900s.json", ["base11_900s", "eulerboth2_900s"]),
    "reach_ablation": reach_ablation,
    "targets_vae002": lambda: seeds_targets("encflat_vae002_900s", "pieces_encflat_vae002.json"),
    "screening_vae_warm": lambda: seeds_table("vae_noamx_900s", "vae_warm20_noamx_900s"),
    "inpaint_vae_warm": lambda: inpaint_seeds({"vae_noamx_900s": ["inpaint_vae_noamx_900s_s0.json"],
                                               "vae_warm20_noamx_900s": ["inpaint_vae_warm20_noamx_900s_s0.json"]}),
    "ddpm_seeds_vae002": lambda: ddpm_seeds_vs(["ddpm_900s.json", "ddpm_900s_s1.json", "ddpm_900s_s2.json"],
                                               "encflat_vae002_900s"),
    "seeds_shipped_drift7": lambda: seeds_table("eulerboth2_900s", "base12_900s"),
    "autoencoder_pool": lambda: autoencoder("autoencoder.json"),
    "seeds_encflat": lambda: seeds_table("base12_900s", "encflat_900s"),
    "pieces_encoder_pool": lambda: pieces("pieces_encoder_pool.json"),
    "targets_encflat": lambda: seeds_targets("encflat_900s", "pieces_encoder_pool.json"),
    "inpaint_encflat": lambda: inpaint_curve("inpaint_encflat.json"),
    "screening_encflat": lambda: screening(["base12_900s", "encflat_900s", "encflat_kl1_900s",
                                            "encflat_fullkl1_900s", "encflat_rec10_900s", "encflat_euler3_900s"]),
    "latents_encflat": lambda: latents("latents.json"),
    "screening_round14": lambda: screening(["base12_900s", "encflat_900s", "warm20_900s", "encflat_warm20_900s",
                                            "encflat_code1_900s", "encflat_code5_900s"]),
    "screening_drift": lambda: screening(["encflat_900s", "encflat_code1_900s", "encflat_drift_900s"], seed=1),
    "seeds_encflat_code1": lambda: seeds_table("base12_900s", "encflat_code1_900s"),
    "seeds_encflat_code1_vs_encflat": lambda: seeds_table("encflat_900s", "encflat_code1_900s"),
    "pieces_encflat_code1": lambda: pieces("pieces_encflat_code1.json"),
    "latents_code": lambda: latents("latents_code.json"),
    "inpaint_seeds_code1": lambda: inpaint_seeds({
        "base12_900s": [f"inpaint_base12_900s_s{seed}.json" for seed in (0, 1, 2)],
        "encflat_900s": ["inpaint_encflat.json", "inpaint_encflat_900s_s1.json", "inpaint_encflat_900s_s2.json"],
        "encflat_code1_900s": [f"inpaint_encflat_code1_900s_s{seed}.json" for seed in (0, 1, 2)]}),
    "step_time": step_time,
    "step_time_no_amx": lambda: step_time("step_time_no_amx.json"),
    "screening_round15": lambda: screening(["base12_900s", "encflat_900s", "encflat_code1_900s", "lat8_900s",
                                            "encflat_lat8_900s", "encflat_vae002_900s"]),
    "seeds_encflat_vae002": lambda: seeds_table("base12_900s", "encflat_vae002_900s"),
    "seeds_encflat_vae002_vs_code1": lambda: seeds_table("encflat_code1_900s", "encflat_vae002_900s"),
    "pieces_encflat_vae002": lambda: pieces("pieces_encflat_vae002.json"),
    "latents_vae": lambda: latents("latents_vae.json"),
    "inpaint_seeds_vae002": lambda: inpaint_seeds({
        "base12_900s": [f"inpaint_base12_900s_s{seed}.json" for seed in (0, 1, 2)],
        "encflat_code1_900s": [f"inpaint_encflat_code1_900s_s{seed}.json" for seed in (0, 1, 2)],
        "encflat_vae002_900s": [f"inpaint_encflat_vae002_900s_s{seed}.json" for seed in (0, 1, 2)]}),
    "screening_vae_weight": lambda: screening(["encflat_vae002_900s", "encflat_vae0005_900s"]),
    "inpaint_vae_weight": lambda: inpaint_seeds({
        "encflat_vae002_900s": ["inpaint_encflat_vae002_900s_s0.json"],
        "encflat_vae0005_900s": ["inpaint_encflat_vae0005_900s_s0.json"]}),
    "guidance_encflat": lambda: guidance("guidance_encflat.json"),
    "flow_vs_normal_encflat": lambda: flow_vs_normal("encflat_900s"),
    "seeds_encflat_euler3": lambda: seeds_table("base12_900s", "encflat_euler3_900s"),
    "seeds_encflat_euler3_vs_encflat": lambda: seeds_table("encflat_900s", "encflat_euler3_900s"),
    "pieces_encflat_euler3": lambda: pieces("pieces_encflat_euler3.json"),
    "guidance_base12": lambda: guidance("guidance_base12.json"),
    "inpaint_seeds_encflat": lambda: inpaint_seeds({
        "base12_900s": [f"inpaint_base12_900s_s{seed}.json" for seed in (0, 1, 2)],
        "encflat_900s": ["inpaint_encflat.json", "inpaint_encflat_900s_s1.json", "inpaint_encflat_900s_s2.json"]}),
    "pieces": pieces,
    "pieces_quality": lambda: pieces("pieces_quality.json"),
    "quality_headline": quality_headline,
    "quality": quality,
    "quality_trajectory": quality_trajectory,
    "quality_inpainting": quality_inpainting,
    "inversion": inversion,
    "flow_prior": flow_prior,
    "inpaint_curve": inpaint_curve,
    "inpaint_references": inpaint_references,
    "ablation_a": lambda: ablation_table(ABLATION_A, "bash scripts/ablation.sh", "steps",
                                         ("s / generator step", lambda r: f"{r['seconds_per_generator_step']:.2f}")),
    "ablation_c": lambda: ablation_table(ABLATION_C, 'BUDGET=300 ROWS="C0 C1 C2 C3 C4 C5 C6" bash scripts/ablation.sh',
                                         "steps in the budget", ("wall s / step", wall_seconds_per_step)),
    "ablation_d": lambda: ablation_table(ABLATION_D, 'BUDGET=1292 ROWS="D0 D1 D2 D3 D3s1 D4 D5 D6 D7" bash '
                                         "scripts/ablation.sh", "steps in the budget",
                                         ("wall s / step", wall_seconds_per_step)),
    "recall_diagnosis": recall_diagnosis,
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
