"""nnlab and its reports reach into other libraries only through their public APIs.

Every attribute access ``x._name`` in ``nnlab/`` and ``analysis/`` (an underscore name that is not a
dunder) is found with ``ast`` and must be either nnlab's own object or one of the uses listed in
``KNOWN``: the private members of Optuna and TensorFlow the sweep and the runner still depend on. A new
one fails this test; removing one fails it too until the list shrinks with it, so the list is always
exactly what is left to replace. Optuna and MLflow have no entry left: the sweep takes its slots with
``study.ask()`` and ends them with ``study.tell()``, and a second test checks that no module wraps or
subclasses their storages by method name.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# public names that begin with an underscore: namedtuple's methods and os._exit
PUBLIC_UNDERSCORE = {"_asdict", "_replace", "_make", "_fields", "_exit"}
# nnlab's own objects: the spec model's location hook
OWN = {("nnlab/spec/_load.py", "spec._attach"), ("analysis/_runs.py", "spec._attach")}
KNOWN = {
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


def test_no_storage_of_optuna_or_mlflow_is_subclassed_or_wrapped_by_method_name() -> None:
    """Reconnecting goes through SQLAlchemy's pool_pre_ping and a retry around whole operations."""
    for top in ("nnlab", "analysis"):
        for path in sorted((ROOT / top).rglob("*.py")):
            text = path.read_text()
            for base in ("RDBStorage", "JournalStorage", "BaseStorage", "SqlAlchemyStore"):
                assert f"({base})" not in text and "(base,)" not in text, f"{path}: subclasses {base}"
            assert "_get_trials" not in text and "_get_stale_trial_ids" not in text, path


def test_the_report_reader_uses_no_private_member_of_mlflow() -> None:
    text = (ROOT / "analysis" / "_runs.py").read_text()
    assert "_tracking_client" not in text and "dbmodels" not in text
    assert not {use for use in private_accesses() if use[0].startswith("analysis/")}


def test_the_scan_finds_a_private_access() -> None:
    """The scanner itself: an access it must see, and the ones it must let through."""
    tree = ast.parse("study._storage.get()\nself._x.y\nos._exit(0)\nrow._asdict()\nx.__class__\n")
    assert accesses(tree) == {"study._storage"}
