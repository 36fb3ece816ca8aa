"""Training one run. Importing this package imports TensorFlow lazily, on first use."""

from nnlab.train._runner import Prepared, RunResult, best_epoch, execute, kept_epoch, prepare, run_spec

__all__ = ["Prepared", "RunResult", "best_epoch", "execute", "kept_epoch", "prepare", "run_spec"]
