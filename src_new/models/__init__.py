"""Model registry: name -> package with ``train.train(cfg, ...)`` and ``sample.main(args)``.

Packages are imported lazily so the models never import each other and ``--help`` is fast.
"""
from __future__ import annotations

import importlib

REGISTRY = {
    "wgan_gp": "src_new.models.wgan_gp",
    "ddpm": "src_new.models.ddpm",
}


def available_models():
    return sorted(REGISTRY)


def get_entry(name, kind):
    """The ``train`` or ``sample`` module of model ``name``; a clear error for unknown names."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model '{name}'; available models: {available_models()}")
    return importlib.import_module(f"{REGISTRY[name]}.{kind}")
