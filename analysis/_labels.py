"""How values, keys and metrics read in figures and tables, and the small value tests they rest on
(numpy scalars, missing values, spans of decades). No pandas or matplotlib at import."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def spans_decades(values: Iterable[Any], decades: float = 1.0) -> bool:
    """True when all values are positive numbers spanning more than ``decades`` orders of magnitude
    (values that are not finite numbers are left out)."""
    import numpy as np

    seq = values if isinstance(values, (list, tuple, np.ndarray)) else list(values)
    flags = not isinstance(seq, np.ndarray) and any(isinstance(v, (bool, np.bool_)) for v in seq)
    arr = np.asarray(seq, dtype=object if flags else None)  # flags are not numbers, even beside ints
    if arr.dtype.kind in "iuf" and arr.ndim == 1:  # plain numbers (thousands of runs): no Python loop
        nums = arr[np.isfinite(arr)].astype(float).tolist()
    else:  # None, text or flags among them: value by value
        nums = [float(v) for v in seq if is_number(v)]
    if len(nums) < 2 or any(v <= 0 or not math.isfinite(v) for v in nums):
        return False
    return math.log10(max(nums) / min(nums)) > decades


def py(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (pandas hands out np.int64, np.bool_)."""
    return value.item() if hasattr(value, "item") and type(value).__module__ == "numpy" else value


def is_number(value: Any) -> bool:
    value = py(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def is_missing(value: Any) -> bool:
    """None or NaN (a param a run did not log reads back as NaN in a mixed frame)."""
    value = py(value)
    return value is None or (isinstance(value, float) and math.isnan(value))


def short_key(key: str) -> str:
    """``model.depth`` -> ``depth``, ``train.learning_rate`` -> ``learning_rate``."""
    return key.split(".", 1)[1] if "." in key else key


# units of the axes: spec keys and metrics
KEY_LABELS = {
    "train.learning_rate": "learning rate (log scale)",
    "data.train_size": "training-set size (examples, or fraction of the split)",
    "model.depth": "depth (hidden blocks)",
    "model.width": "width (units per layer)",
    "model.dropout": "dropout rate",
    "model.l2": "L2 penalty",
    "model.l1": "L1 penalty",
    "train.weight_decay": "weight decay",
    "train.early_stopping": "early-stopping patience (epochs)",
    "train.batch_size": "batch size (examples)",
    "data.label_noise": "label noise (fraction of flipped labels)",
    "data.augment": "augmentations",
    "train.epochs": "epochs",
}


def key_label(key: str) -> str:
    return KEY_LABELS.get(key, short_key(key).replace("_", " "))


def metric_label(metric: str) -> str:
    """An axis label with the metric's unit."""
    name = metric.replace("_", " ")
    if "accuracy" in metric:
        return f"{name} (fraction correct)"
    if metric.endswith("loss"):
        return f"{name} (cross-entropy or MSE)"
    if metric.endswith("mae"):
        return f"{name} (target units)"
    if metric.endswith("mse"):
        return f"{name} (target units²)"
    return name


def value_label(value: Any) -> str:
    """How a spec value reads in legends and tables."""
    value = py(value)
    if value is None:
        return "all"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return "+".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}" if not value.is_integer() or abs(value) >= 1e6 else str(int(value))
    return str(value)


def series_label(values: dict[str, Any]) -> str:
    """``{'model.activation': 'relu', 'model.residual': True}`` -> ``activation=relu, residual=yes``."""
    if not values:
        return "all runs"
    return ", ".join(f"{short_key(k)}={value_label(v)}" for k, v in values.items())


def sort_values(values: Iterable[Any]) -> list[Any]:
    """Grid values in a stable order: numbers ascending (None, meaning 'all', last), others as text."""
    vals = list(dict.fromkeys(py(v) for v in values))

    def order(v: Any) -> tuple[int, float, str]:
        if v is None:
            return (2, 0.0, "")
        if is_number(v):
            return (0, float(v), "")
        return (1, 0.0, value_label(v))

    return sorted(vals, key=order)


def empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: [] for c in columns})
