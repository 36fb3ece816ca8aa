"""``nnlab dashboard NAME``: optuna-dashboard on a sweep's Optuna storage.

The storage is the one ``nnlab sweep`` used: ``optuna.journal`` next to ``mlflow.db`` in the embedded store
(``$NNLAB_STORE``), or ``--storage`` for a database shared by machines. optuna-dashboard is an optional
extra (``pip install -e '.[dashboard]'``, or ``make dashboard``); it binds to 127.0.0.1 unless ``--host``
says otherwise. Only argparse is imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from nnlab.errors import SpecError

Handler = Callable[[argparse.Namespace], int]
EXIT_OK = 0
COMMAND = "nnlab dashboard"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
INSTALL_HINT = "pip install -e '.[dashboard]' in the project's environment, or make dashboard"


def add_parsers(subparsers: Any, command: Callable[[str], Callable[[Handler], Handler]]) -> None:
    p = subparsers.add_parser(
        "dashboard", help="open optuna-dashboard on a sweep's Optuna storage (optional extra 'dashboard')",
        description="Serve optuna-dashboard on the Optuna storage of a sweep: its studies NAME (the index), "
                    "NAME/<cell>/tune and NAME/<cell>/confirm. NAME is a study name, a spec file, or a sweep id "
                    "such as depth@quick.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--profile", help="the sweep of this profile of the spec, e.g. quick")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--storage", help="the sweep's Optuna storage when it was given to nnlab sweep, e.g. "
                   "postgresql://user@host/db (default: optuna.journal in $NNLAB_STORE)")
    p.add_argument("--tracking-uri", help=argparse.SUPPRESS)  # accepted like the other commands; unused
    command("dashboard")(_dashboard)


def sweep_id_of(name: str, profile: str | None) -> str:
    """The sweep's id: the spec's ``name`` (and profile) when NAME is a spec or a study in experiments/,
    else NAME as given (a sweep id such as ``depth@quick``, or a study whose spec is elsewhere)."""
    from nnlab.spec import Spec
    from nnlab.spec._load import resolve_spec_path
    from nnlab.sweep._plan import sweep_identity

    try:
        path = resolve_spec_path(name)
    except SpecError:
        return sweep_identity(name, profile) if profile and "@" not in name else name
    return sweep_identity(Spec.from_yaml(path, [], profile).name, profile)


def resolve_storage(sweep_id: str, storage: str | None) -> tuple[Any, list[str]]:
    """The sweep's Optuna storage, opened, and the names of the sweep's studies in it. SpecError (exit 2)
    when there is no storage or the sweep is not in it."""
    from nnlab.sweep._storage import open_existing_journal, open_storage, probe, resolve_target
    from nnlab.tracking import resolve_store

    target = resolve_target(resolve_store(), storage)
    if target.kind == "journal":
        opened = open_existing_journal(target)
        if opened is None:
            raise SpecError(f"sweep {sweep_id} has no Optuna storage here: {target.shown} does not exist (run nnlab "
                            "sweep first, or give the --storage it ran with)", key=COMMAND)
    else:
        probe(target)
        opened = open_storage(target)
    names = sorted(s.study_name for s in opened.storage.get_all_studies())
    mine = [n for n in names if n == sweep_id or n.startswith(sweep_id + "/")]
    if not mine:
        sweeps = sorted({n.split("/", 1)[0] for n in names})
        raise SpecError(f"no sweep {sweep_id} in {target.shown} (it holds: {', '.join(sweeps) or 'no sweep'})",
                        key=COMMAND)
    return opened, mine


def _dashboard(args: argparse.Namespace) -> int:
    sweep_id = sweep_id_of(args.name, args.profile)
    opened, studies = resolve_storage(sweep_id, args.storage)
    try:
        import optuna_dashboard
    except ImportError:
        raise SpecError(f"needs optuna-dashboard, an optional extra that is not installed: {INSTALL_HINT}",
                        key=COMMAND) from None
    if args.host not in LOOPBACK:
        print(f"warning: binding optuna-dashboard to {args.host} exposes the sweep's studies to the network "
              "without authentication", file=sys.stderr)
    print(f"optuna-dashboard on http://{args.host}:{args.port}/dashboard for sweep {sweep_id} "
          f"({len(studies)} studies in {opened.shown}; Ctrl-C to stop)", flush=True)
    try:
        optuna_dashboard.run_server(opened.storage, host=args.host, port=args.port)
    except KeyboardInterrupt:
        return EXIT_OK
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise SpecError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", key=COMMAND) from None
    return EXIT_OK
