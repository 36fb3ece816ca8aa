"""The command line as a user meets it: fast help, one-line errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def nnlab(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnlab.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=300)


def test_help_does_not_import_tensorflow():
    code = ("import sys\nfrom nnlab.cli import build_parser\n"
            "p = build_parser()\n"
            "for name in ['validate', 'run', 'ui']:\n"
            "    p._subparsers._group_actions[0].choices[name].format_help()\n"
            "bad = [m for m in ('tensorflow', 'keras', 'mlflow', 'optuna', 'pandas', 'pydantic', 'numpy',\n"
            "                   'nnlab.spec._schema') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["validate", "--help"], ["ui", "--help"]])
def test_help_exits_zero(args):
    out = nnlab(*args)
    assert out.returncode == 0 and "usage" in out.stdout


def test_bad_spec_is_one_located_line_exit_2_and_writes_nothing(write_spec, store_dir, tmp_path):
    path = write_spec("name: bad\ndata:\n  dataset: digits_flat\nmodel:\n  depth: eight\n")
    store = tmp_path / "fresh-store"
    out = nnlab("run", str(path), env={"NNLAB_STORE": str(store)})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"{path}:5: model.depth: must be an integer"), lines[0]
    assert "Traceback" not in out.stderr
    assert not store.exists()


def test_bad_override_exit_2(write_spec, tmp_path):
    path = write_spec("name: ok\ndata:\n  dataset: iris\n")
    store = tmp_path / "s"
    out = nnlab("run", str(path), "model.activation=rellu", env={"NNLAB_STORE": str(store)})
    assert out.returncode == 2 and "did you mean 'relu'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not store.exists()


def test_data_error_found_at_load_time_writes_nothing(write_spec, tmp_path):
    path = write_spec("name: ok\ndata:\n  dataset: iris\n  train_size: 100000\n")
    store = tmp_path / "s"
    out = nnlab("run", str(path), env={"NNLAB_STORE": str(store)})
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().startswith(f"{path}:4: data.train_size:")
    assert not store.exists()


def test_unknown_command_and_missing_args_exit_2():
    assert nnlab("frobnicate").returncode == 2
    assert nnlab("run").returncode == 2


def test_validate_every_study_in_experiments():
    studies = sorted((ROOT / "experiments").glob("*.yaml"))
    if not studies:
        pytest.skip("no studies in experiments/ yet")
    out = nnlab("validate", *map(str, studies), cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("ok  ") == len(studies)
