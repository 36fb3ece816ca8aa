"""The one way a spec is made: file -> extends -> profile -> overrides -> validation.

Every error is a ``SpecError`` whose text starts ``FILE:LINE:`` and names the
dotted key, the rule, and the value received.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError

from nnlab.errors import SpecError
from nnlab.registry import did_you_mean
from nnlab.spec._schema import TOP_LEVEL_KEYS, Spec
from nnlab.spec._yaml import Located, Path_, parse, parse_scalar, read_text

MAX_EXTENDS_DEPTH = 16
# Mappings whose keys are themselves dotted spec keys ("model.depth"), not nested paths.
DOTTED_KEY_SECTIONS = (("sweep", "grid"), ("sweep", "tune"))


# ----------------------------------------------------------------------------------------------
# finding a spec by name


def experiments_dirs() -> list[Path]:
    """Where study names are looked up: $NNLAB_EXPERIMENTS, ./experiments, the checkout's experiments/."""
    dirs = []
    if os.environ.get("NNLAB_EXPERIMENTS"):
        dirs.append(Path(os.environ["NNLAB_EXPERIMENTS"]))
    dirs.append(Path.cwd() / "experiments")
    dirs.append(Path(__file__).resolve().parents[2] / "experiments")
    seen, out = set(), []
    for d in dirs:
        key = d.resolve() if d.exists() else d
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def available_studies() -> list[str]:
    names: set[str] = set()
    for d in experiments_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml") if not p.stem.startswith("_"))
    return sorted(names)


def resolve_spec_path(arg: str) -> Path:
    """A path to a spec file, or a study name in ``experiments/``."""
    path = Path(arg)
    if path.exists() or arg.endswith((".yaml", ".yml")) or os.sep in arg:
        return path
    for d in experiments_dirs():
        for suffix in (".yaml", ".yml"):
            candidate = d / f"{arg}{suffix}"
            if candidate.is_file():
                return candidate
    studies = available_studies()
    raise SpecError(f"no study named {arg!r} and no such file; expected a path or one of: "
                    f"{', '.join(studies) or '(none found)'}{did_you_mean(arg, studies)}",
                    file=arg, line=1)


