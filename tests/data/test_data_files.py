"""The csv dataset."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.data import load_dataset
from nnlab.errors import SpecError


def _write(tmp_path, header, rows, name="data.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *(",".join(map(str, r)) for r in rows)]) + "\n")
    return str(path)


def test_csv_classification_with_text_labels(make_cfg, small_csv):
    ds = load_dataset(make_cfg(dataset="csv", path=small_csv, target="kind"))
    assert ds.info.task == "classification" and ds.info.n_classes == 3
    assert ds.info.input_shape == (4,)  # size, weight, colour one-hot (2)
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 60


def test_csv_labels_in_sorted_order(make_cfg, tmp_path):
    rows = [(float(i), ("zebra", "ant")[i % 2]) for i in range(40)]
    path = _write(tmp_path, "x,animal", rows)
    ds = load_dataset(make_cfg(dataset="csv", path=path, target="animal", standardize=False))
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_test])[:, 0]
    y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    np.testing.assert_array_equal(y, np.where(x.astype(int) % 2 == 1, 0, 1))  # ant=0, zebra=1


@pytest.mark.parametrize(("values", "task"), [
    (lambda i: i % 3, "classification"),
    (lambda i: i % 2 == 0, "classification"),
    (lambda i: i, "regression"),  # integers with more than 20 distinct values
    (lambda i: i * 0.5, "regression"),
])
def test_csv_task_from_target_column(make_cfg, tmp_path, values, task):
    path = _write(tmp_path, "a,b,y", [(i, i % 5, values(i)) for i in range(50)])
    ds = load_dataset(make_cfg(dataset="csv", path=path, target="y"))
    assert ds.info.task == task
    if task == "regression":
        assert ds.y_train.shape[1:] == (1,) and ds.y_train.dtype == np.float32


def test_csv_relative_path(make_cfg, tmp_path, monkeypatch):
    _write(tmp_path, "a,y", [(i, i % 2) for i in range(30)], name="rel.csv")
    monkeypatch.chdir(tmp_path)
    assert load_dataset(make_cfg(dataset="csv", path="rel.csv", target="y")).info.n_classes == 2


def test_csv_missing_column(make_cfg, small_csv):
    with pytest.raises(SpecError, match="must be a column of .* but got 'knd'; did you mean 'kind'") as err:
        load_dataset(make_cfg(dataset="csv", path=small_csv, target="knd"))
    assert err.value.key == "data.target"


def test_csv_missing_file(make_cfg, tmp_path):
    with pytest.raises(SpecError, match="must name an existing CSV file") as err:
        load_dataset(make_cfg(dataset="csv", path=str(tmp_path / "nope.csv"), target="y"))
    assert err.value.key == "data.path"


@pytest.mark.parametrize(("given", "key"), [({"target": "y"}, "data.path"), ({"path": "x.csv"}, "data.target")])
def test_csv_needs_path_and_target(make_cfg, given, key):
    with pytest.raises(SpecError, match="needs") as err:
        load_dataset(make_cfg(dataset="csv", **given))
    assert err.value.key == key


def test_csv_missing_values(make_cfg, tmp_path):
    path = _write(tmp_path, "a,b,y", [(1, "", 0), *[(i, i, i % 2) for i in range(20)]])
    with pytest.raises(SpecError, match="no missing values, but .* in: b"):
        load_dataset(make_cfg(dataset="csv", path=path, target="y"))


def test_csv_single_class(make_cfg, tmp_path):
    path = _write(tmp_path, "a,y", [(i, "same") for i in range(20)])
    with pytest.raises(SpecError, match="at least 2 classes"):
        load_dataset(make_cfg(dataset="csv", path=path, target="y"))
