"""The ``nnlab`` command. Starts instantly: heavy libraries are imported by the commands that use them.

Exit codes: 0 ok, 1 runtime failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nnlab import __version__
from nnlab.errors import FatalError, NnlabError, SpecError, no_space, no_space_message

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2
UI_MODEL_TRAINING = "workflowType=machine_learning"  # the MLflow UI's own query: its "Model training" screens

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return deco


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _split_overrides(items: Sequence[str]) -> tuple[list[str], list[str]]:
    specs = [i for i in items if "=" not in i]
    overrides = [i for i in items if "=" in i]
    return specs, overrides


def spec_and_overrides(items: Sequence[str]) -> tuple[str, list[str]]:
    """The first item names the spec; every later one is a key=value override (checked by the loader)."""
    if not items or "=" in items[0]:
        raise SpecError("give a spec file or study name first, then key=value overrides",
                        file="<command line>", line=1)
    return items[0], list(items[1:])


def _add_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", help="MLflow tracking server or database URI (default: the embedded "
                                          "store in $NNLAB_STORE, ./.nnlab)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nnlab", description="Declarative neural-network experiments: YAML spec -> Keras "
                     "model -> runs in MLflow.", epilog="A SPEC is a YAML file or a study name in "
                     "experiments/ (e.g. depth). Overrides follow it: model.depth=8 train.epochs=5.")
    parser.add_argument("--version", action="version", version=f"nnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("validate", help="check specs (and each of their profiles) without running anything")
    p.add_argument("items", nargs="+", metavar="SPEC|KEY=VALUE")
    p.add_argument("--profile", help="validate with this profile applied (default: the spec and every profile)")

    p = sub.add_parser("run", help="train one model from a spec and log it to MLflow")
    p.add_argument("items", nargs="+", metavar="SPEC [KEY=VALUE ...]")
    p.add_argument("--profile", help="a named profile of the spec, e.g. quick")
    _add_store_args(p)

    p = sub.add_parser("ui", help="open the MLflow UI on the store")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    _add_store_args(p)

    for name in COMMAND_MODULES:
        # each module keeps heavy imports inside its handlers, so --help stays instant
        importlib.import_module(name).add_parsers(sub, command)
    return parser


# Modules that add commands: each has add_parsers(subparsers, command_decorator).
COMMAND_MODULES: list[str] = ["nnlab.sweep.commands", "analysis.commands", "nnlab.dashboard"]


def _terminate_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C, so a run in progress is ended KILLED rather than left RUNNING."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (embedded use)
        pass


def _print_error(message: str) -> None:
    print(message.splitlines()[0] if message else "error", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _terminate_as_interrupt()
    if not args.command:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return COMMANDS[args.command](args)
    except SpecError as exc:
        _print_error(str(exc))
        return EXIT_BAD_INPUT
    except FatalError as exc:
        _print_error(f"nnlab: {exc}")
        return EXIT_FAILURE
    except NnlabError as exc:
        _print_error(f"nnlab: {exc}")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _print_error("nnlab: interrupted")
        return 130
    except Exception as exc:
        if no_space(exc) is None:
            raise
        _print_error(f"nnlab: {no_space_message(exc, 'writing to the store')}")
        return EXIT_FAILURE


def entry() -> None:
    """The console script: ``main``, then an exit that skips the interpreter's last full garbage
    collection. At exit Python collects once more over every object still alive - with MLflow,
    Optuna and TensorFlow imported, 0.8-1 s spent freeing a process that is about to end. Freezing
    them first leaves that collection nothing to scan; atexit hooks, flushes and the closing of files
    still run, unlike with ``os._exit``."""
    import gc

    code = main()
    gc.freeze()
    sys.exit(code)


# ------------------------------------------------------------------------------------------------
# commands


@command("validate")
def _validate(args: argparse.Namespace) -> int:
    from nnlab.spec import Spec

    specs, overrides = _split_overrides(args.items)
    if not specs:
        raise SpecError("give at least one spec file or study name", file="<command line>", line=1)
    for path in specs:
        spec = Spec.from_yaml(path, overrides, args.profile)
        checked = [args.profile] if args.profile else sorted(spec.profiles)
        if not args.profile:
            for name in checked:
                Spec.from_yaml(path, overrides, name)
        cells = 1
        for values in spec.sweep.grid.values():
            cells *= len(values)
        runs = cells * (spec.sweep.trials + spec.sweep.seeds)
        profiles = f", profiles: {', '.join(checked)}" if checked else ""
        plural = ("" if cells == 1 else "s", "" if runs == 1 else "s")
        print(f"ok  {spec.source}  ({spec.name}: {cells} cell{plural[0]}, {runs} sweep run{plural[1]}{profiles})")
    return EXIT_OK


@command("run")
def _run(args: argparse.Namespace) -> int:
    from nnlab.spec import Spec

    path, overrides = spec_and_overrides(args.items)
    spec = Spec.from_yaml(path, overrides, args.profile)
    from nnlab.tracking import resolve_store, start_tracker

    store = resolve_store(args.tracking_uri)
    # MLflow imports in a helper process, on the other core, while TensorFlow imports here
    with start_tracker(store) as tracker:
        from nnlab.train import execute, prepare

        prepared = prepare(spec)  # data and model: input errors surface here, before the store is touched
        tracker.open()  # an unusable store fails here, before any training
        tracker.reap_stale_runs()
        from nnlab.errors import TrialFailed

        try:
            result = execute(prepared, tracker, phase="run", progress=True)
        except TrialFailed as exc:
            print(f"run failed: {exc}", file=sys.stderr)
            return EXIT_FAILURE
    _print_result(spec.name, result, store.tracking_uri)
    return EXIT_OK


def _print_result(name: str, result: Any, uri: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    shown = [key for key in sorted(result.metrics) if "/" not in key]
    for key in shown:
        table.add_row(key, f"{result.metrics[key]:.4g}")
    console = Console(highlight=False)
    console.print(f"{name}: {result.status} after {result.epochs} epochs ({result.seconds:.1f} s)", markup=False)
    console.print(table)
    console.print(f"run {result.run_id} in {uri}  (browse: nnlab ui, or make ui in the project)", markup=False,
                  soft_wrap=True)


@command("ui")
def _ui(args: argparse.Namespace) -> int:
    import subprocess

    from nnlab.tracking import resolve_store

    store = resolve_store(args.tracking_uri)
    from nnlab.tracking._mlflow import Tracker

    tracker = Tracker(store)
    tracker.reap_stale_runs()  # the UI should not show runs of dead processes as running
    tracker.tag_experiments()  # experiments made before nnlab tagged them open on their runs too
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding the MLflow UI to {args.host} exposes every run to the network without "
              "authentication; put it behind an authenticating proxy (see README)", file=sys.stderr)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store.tracking_uri,
           "--host", args.host, "--port", str(args.port)]
    url = f"http://{args.host}:{args.port}"
    print(f"MLflow UI on {url} for {store.tracking_uri} (Ctrl-C to stop)")
    # MLflow 3.17's UI opens experiments on its GenAI screens until 'Model training' is picked at its top left
    # (a choice each browser keeps); these links pick it (the experimentKind tag decides only in other versions)
    for exp_id, name in tracker.model_experiments():
        print(f"  {name}: {url}/#/experiments/{exp_id}?{UI_MODEL_TRAINING}")
    sys.stdout.flush()
    try:
        return subprocess.call(cmd, env={**os.environ, "MLFLOW_TRACKING_URI": store.tracking_uri})
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    entry()
