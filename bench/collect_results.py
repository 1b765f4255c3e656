"""Gather the metrics.json of evaluated sample folders into one results file with provenance:
the script that ran the measurement calls this, so no results file is assembled by hand.

    python bench/collect_results.py --out bench/results/quality.json --run outputs/wgan_gp/quality \
        --train_seconds 1161 samples/wgan_gp/quality/conditional_g0 samples/wgan_gp/quality/...

Writes {"provenance": {...}, "runs": {folder name: {mode, options, metrics, references, ...}},
"training": {run: {model, seed, generator steps, train seconds, precision}}}. Folders (runs) that
share a name (the same mode of several training seeds: samples/compare/s0/ddpm_conditional,
s1/ddpm_conditional, ...) are keyed "parent/name", and "summary" gives, per shared name, the mean,
standard deviation and count of every metric and of the seconds per image (training: of the steps). The provenance
records the commit, the command line of the calling script (``--command``), the machine,
the date, the training and sampling seeds and the resolved configs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seeds import summarize  # noqa: E402
from src_new.utils.checkpoint import load_checkpoint  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.provenance import provenance  # noqa: E402

KEEP = ("mode", "model", "num_samples", "num_real", "per_condition", "kid", "options", "postprocess",
        "seconds_per_image", "metrics", "references", "raw", "details", "notes")


def run_info(run_dir, train_seconds=None):
    """Training facts of a run folder: model, seed, steps, precision, resolved config."""
    ckpt = load_checkpoint(Path(run_dir) / "checkpoint_latest.pt")
    cfg = ckpt["config"]
    return {"run": str(run_dir), "model": cfg["model"]["type"], "training_seed": cfg["training"]["seed"],
            "steps": ckpt["global_step"], "epoch": ckpt["epoch"],
            "precision": cfg["training"].get("precision", "fp32"), "train_seconds": train_seconds,
            "phase": (ckpt.get("phase") or {}).get("name"), "config": cfg}


def labels(paths):
    """{label: path}: a path's name, or "parent/name" where names repeat (one design, several seeds)."""
    paths = [Path(p) for p in paths]
    names = [p.name for p in paths]
    out = {(p.name if names.count(p.name) == 1 else f"{p.parent.name}/{p.name}"): p for p in paths}
    if len(out) != len(paths):
        raise SystemExit(f"two of {[str(p) for p in paths]} share their folder and parent names: rename one")
    return out


def seed_summary(entries, figures):
    """{name: {figure: {mean, sd, n}}} over the entries ({label: entry}) that share a name."""
    groups = {}
    for label, entry in entries.items():
        if "/" in label:
            groups.setdefault(label.split("/", 1)[1], []).append(figures(entry))
    return {name: summarize(rows) for name, rows in groups.items()}


def collect(folders):
    """{label: the kept parts of the folder's metrics.json (+ the manifest's sampling seed)}."""
    runs = {}
    for label, folder in labels(folders).items():
        metrics = folder / "metrics.json"
        if not metrics.is_file():
            raise SystemExit(f"{metrics} not found: evaluate the folder first (src_new/scripts/evaluate.py --samples {folder})")
        result = json.loads(metrics.read_text())
        manifest = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").is_file() else {}
        runs[label] = {"samples": str(folder), "sampling_seed": manifest.get("seed"),
                             "checkpoint": manifest.get("checkpoint"), "precision": manifest.get("precision"),
                             **{k: result[k] for k in KEEP if k in result}}
    return runs


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="evaluated sample folders (each with metrics.json)")
    p.add_argument("--out", required=True, help="results file to write")
    p.add_argument("--run", action="append", default=[], help="training run folder(s) the samples came from")
    p.add_argument("--train_seconds", type=float, action="append", default=[],
                   help="wall-clock training seconds of each --run, in order")
    p.add_argument("--command", help="the measuring command line (default: this one)")
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.train_seconds and len(args.train_seconds) != len(args.run):
        p.error(f"{len(args.train_seconds)} --train_seconds for {len(args.run)} --run")
    seconds = args.train_seconds or [None] * len(args.run)
    training = {label: run_info(r, s) for (label, r), s in zip(labels(args.run).items(), seconds)}
    runs = collect(args.folders)
    result = {"provenance": provenance(argv, command_of_measurement=args.command,
                                       training_seeds={k: v["training_seed"] for k, v in training.items()},
                                       sampling_seeds=sorted({r["sampling_seed"] for r in runs.values()
                                                              if r["sampling_seed"] is not None})),
              "training": training, "runs": runs,
              "summary": {"runs": seed_summary(runs, lambda r: {**r["metrics"], "seconds_per_image": r.get("seconds_per_image")}),
                          "training": seed_summary(training, lambda t: {"steps": t["steps"], "train_seconds": t["train_seconds"]})}}
    write_json(result, ROOT / args.out if not Path(args.out).is_absolute() else args.out)
    print(f"wrote {args.out} ({len(runs)} folders, {len(training)} training runs)")
    return result


if __name__ == "__main__":
    main()
