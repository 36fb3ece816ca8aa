"""Training one run. Importing this package imports TensorFlow lazily, on first use."""

from nnlab.train._runner import Prepared, RunResult, execute, prepare, run_spec

__all__ = ["Prepared", "RunResult", "execute", "prepare", "run_spec"]
