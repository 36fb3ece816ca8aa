"""``make install`` installs the locked versions (constraints.txt), with uv where it can and pip otherwise, and
reinstalls when pyproject.toml or the lock changes; the lock pins what the suite runs on."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "constraints.txt"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    out = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not a pin: {line!r}"
            out[canonical(name)] = version
    return out


def dry_run(folder: Path, *args: str, target: str = "install") -> str:
    if shutil.which("make") is None:
        pytest.skip("no make here")
    out = subprocess.run(["make", "-n", "-B", target, "VENV=venv", *args], cwd=folder, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_make_install_installs_with_the_lock_by_uv_or_pip(project: Path) -> None:
    recipe = dry_run(project)
    assert 'constraints="-c constraints.txt"' in recipe  # when the lock's Python is the venv's
    assert "$uv pip install --quiet --compile-bytecode --python venv/bin/python $constraints -e '.[dev]'" in recipe
    assert "venv/bin/python -m pip install --quiet --disable-pip-version-check $constraints -e '.[dev]'" in recipe
    assert "python3 -m venv venv" in recipe
    assert 'if [ "pip" != pip ]' in dry_run(project, "INSTALLER=pip")  # uv is neither looked for nor installed
    assert "-e '.[dev,extra]'" in dry_run(project, "EXTRAS=dev,extra")


def test_make_dashboard_installs_the_extra_with_the_lock(project: Path) -> None:
    recipe = dry_run(project, target="dashboard")
    assert "venv/bin/python -c 'import optuna_dashboard' 2>/dev/null || { set -e;" in recipe
    assert "$uv pip install --quiet --compile-bytecode --python venv/bin/python $constraints -e '.[dev,dashboard]'" in recipe
    assert "venv/bin/nnlab dashboard depth --port 8080" in recipe


def test_an_edit_to_the_lock_or_pyproject_reinstalls(project: Path) -> None:
    def stamp() -> str:
        (line,) = [x for x in dry_run(project).splitlines() if x.startswith("touch venv/.installed-")]
        return line

    first = stamp()
    with open(project / "constraints.txt", "a") as lock:
        lock.write("zipp==0.0.1\n")
    second = stamp()
    with open(project / "pyproject.toml", "a") as pyproject:
        pyproject.write("\n# an edit\n")
    assert len({first, second, stamp()}) == 3


def test_the_lock_pins_every_dependency_at_the_version_under_test() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"],
              *project["optional-dependencies"]["dashboard"]]
    pinned = pins()
    header = LOCK.read_text().splitlines()[:4]
    assert any(re.fullmatch(r"# python 3\.\d+", line) for line in header), header
    for requirement in wanted:
        name = canonical(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])
        assert name in pinned, f"{name} is not in constraints.txt: run make lock"
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an extra not installed here (dashboard)
        assert installed == pinned[name], f"{name} {installed} is installed, {pinned[name]} locked: run make lock"
    assert "uv" in pinned  # the installer's own version too


def test_the_installed_packages_are_byte_compiled() -> None:
    """Where PYTHONDONTWRITEBYTECODE is set, a package installed without .pyc files is compiled from source
    again by every process (about 11 s of MLflow, SciPy and TensorFlow per `nnlab report`)."""
    import importlib.util

    import mlflow
    import scipy

    for module in (mlflow, scipy):
        assert Path(importlib.util.cache_from_source(module.__file__)).exists(), module.__name__
