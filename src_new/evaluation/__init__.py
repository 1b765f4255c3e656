"""Evaluation of generated multi-component masks: metrics on arrays (N, C, H, W) in [0, 1]
(metrics.py), optional Inception FID features (inception.py), the clean-up post-process
(postprocess.py) and the samples-folder evaluation with sanity references (evaluate.py).
Imports no model."""