def shown_path(path: Path) -> str:
    """The path as printed in messages: relative to the current directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------
# reading, extends and merging


def _deep_merge(base: Located, top: Located) -> Located:
    """Mappings merge key by key (top wins); anything else is replaced by top."""
    where = {p: loc for p, loc in base.where.items()}

    def merge(a: Any, b: Any, path: Path_) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for k, v in b.items():
                out[k] = merge(a[k], v, (*path, k)) if k in a else v
            return out
        # b replaces a: drop a's locations below this path
        for p in [p for p in where if p[: len(path)] == path and len(p) > len(path)]:
            del where[p]
        return b

    data = merge(base.data, top.data, ())
    where.update(top.where)
    return Located(data=data, where=where)


def _load_tree(path: Path, stack: tuple[Path, ...], via: tuple[str, int] | None) -> Located:
    shown = shown_path(path)
    real = path.resolve()
    if real in stack:
        chain = " -> ".join(shown_path(p) for p in (*stack, real))
        file, line = via or (shown, 1)
        raise SpecError(f"extends cycle: {chain}", file=file, line=line, key="extends")
    if len(stack) > MAX_EXTENDS_DEPTH:
        file, line = via or (shown, 1)
        raise SpecError(f"extends chain longer than {MAX_EXTENDS_DEPTH} files", file=file, line=line,
                        key="extends")
    if via is not None and not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise SpecError(f"extends {shown}, which {problem}", file=via[0], line=via[1], key="extends")
    located = parse(read_text(path, shown), shown)
    data = located.data
    extends = data.pop("extends", None)
    if extends is None:
        return located
    if isinstance(extends, str):
        entries = [(extends, located.where[("extends",)][1])]
    elif isinstance(extends, list) and all(isinstance(e, str) for e in extends):
        entries = [(e, located.where.get(("extends", i), located.where[("extends",)])[1])
                   for i, e in enumerate(extends)]
    else:
        raise SpecError(f"must be a file name or a list of file names, but got {extends!r}",
                        file=shown, line=located.where[("extends",)][1], key="extends")
    located.where = {p: loc for p, loc in located.where.items() if p[:1] != ("extends",)}
    merged = Located(data={}, where={})
    for entry, line in entries:
        base = _load_tree(path.parent / entry, (*stack, real), (shown, line))
        merged = _deep_merge(merged, base)
    return _deep_merge(merged, located)


# ----------------------------------------------------------------------------------------------
# dotted keys: profiles and overrides


def split_dotted(key: str) -> Path_:
    """``sweep.grid.model.depth`` -> ("sweep", "grid", "model.depth"); otherwise split on dots."""
    parts = tuple(key.split("."))
    for section in DOTTED_KEY_SECTIONS:
        n = len(section)
        if parts[:n] == section and len(parts) > n:
            return (*section, ".".join(parts[n:]))
    return parts


def set_dotted(located: Located, key: str, value: Any, origin: tuple[str, int], label: str) -> None:
    path = split_dotted(key)
    if not key or any(p == "" for p in path):
        raise SpecError(f"{label}: {key!r} is not a dotted key such as model.depth", file=origin[0],
                        line=origin[1])
    if path[0] not in TOP_LEVEL_KEYS or path[0] in ("extends", "profiles"):
        allowed = [k for k in TOP_LEVEL_KEYS if k not in ("extends", "profiles")]
        raise SpecError(f"{label}: unknown section {path[0]!r}; expected one of: {', '.join(allowed)}"
                        f"{did_you_mean(path[0], allowed)}", file=origin[0], line=origin[1], key=key)
    node = located.data
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SpecError(f"{label}: {'.'.join(path[: i + 1])} is not a mapping, so {key} cannot be set",
                            file=origin[0], line=origin[1], key=key)
        node = child
    node[path[-1]] = value
    for p in [p for p in located.where if p[: len(path)] == path]:
        del located.where[p]
    located.where[path] = origin


def _apply_profile(located: Located, name: str, shown: str) -> None:
    profiles = located.data.get("profiles") or {}
    if not isinstance(profiles, dict) or name not in profiles:
        names = sorted(profiles) if isinstance(profiles, dict) else []
        raise SpecError(f"unknown profile {name!r}; this spec has: {', '.join(names) or '(no profiles)'}"
                        f"{did_you_mean(name, names)}", file=shown, line=1, key="--profile")
    body = profiles[name]
    if not isinstance(body, dict):
        file, line = located.where.get(("profiles", name), (shown, 1))
        raise SpecError(f"must be a mapping of dotted keys to values, but got {body!r}", file=file, line=line,
                        key=f"profiles.{name}")

    def flatten(d: dict[str, Any], prefix: Path_) -> list[tuple[str, Any, Path_]]:
        out = []
        for k, v in d.items():
            dotted = ".".join((*[str(p) for p in prefix[2:]], k))
            if isinstance(v, dict) and split_dotted(dotted)[:2] not in DOTTED_KEY_SECTIONS:
                out.extend(flatten(v, (*prefix, k)))
            else:
                out.append((dotted, v, (*prefix, k)))
        return out

    for dotted, value, src in flatten(body, ("profiles", name)):
        origin = located.where.get(src, (shown, 1))
        set_dotted(located, dotted, copy.deepcopy(value), origin, f"profile {name!r}")


def parse_override(text: str, index: int, shown: str) -> tuple[str, Any]:
    if "=" not in text:
        raise SpecError(f"override {text!r} must look like key=value (e.g. model.depth=8)", file=shown,
                        line=1)
    key, _, raw = text.partition("=")
    key = key.strip()
    value = parse_scalar(raw, shown, 1) if raw.strip() else None
    return key, value


def _apply_overrides(located: Located, overrides: list[str] | tuple[str, ...], shown: str) -> None:
    for i, text in enumerate(overrides):
        key, value = parse_override(text, i, shown)
        path = split_dotted(key)
        file, line = located.locate(path) or (shown, 1)
        set_dotted(located, key, value, (file, line), f"override {text!r}")


# ----------------------------------------------------------------------------------------------
# validation and error translation


def _real_path(data: Any, loc: tuple[Any, ...], etype: str) -> Path_:
    """Cut pydantic's loc down to the keys that exist in the input (drops union branch names)."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and etype == "missing" and i == len(loc) - 1:
            out.append(part)
            break
        elif isinstance(node, dict) and etype == "extra_forbidden":
            out.append(part)
            break
        elif isinstance(node, (dict, list)):
            continue  # a union tag such as 'range' or 'compare'
        else:
            break
    return tuple(out)


def _field_for(path: Path_) -> tuple[type[BaseModel] | None, Any]:
    """The model that owns the last model field on ``path``, and the annotation and metadata of the value
    at ``path`` (following dict values and list items), or None when the path leaves the schema."""
    owner: type[BaseModel] | None = None
    annotation: Any = Spec
    metadata: list[Any] = []
    for part in path:
        model = _inner_model(annotation)
        container = _container(annotation)
        if isinstance(part, str) and model is not None and container is None:
            if part not in model.model_fields:
                return model, None
            owner = model
            info = model.model_fields[part]
            annotation, metadata = info.annotation, list(info.metadata)
        elif container is not None:
            origin, args = container
            annotation = args[-1] if args else Any
            metadata = []
        else:
            return owner, None
    return owner, _Described(annotation, metadata)


class _Described:
    def __init__(self, annotation: Any, metadata: list[Any]) -> None:
        self.annotation = annotation
        self.metadata = metadata


