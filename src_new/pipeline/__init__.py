"""The pipeline: configuration (YAML -> schema-checked dict), the shared training loop, the
sampling modes and the evaluation of a samples folder. Imports datasets, evaluation and utils;
models import it (each model's trainer subclasses ``training.Trainer``)."""
