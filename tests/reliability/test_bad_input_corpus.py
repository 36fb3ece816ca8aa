"""Malformed specs and overrides: each exits 2 with one located line, no traceback, nothing written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nnlab.cli import main

CORPUS = Path(__file__).parent / "bad_specs"
SPECS = sorted(CORPUS.iterdir())
LOCATED = re.compile(r"^\S.*:\d+: ")

GOOD = "name: good\ndata:\n  dataset: digits_flat\nmodel:\n  depth: 2\n  width: 8\ntrain:\n  epochs: 1\n"
OVERRIDES = [
    ("model.depth=eight", "model.depth: must be an integer"),
    ("model.depth=", "model.depth: must be an integer"),
    ("model.depth", "must look like key=value"),
    ("=3", "not a dotted key"),
    ("model..depth=3", "not a dotted key"),
    ("model.depth.inner=3", "not a mapping"),
    ("modle.depth=3", "unknown section 'modle'"),
    ("profiles.quick=3", "unknown section 'profiles'"),
    ("model.widht=8", "did you mean 'width'"),
    ("model.width=[8", "YAML syntax error"),
    ("model.width=!!python/object:os.system x", "not allowed"),
    ("model.width=1e400", "model.width"),
    ("train.optimizer=adamm", "did you mean 'adam'"),
    ("data.train_size=-5", "data.train_size"),
    ("data.train_size=999999", "data.train_size: must be <= "),
    ("sweep.grid.model.depth=3", "must be a list"),
    ("sweep.grid.model.depth=[1, x]", "value 'x' for model.depth"),
    ("sweep.seeds=-1", "sweep.seeds"),
    ("model.residual=yes please", "model.residual: must be true or false"),
    ("expect=[{kind: compare}]", "expect"),
]


def expected_of(path: Path) -> str:
    if path.is_dir():
        return "is a directory"
    head = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
    if head.startswith("# expect: "):
        return head.removeprefix("# expect: ").strip()
    return {"utf16_encoding.yaml": "UTF-16"}[path.name]


def run_cli(capsys, args: list[str]) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err


def test_corpus_is_large_enough():
    assert len(SPECS) + len(OVERRIDES) >= 60


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_malformed_spec(path, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    target = work / path.name
    if path.is_dir():
        shutil.copytree(path, target)
    else:
        shutil.copy(path, target)
    store = tmp_path / "store"
    monkeypatch.setenv("NNLAB_STORE", str(store))
    monkeypatch.chdir(work)
    code, err = run_cli(capsys, ["run", path.name])
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert LOCATED.match(lines[0]), lines[0]
    assert "Traceback" not in err
    assert expected_of(path) in lines[0], lines[0]
    assert not store.exists()


@pytest.mark.parametrize("override, expected", OVERRIDES, ids=[o for o, _ in OVERRIDES])
def test_malformed_override(override, expected, tmp_path, monkeypatch, capsys):
    spec = tmp_path / "good.yaml"
    spec.write_text(GOOD)
    store = tmp_path / "store"
    monkeypatch.setenv("NNLAB_STORE", str(store))
    code, err = run_cli(capsys, ["run", str(spec), override])
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and LOCATED.match(lines[0]), err
    assert expected in lines[0], lines[0]
    assert not store.exists()


def test_a_few_through_a_real_process(tmp_path):
    """The same contract holds for the installed entry point (no traceback from import or exit)."""
    for name in ("python_object_tag.yaml", "alias_bomb.yaml", "unknown_model_key.yaml"):
        out = subprocess.run([sys.executable, "-m", "nnlab.cli", "validate", str(CORPUS / name)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