def _container(annotation: Any) -> tuple[Any, tuple[Any, ...]] | None:
    """(origin, args) of the dict or list inside an annotation (through Optional/Annotated), else None."""
    origin = get_origin(annotation)
    if origin in (dict, list):
        return origin, get_args(annotation)
    if origin is not None and (origin is Union or str(origin) in ("<class 'types.UnionType'>",)
                               or origin is Annotated):
        for arg in get_args(annotation):
            found = _container(arg)
            if found is not None:
                return found
    return None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def describe_annotation(annotation: Any, metadata: list[Any]) -> str:
    """'an integer >= 1 and <= 512', 'a number in [0, 1)', 'one of: none, batch, layer' …"""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        flat: list[Any] = []
        for m in meta:
            flat.extend(getattr(m, "metadata", [m]))
        return describe_annotation(base, [*metadata, *flat])
    if origin is Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in get_args(annotation) if a is not type(None)]
        parts = [describe_annotation(a, metadata) for a in args]
        if set(args) == {int, float}:
            parts = [describe_annotation(float, metadata)]
        text = " or ".join(dict.fromkeys(parts))
        return text + (" or null" if type(None) in get_args(annotation) else "")
    if str(origin).endswith("Literal"):
        return "one of: " + ", ".join(str(a) for a in get_args(annotation))
    bounds = []
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            bounds.append(f">= {m.ge}")
        elif isinstance(m, annotated_types.Gt):
            bounds.append(f"> {m.gt}")
        elif isinstance(m, annotated_types.Le):
            bounds.append(f"<= {m.le}")
        elif isinstance(m, annotated_types.Lt):
            bounds.append(f"< {m.lt}")
    bound_text = (" " + " and ".join(bounds)) if bounds else ""
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer" + bound_text
    if annotation is float:
        return "a number" + bound_text
    if annotation is str:
        return "a string"
    if origin is list or annotation is list:
        return "a list"
    if origin is dict or annotation is dict:
        return "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping"
    return str(annotation)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(err: dict[str, Any], path: Path_, data: Any) -> str:
    etype = err["type"]
    value = err.get("input")
    owner, info = _field_for(path)
    if etype == "extra_forbidden":
        _, parent = _field_for(path[:-1])
        model = _inner_model(parent.annotation) if parent is not None else None
        valid = sorted(model.model_fields) if model is not None else []
        if path[:-1] == ():
            valid = list(TOP_LEVEL_KEYS)
        return f"unknown key{did_you_mean(str(path[-1]), valid)} (expected one of: {', '.join(valid)})"
    if etype == "missing":
        return "is required"
    if etype in ("value_error", "assertion_error"):
        msg = str(err.get("ctx", {}).get("error", err["msg"]))
        return msg.removeprefix("Value error, ")
    if etype == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = [c.strip().strip("'") for c in expected.replace(" or ", ", ").split(",")]
        return f"must be one of: {', '.join(choices)}, but got {_short(value)}{did_you_mean(str(value), choices)}"
    if etype in ("union_tag_invalid", "union_tag_not_found"):
        return f"has an unknown or missing 'kind', but got {_short(value)}"
    if info is not None:
        rule = describe_annotation(info.annotation, list(info.metadata))
        return f"must be {rule}, but got {_short(value)}"
    return f"{err['msg'].lower()}, but got {_short(value)}"


def to_spec_error(exc: ValidationError, located: Located, shown: str) -> SpecError:
    """The first error of a pydantic ValidationError, as a located one-line SpecError."""
    err: dict[str, Any] = dict(exc.errors()[0])
    path = _real_path(located.data, tuple(err["loc"]), err["type"])
    if err["type"] in ("missing",):
        file, line = located.locate(path[:-1]) or (shown, 1)
    else:
        file, line = located.locate(path) or (shown, 1)
    key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")
    return SpecError(_message(err, path, located.data), file=file, line=line, key=key or None)


def validate_located(located: Located, shown: str, *, default_name: str, sweep_checks: bool = True,
                     family_options: bool = False) -> Spec:
    from nnlab.spec._checks import check_spec

    data = copy.deepcopy(located.data)
    data.setdefault("name", default_name)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise to_spec_error(exc, Located(data=data, where=located.where), shown) from None
    spec._attach(shown, located)
    check_spec(spec, sweep=sweep_checks, family_options=family_options)
    return spec


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = (), profile: str | None = None) -> Spec:
    """Read, merge, select the profile, apply the overrides, validate. The only way a spec is made."""
    path = resolve_spec_path(str(path)) if not isinstance(path, Path) else path
    shown = shown_path(path)
    located = _load_tree(path, (), None)
    if profile:
        _apply_profile(located, profile, shown)
    _apply_overrides(located, overrides, shown)
    return validate_located(located, shown, default_name=_default_name(path), family_options=not profile)


def _default_name(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "_.-" else "_" for c in path.stem)
    return stem.lstrip("._-") or "spec"


def spec_from_dict(data: dict[str, Any], *, source: str = "<dict>") -> Spec:
    located = Located(data=copy.deepcopy(data), where={})
    return validate_located(located, source, default_name="spec")
