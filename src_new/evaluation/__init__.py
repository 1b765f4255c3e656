"""Evaluation of generated multi-component masks: metrics on arrays (N, C, H, W) in [0, 1]
(metrics.py), optional Inception FID features (inception.py), the clean-up post-process
(postprocess.py) and the flow-prior likelihood report (likelihood.py); the samples-folder
evaluation that uses them is src_new/pipeline/evaluate.py.
Imports no model."""
