"""Checks that span sections: dataset options, family vs data kind, grid and tune keys, expectations."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from nnlab.errors import SpecError
from nnlab.registry import did_you_mean
from nnlab.spec._cells import factor_values, is_linked, linked_label, linked_values
from nnlab.spec._schema import LEGACY_VALUES, SECTION_MODELS, Spec, TuneChoices, TuneRange

SWEEPABLE_SECTIONS = tuple(SECTION_MODELS)


def _fail(spec: Spec, key: str, message: str, *, at: str | tuple[Any, ...] | None = None) -> SpecError:
    file, line = spec.where(at or key)
    return SpecError(message, file=file, line=line, key=key)


def check_spec(spec: Spec, *, sweep: bool = True, family_options: bool = False) -> None:
    """Cross-section checks; ``sweep=False`` skips sweep and expect (a cell's or a trial's spec);
    ``family_options`` checks that every family option set is read by some run (a spec as its author
    wrote it, see ``_check_family_options``)."""
    _check_data(spec)
    _check_model(spec)
    if sweep:
        _check_sweep(spec)
        _check_expect(spec)
        _check_requirement_cycles(spec)
    if family_options:
        _check_family_options(spec)


def _check_data(spec: Spec) -> None:
    from nnlab.data import GENERATOR_OPTIONS, dataset_info

    data = spec.data
    meta = dataset_info(data.dataset)
    accepted = set(meta.get("options", ()))
    for option in GENERATOR_OPTIONS:
        if getattr(data, option) is not None and option not in accepted:
            raise _fail(spec, f"data.{option}", f"is not an option of dataset {data.dataset!r} (its options: "
                        f"{', '.join(sorted(accepted)) or 'none'}), but got {getattr(data, option)!r}")
    if data.augment and meta["kind"] != "image":
        raise _fail(spec, "data.augment", f"augmentation needs an image dataset, but {data.dataset!r} is "
                    f"{meta['kind']}; got {data.augment}")
    if data.classes is not None:
        if meta["task"] == "regression":
            raise _fail(spec, "data.classes", f"selects classes, but {data.dataset!r} is a regression dataset")
        if len(set(data.classes)) < 2 or len(set(data.classes)) != len(data.classes):
            raise _fail(spec, "data.classes", f"must list at least 2 distinct classes, but got {data.classes}")
    pretrain = spec.train.pretrain
    if pretrain is not None and pretrain.classes is not None and meta["task"] == "regression":
        raise _fail(spec, "train.pretrain.classes", "needs a classification dataset")


def _check_model(spec: Spec) -> None:
    from nnlab.data import dataset_info
    from nnlab.models import FAMILIES

    kind = dataset_info(spec.data.dataset)["kind"]
    kinds = FAMILIES.meta(spec.model.family).get("kinds", ())
    if kind not in kinds:
        raise _fail(spec, "model.family", f"family {spec.model.family!r} does not take {kind} data (it takes: "
                    f"{', '.join(kinds)}); dataset is {spec.data.dataset!r}")
    if spec.model.family == "transformer" and spec.model.width % spec.model.heads:
        raise _fail(spec, "model.heads", f"model.width ({spec.model.width}) must be divisible by model.heads, "
                    f"but got heads={spec.model.heads}")


def _check_family_options(spec: Spec) -> None:
    """A family's own key (``model.heads``, ``model.cell``, ...) set to something other than its default (or
    the legacy value that keeps an old sweep's hash, see ``LEGACY_VALUES``), or swept or tuned, where no
    run of the spec builds a family that reads it: an error, not a silent no-op.
    Checked on the whole study (its grid may mix families), not on one cell's spec, and on the spec as
    written with its overrides, not under a profile: a profile may narrow the grid to fewer families
    (``nnlab validate`` checks the spec itself too), and a resolved spec logged with a run carries every
    key."""
    from nnlab.models import FAMILIES
    from nnlab.spec._cells import expand

    options = {name: set(FAMILIES.meta(name).get("options", ())) for name in FAMILIES.names()}
    every = set().union(*options.values())
    cells = expand(spec.sweep.grid)
    families = sorted({str(cell.values.get("model.family", spec.model.family)) for cell in cells})
    read = set().union(*(options.get(f, set()) for f in families))
    defaults = type(spec.model).model_fields
    candidates: list[tuple[str, tuple[Any, ...]]] = [
        (key, ("model", key)) for key in sorted(spec.model.model_fields_set & every)
        if getattr(spec.model, key) not in (defaults[key].default, LEGACY_VALUES.get(f"model.{key}"))]
    for grid_key, values in spec.sweep.grid.items():
        keys = [grid_key] if not is_linked(grid_key) else sorted({k for v in values for k in linked_values(v)})
        candidates += [(k[len("model."):], ("sweep", "grid", grid_key)) for k in keys if k.startswith("model.")]
    candidates += [(k[len("model."):], ("sweep", "tune", k)) for k in spec.sweep.tune if k.startswith("model.")]
    for option, at in candidates:
        if option in every and option not in read:
            owners = ", ".join(f for f in sorted(options) if option in options[f])
            raise _fail(spec, f"model.{option}", f"is an option of family {owners} only, and no run of this spec "
                        f"builds one (family: {', '.join(families)}): it would change nothing; remove it or "
                        f"set model.family", at=at)


def _known_key(spec: Spec, key: str, where_key: str) -> None:
    parts = key.split(".")
    if len(parts) < 2 or parts[0] not in SWEEPABLE_SECTIONS:
        raise _fail(spec, where_key, f"must name a key in data, model or train (e.g. model.depth), but got {key!r}")
    model = SECTION_MODELS[parts[0]]
    fields = list(model.model_fields)
    if parts[1] not in fields:
        raise _fail(spec, where_key, f"{key!r} is not a spec key{did_you_mean(parts[1], fields)} "
                    f"({parts[0]} keys: {', '.join(fields)})")


def _try_value(spec: Spec, key: str, value: Any, where_key: str) -> None:
    try:
        spec.with_values({key: value})
    except SpecError as exc:
        raise _fail(spec, where_key, f"value {value!r} for {key}: {exc.detail}") from None
    except ValidationError as exc:  # pragma: no cover - with_values translates these
        raise _fail(spec, where_key, f"value {value!r} for {key} is invalid: {exc.errors()[0]['msg']}") from None


def _check_sweep(spec: Spec) -> None:
    sweep = spec.sweep
    for key, values in sweep.grid.items():
        where = f"sweep.grid.{key}"
        if is_linked(key):
            _check_linked(spec, key, values)
            continue
        _known_key(spec, key, where)
        seen: list[Any] = []
        for value in values:
            if value in seen:
                raise _fail(spec, where, f"lists {value!r} twice")
            seen.append(value)
            _try_value(spec, key, value, where)
    linked_keys = [k for key, values in sweep.grid.items() if is_linked(key) for v in values
                   for k in linked_values(v)]
    for key in sweep.grid:
        if not is_linked(key) and key in linked_keys:
            raise _fail(spec, f"sweep.grid.{key}", f"{key} is also set by a linked grid factor; set it in one place")
    for key, param in sweep.tune.items():
        where = f"sweep.tune.{key}"
        _known_key(spec, key, where)
        if key in sweep.grid or key in linked_keys:
            raise _fail(spec, where, f"{key} is both a grid factor and a tuned one; choose one")
        if isinstance(param, TuneChoices):
            for value in param.choices:
                _try_value(spec, key, value, where)
        elif isinstance(param, TuneRange):
            for value in (param.low, param.high):
                _try_value(spec, key, value, where)
            current = _get(spec, key)
            if isinstance(current, int) and not isinstance(current, bool) and not param.is_int:
                raise _fail(spec, where, f"{key} is an integer, so low, high and step must be integers, "
                            f"but got low={param.low!r}, high={param.high!r}")
    _check_cells(spec)
    _check_objective(spec)
    _check_seed_keys(spec)


def _check_seed_keys(spec: Spec) -> None:
    """Each seed key names an integer key of data, model or train that neither the grid nor tune sets."""
    sweep = spec.sweep
    linked = {k for key, values in sweep.grid.items() if is_linked(key) for v in values for k in linked_values(v)}
    for key in sweep.seed_keys:
        _known_key(spec, key, "sweep.seed_keys")
        current = _get(spec, key)
        if not isinstance(current, int) or isinstance(current, bool):
            raise _fail(spec, "sweep.seed_keys", f"must list integer keys such as train.seed or data.seed, but "
                        f"{key} is {current!r}")
        if key in sweep.grid or key in sweep.tune or key in linked:
            raise _fail(spec, "sweep.seed_keys", f"{key} is also a grid or tune key; a repeat cannot set it too")


def _check_cells(spec: Spec) -> None:
    """Every combination must make a valid spec (e.g. a family must take each dataset it meets)."""
    from nnlab.spec._cells import expand

    if len(spec.sweep.grid) < 2:
        return  # single values were checked one by one above
    for cell in expand(spec.sweep.grid):
        try:
            spec.with_values(cell.values)
        except SpecError as exc:
            raise _fail(spec, "sweep.grid", f"cell {cell.id} is not a valid spec: {exc.key}: {exc.detail}") from None


def _check_linked(spec: Spec, factor: str, options: list[Any]) -> None:
    where = f"sweep.grid.{factor}"
    labels = []
    keys: set[str] | None = None
    for i, option in enumerate(options):
        if not isinstance(option, dict) or not linked_values(option):
            raise _fail(spec, where, f"is a linked factor (no dot in its name), so each value must be a mapping "
                        f"of dotted keys such as {{model.residual: true, model.normalization: batch}}, but item "
                        f"{i} is {option!r}")
        for key in linked_values(option):
            _known_key(spec, key, where)
        try:
            spec.with_values(linked_values(option))
        except SpecError as exc:
            raise _fail(spec, where, f"value {linked_label(option)!r}: {exc.detail}") from None
        these = set(linked_values(option))
        if keys is not None and these != keys:
            raise _fail(spec, where, f"every value of a linked factor must set the same keys ({sorted(keys)}), "
                        f"but item {i} sets {sorted(these)}")
        keys = these
        labels.append(linked_label(option))
    if len(set(labels)) != len(labels):
        raise _fail(spec, where, f"labels must be distinct, but got {labels}")


def metric_names(task: str | None) -> list[str]:
    """Metrics a run logs; a task of None (a CSV file, known once read) allows either kind."""
    base = {"classification": ["loss", "accuracy"], "regression": ["loss", "mae", "mse"]}.get(
        task or "", ["loss", "accuracy", "mae", "mse"])
    return [f"{prefix}{m}" for prefix in ("", "val_", "test_") for m in base]


def _check_objective(spec: Spec) -> None:
    from nnlab.data import dataset_info

    task = dataset_info(spec.data.dataset)["task"]
    names = metric_names(task)
    if spec.sweep.objective not in names:
        raise _fail(spec, "sweep.objective", f"must be a metric of a {task or 'CSV'} run, one of: {', '.join(names)}"
                    f", but got {spec.sweep.objective!r}{did_you_mean(spec.sweep.objective, names)}")


def _get(spec: Spec, key: str) -> Any:
    section, _, rest = key.partition(".")
    return getattr(getattr(spec, section), rest.split(".")[0], None)


def _check_expect(spec: Spec) -> None:
    grid = spec.sweep.grid
    names = [claim.name for claim in spec.expect if claim.name]
    for i, claim in enumerate(spec.expect):
        where = f"expect[{i}]"
        at = ("expect", i)
        if claim.name and names.count(claim.name) > 1:
            raise _fail(spec, f"{where}.name", f"names must be distinct, but {claim.name!r} is used twice", at=at)
        mappings = {"where": claim.where}
        if claim.kind == "compare":
            mappings.update(better=claim.better, than=claim.than)
        elif claim.kind in ("trend", "peak"):
            if claim.along not in grid or is_linked(claim.along):
                keys = [k for k in grid if not is_linked(k)]
                raise _fail(spec, f"{where}.along", f"must be a sweep.grid key with ordered values (one of: "
                            f"{', '.join(keys) or 'none'}), but got {claim.along!r}", at=at)
            least = 2 if claim.kind == "trend" else 3
            if len(grid[claim.along]) < least:
                raise _fail(spec, f"{where}.along", f"sweep.grid.{claim.along} needs at least {least} values for a "
                            f"{claim.kind}", at=at)
        for j, req in enumerate(claim.requires):
            if isinstance(req, str):
                if req not in names:
                    raise _fail(spec, f"{where}.requires", f"names no claim of this spec: {req!r} (named claims: "
                                f"{', '.join(repr(n) for n in names) or 'none'}){did_you_mean(req, names)}", at=at)
                if req == claim.name:
                    raise _fail(spec, f"{where}.requires", f"a claim cannot require itself ({req!r})", at=at)
            else:
                mappings[f"requires[{j}].where"] = req.where
        for label, mapping in mappings.items():
            for key, value in mapping.items():
                if key not in grid:
                    raise _fail(spec, f"{where}.{label}", f"{key!r} is not a sweep.grid key (grid keys: "
                                f"{', '.join(grid) or 'none'})", at=at)
                if value not in factor_values(grid, key):
                    raise _fail(spec, f"{where}.{label}", f"{key}={value!r} is not one of the grid's values "
                                f"{factor_values(grid, key)}", at=at)


def _check_requirement_cycles(spec: Spec) -> None:
    """``requires:`` between named claims must not loop back."""
    edges = {c.name: [r for r in c.requires if isinstance(r, str)] for c in spec.expect if c.name}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            loop = " -> ".join([*path[path.index(name):], name])
            i = next(i for i, c in enumerate(spec.expect) if c.name == name)
            raise _fail(spec, f"expect[{i}].requires", f"requirements form a cycle: {loop}", at=("expect", i))
        state[name] = 1
        for nxt in edges.get(name, []):
            visit(nxt, [*path, name])
        state[name] = 2

    for name in edges:
        visit(name, [])
