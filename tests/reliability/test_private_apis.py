"""nnlab and its reports reach into other libraries only through their public APIs.

Every attribute access ``x._name`` in ``nnlab/`` and ``analysis/`` (an underscore name that is not a
dunder) is found with ``ast`` and must be either nnlab's own object or one of the uses listed in
``KNOWN``: the private members of Optuna and TensorFlow the sweep and the runner still depend on. A new
one fails this test; removing one fails it too until the list shrinks with it, so the list is always
exactly what is left to replace. (The sweep's reconnecting RDB storage also wraps private
``RDBStorage`` methods by name, which an attribute scan cannot see.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# public names that begin with an underscore: namedtuple's methods and os._exit
PUBLIC_UNDERSCORE = {"_asdict", "_replace", "_make", "_fields", "_exit"}
# nnlab's own objects: the spec model's location hook, the fork server's process handle
OWN = {("nnlab/spec/_load.py", "spec._attach"), ("analysis/_runs.py", "spec._attach"),
       ("nnlab/sweep/_forks.py", "proc._pid")}
KNOWN = {
    # a study's storage: Optuna has no public accessor; slots taken with study.ask() and ended with
    # study.tell() would need none (trial ids already come from the storage's public lookups)
    ("nnlab/sweep/_slots.py", "study._storage"),
    # TensorFlow's gradient registry, pruned after each fit (nnlab/train/_env.py: a leak with no public fix)
    ("nnlab/train/_env.py", "ops._gradient_registry"),
    ("nnlab/train/_env.py", "ops._gradient_registry._registry"),
}


def accesses(tree: ast.AST) -> set[str]:
    """``base._name`` for every underscore attribute read off something other than self or cls."""
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__") or name in PUBLIC_UNDERSCORE:
            continue
        base = ast.unparse(node.value)
        if base.split(".")[0] not in ("self", "cls"):
            found.add(f"{base}.{name}")
    return found


def private_accesses() -> set[tuple[str, str]]:
    found = set()
    for top in ("nnlab", "analysis"):
        for path in sorted((ROOT / top).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            found |= {(where, use) for use in accesses(ast.parse(path.read_text(), filename=str(path)))}
    return found - OWN


def test_only_the_listed_private_members_of_other_libraries_are_used() -> None:
    found = private_accesses()
    assert not found - KNOWN, f"new private access, use a public API instead: {sorted(found - KNOWN)}"
    assert not KNOWN - found, f"no longer used, take them off KNOWN: {sorted(KNOWN - found)}"


def test_the_report_reader_uses_no_private_member_of_mlflow() -> None:
    text = (ROOT / "analysis" / "_runs.py").read_text()
    assert "_tracking_client" not in text and "dbmodels" not in text
    assert not {use for use in private_accesses() if use[0].startswith("analysis/")}


def test_the_scan_finds_a_private_access() -> None:
    """The scanner itself: an access it must see, and the ones it must let through."""
    tree = ast.parse("study._storage.get()\nself._x.y\nos._exit(0)\nrow._asdict()\nx.__class__\n")
    assert accesses(tree) == {"study._storage"}
