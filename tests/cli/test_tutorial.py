"""docs/tutorial.md, run: every ``$ command`` of its console blocks in a fresh folder holding the tutorial's CSV
and spec, its output compared with the one shown (numbers, run ids, timings and the folder set aside).

``python tests/cli/test_tutorial.py --write`` runs the commands and writes their output into the tutorial.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
CSV = ROOT / "docs" / "tutorial" / "plants.csv"
SHOWN_HOME = "/home/you/plants"  # where the tutorial's folder appears to be
COLUMNS = "160"
BLOCK = re.compile(r"```(console|yaml)\n(.*?)```", re.S)
BOX = re.compile(r"([─━═│┃┏┓┗┛┡┩╇╈┳┻┼╋└┘┌┐├┤┬┴])\1+")


def blocks(text: str) -> list[tuple[str, str, int, int]]:
    """(kind, body, start, end) of each console and yaml block."""
    return [(m.group(1), m.group(2), m.start(2), m.end(2)) for m in BLOCK.finditer(text)]


def commands(text: str) -> list[tuple[str, str, int, int]]:
    """(command, shown output, start, end of the output) of each console block."""
    out = []
    for kind, body, start, end in blocks(text):
        if kind != "console" or not body.startswith("$ "):
            continue
        first, _, shown = body.partition("\n")
        out.append((first[2:], shown, start + len(first) + 1, end))
    return out


def spec_text(text: str) -> str:
    (spec,) = [body for kind, body, _, _ in blocks(text) if kind == "yaml" and body.startswith("# plants.yaml")]
    return spec


def environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NNLAB_STORE", "MLFLOW_TRACKING_URI", "PYTEST_CURRENT_TEST", "CUDA_VISIBLE_DEVICES")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = COLUMNS  # tables as wide as the tutorial shows them
    return env


def run(command: str, folder: Path) -> tuple[int, str]:
    out = subprocess.run(["bash", "-c", command], cwd=folder, env=environment(folder), capture_output=True,
                         text=True, timeout=600)
    text = (out.stdout + out.stderr).replace(str(folder.resolve()), SHOWN_HOME).replace(str(folder), SHOWN_HOME)
    return out.returncode, text


def normalized(text: str) -> list[str]:
    """The lines, each with numbers and ids made alike (and the plural after a number), runs of spaces and
    table rules shortened; sorted, so that the order in which two workers finish does not matter."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"\b[0-9a-f]{32}\b", "<id>", line)
        line = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", line)
        line = re.sub(r"\b(N \w+?)s\b", r"\1", line)  # "N threads" and "N thread" alike (cores differ)
        line = BOX.sub(r"\1", line)
        line = " ".join(line.split())
        if line:
            lines.append(line)
    return sorted(lines)


def prepare(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CSV, folder / "plants.csv")
    (folder / "plants.yaml").write_text(spec_text(text))


@pytest.mark.slow
def test_the_tutorial_runs_as_shown(tmp_path: Path) -> None:
    text = TUTORIAL.read_text()
    steps = commands(text)
    assert [c.split()[:2] for c, *_ in steps if c.startswith("nnlab")] == [
        ["nnlab", "validate"], ["nnlab", "run"], ["nnlab", "plan"], ["nnlab", "sweep"], ["nnlab", "report"]]
    folder = tmp_path / "plants"
    prepare(folder, text)
    for command, shown, _, _ in steps:
        code, output = run(command, folder)
        assert code == 0, f"{command}: exit {code}\n{output[-3000:]}"
        assert normalized(output) == normalized(shown), f"{command} printed:\n{output}"
    # what the tutorial says MLflow shows: the claims table as the sweep's description
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / '.nnlab' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("plants")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (parent,) = client.search_runs([experiment.experiment_id], filter_string="tags.`nnlab.phase` = 'sweep'")
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("Whether a plant thrives") and "| width=16 beats width=1 on test_accuracy | supported |" in note


def write(folder: Path) -> None:
    """Run the tutorial's commands and put their output in it."""
    text = TUTORIAL.read_text()
    prepare(folder, text)
    pieces, last = [], 0
    for command, _, start, end in commands(text):
        code, output = run(command, folder)
        if code != 0:
            raise SystemExit(f"{command}: exit {code}\n{output}")
        pieces += [text[last:start], output if output.endswith("\n") else output + "\n"]
        last = end
        print(f"$ {command}: {len(output.splitlines())} lines")
    TUTORIAL.write_text("".join(pieces) + text[last:])


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        write(Path(scratch) / "plants")
