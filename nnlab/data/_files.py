"""Tabular data from a CSV file with a header row.

``path`` names the file (a relative path is taken from the current directory) and
``target`` the label column; every other column is a feature. Numeric and boolean
feature columns are used as they are, text columns are one-hot encoded. Missing values
are refused.

The task follows the target column: **classification** when it is not numeric (text,
booleans) or holds integers with at most ``MAX_INTEGER_CLASSES`` distinct values;
**regression** otherwise (floats, or integers with more distinct values). Class labels
become ids in sorted order of their values, so ``classes`` in a spec refers to those
ids. Results are cached by spec, so edit the file in a fresh process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nnlab.data._common import Raw, register
from nnlab.errors import SpecError
from nnlab.registry import did_you_mean

MAX_INTEGER_CLASSES = 20


def _is_classification(column: Any) -> bool:
    from pandas.api import types

    if types.is_bool_dtype(column) or not types.is_numeric_dtype(column):
        return True
    return bool(types.is_integer_dtype(column) and column.nunique() <= MAX_INTEGER_CLASSES)


def _read(path: str) -> Any:
    import pandas as pd

    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise SpecError(f"must name an existing CSV file, but got {path!r} (looked at {file})",
                        key="data.path")
    try:
        return pd.read_csv(file)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        reason = str(exc).replace("\n", " ")
        raise SpecError(f"must be a CSV file with a header row, but {path!r} could not be read ({reason})",
                        key="data.path") from exc


@register("csv", task=None, kind="tabular", options=("path", "target"))
def csv(rng: np.random.Generator, path: str | None = None, target: str | None = None) -> Raw:
    """A CSV file's columns as features and one column as the label or target."""
    import pandas as pd

    if path is None:
        raise SpecError("the csv dataset needs the path of a CSV file, but got none", key="data.path")
    if target is None:
        raise SpecError("the csv dataset needs the name of the label column, but got none",
                        key="data.target")
    frame = _read(path)
    columns = [str(c) for c in frame.columns]
    if target not in frame.columns:
        raise SpecError(f"must be a column of {path} ({', '.join(columns)}), but got {target!r}"
                        f"{did_you_mean(target, columns)}", key="data.target")
    if frame.shape[1] < 2:
        raise SpecError(f"must have at least one feature column besides {target!r}, but {path} has none",
                        key="data.path")
    missing = [str(c) for c in frame.columns if frame[c].isna().any()]
    if missing:
        raise SpecError(f"must have no missing values, but {path} has some in: {', '.join(missing)}",
                        key="data.path")

    labels = frame[target]
    features = pd.get_dummies(frame.drop(columns=[target]), dtype=np.float32)
    x = features.to_numpy(dtype=np.float32)
    if not _is_classification(labels):
        return Raw(x=x, y=labels.to_numpy(dtype=np.float32).reshape(-1, 1), task="regression")
    values = labels.to_numpy()
    if values.dtype == object:
        values = values.astype(str)
    names, y = np.unique(values, return_inverse=True)
    if len(names) < 2:
        raise SpecError(f"must hold at least 2 classes, but column {target!r} has only {names[0]!r}",
                        key="data.target")
    return Raw(x=x, y=y.astype(np.int64), n_classes=len(names), task="classification")
