"""Safe, located YAML loading.

The YAML is composed into nodes and converted by hand, so that every value keeps
the file and line it came from, duplicate keys and Python tags are refused, and
alias bombs stop after a bounded number of nodes instead of exhausting memory.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nnlab.errors import SpecError

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a spec is a page of text, not a data file
MAX_NODES = 50_000  # after alias expansion
MAX_DEPTH = 40

Path_ = tuple[Any, ...]  # a key path, e.g. ("model", "depth") or ("sweep", "grid", "model.depth", 2)


@dataclass
class Located:
    """Plain data with the (file, line) each key path came from."""

    data: Any
    where: dict[Path_, tuple[str, int]] = field(default_factory=dict)

    def locate(self, path: Path_) -> tuple[str, int] | None:
        """The location of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            if p in self.where:
                return self.where[p]
            if not p:
                return None
            p = p[:-1]


class _Loader(yaml.SafeLoader):
    """SafeLoader used only to compose nodes and construct scalars."""


def read_text(path: Path, shown: str) -> str:
    """Read a spec file as UTF-8 text, refusing what is not one."""
    if not path.exists():
        raise SpecError("file not found", file=shown, line=1)
    if path.is_dir():
        raise SpecError("is a directory; expected a YAML file", file=shown, line=1)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(f"file is {size} bytes; a spec must be at most {MAX_FILE_BYTES} bytes",
                            file=shown, line=1)
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot be read: {exc.strerror or exc}", file=shown, line=1) from None
    for bom, encoding in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                          (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if raw.startswith(bom):
            raise SpecError(f"is encoded as {encoding}; save it as UTF-8", file=shown, line=1)
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise SpecError("is a binary file (NUL byte); expected UTF-8 YAML text", file=shown, line=line)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                        file=shown, line=line) from None
    return text.removeprefix("\ufeff")


def parse(text: str, shown: str, *, top_level_mapping: bool = True) -> Located:
    """Parse YAML text into plain data and the location of every key path."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise SpecError(f"YAML syntax error: character #x{exc.character:04x} is not allowed in YAML text",
                        file=shown, line=line) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            problem = exc.problem or "invalid YAML"
            context = f" {exc.context}" if exc.context else ""
            raise SpecError(f"YAML syntax error: {problem}{context}", file=shown, line=line) from None
        except yaml.reader.ReaderError as exc:
            line = text[: exc.position].count("\n") + 1
            raise SpecError(f"YAML syntax error: character #x{exc.character:04x} is not allowed in YAML text",
                            file=shown, line=line) from None
        except yaml.YAMLError as exc:
            raise SpecError(f"YAML syntax error: {str(exc).splitlines()[0]}", file=shown, line=1) from None
        out = Located(data=None)
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            node = None
        if node is None:
            if top_level_mapping:
                raise SpecError("file is empty; expected a mapping with sections such as data, model, train",
                                file=shown, line=1)
            return out
        if top_level_mapping and not isinstance(node, yaml.MappingNode):
            raise SpecError(f"the top level must be a mapping of sections, but got a {_kind(node)}",
                            file=shown, line=node.start_mark.line + 1)
        counter = [0]
        out.data = _convert(loader, node, (), out.where, shown, counter, 0)
        return out
    finally:
        loader.dispose()


def parse_scalar(text: str, shown: str, line: int) -> Any:
    """Parse the value half of a ``key=value`` override as YAML (``8``, ``0.1``, ``[1, 2]``, ``true``)."""
    try:
        located = parse(text, shown, top_level_mapping=False)
    except SpecError as exc:
        raise SpecError(exc.detail, file=shown, line=line) from None
    return located.data


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return f"scalar ({node.value!r})"


def _convert(loader: _Loader, node: yaml.Node, path: Path_, where: dict[Path_, tuple[str, int]],
             shown: str, counter: list[int], depth: int) -> Any:
    counter[0] += 1
    line = node.start_mark.line + 1
    if counter[0] > MAX_NODES:
        raise SpecError(f"more than {MAX_NODES} values after expanding aliases (an alias bomb?)",
                        file=shown, line=line)
    if depth > MAX_DEPTH:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep (a recursive alias?)", file=shown, line=line)
    if isinstance(node, yaml.MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            raise SpecError(f"tag {node.tag!r} is not allowed; specs hold plain mappings, lists and scalars",
                            file=shown, line=line)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError("merge keys ('<<') are not supported; use 'extends:' to share settings",
                                file=shown, line=key_line)
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError("mapping keys must be plain strings, but got a " + _kind(key_node),
                                file=shown, line=key_line)
            key = _scalar(loader, key_node, shown)
            if not isinstance(key, str):
                raise SpecError(f"mapping keys must be strings, but got {key!r}", file=shown, line=key_line)
            dotted = ".".join(str(p) for p in (*path, key))
            if key in result:
                first = where.get((*path, key), (shown, 0))[1]
                raise SpecError(f"duplicate key (first defined on line {first})", file=shown, line=key_line,
                                key=dotted)
            where[(*path, key)] = (shown, key_line)
            result[key] = _convert(loader, value_node, (*path, key), where, shown, counter, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            raise SpecError(f"tag {node.tag!r} is not allowed; specs hold plain mappings, lists and scalars",
                            file=shown, line=line)
        items = []
        for i, item in enumerate(node.value):
            where[(*path, i)] = (shown, item.start_mark.line + 1)
            items.append(_convert(loader, item, (*path, i), where, shown, counter, depth + 1))
        return items
    return _scalar(loader, node, shown)


_PLAIN_SCALAR_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
}


def _scalar(loader: _Loader, node: yaml.Node, shown: str) -> Any:
    line = node.start_mark.line + 1
    if node.tag not in _PLAIN_SCALAR_TAGS:
        raise SpecError(f"tag {node.tag!r} is not allowed; specs hold strings, numbers, booleans and null",
                        file=shown, line=line)
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid value: {getattr(exc, 'problem', exc)}", file=shown, line=line) from None
    if isinstance(value, str) and len(value) > 10_000:
        raise SpecError(f"string of {len(value)} characters; at most 10000 allowed", file=shown, line=line)
    return value
