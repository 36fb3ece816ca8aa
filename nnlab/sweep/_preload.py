"""Imported by the forkserver that CPU sweep workers are forked from: TensorFlow, Keras, MLflow, Optuna
and nnlab's worker modules, once, before any worker exists (see ``nnlab.sweep._worker.preload``)."""

from nnlab.sweep._worker import preload

preload()
