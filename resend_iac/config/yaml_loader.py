"""Line-aware YAML: compose PyYAML nodes and build plain Python values that remember where
each key and value came from, refusing duplicate keys (PyYAML silently keeps the last).

Mapping keys are always strings (their source text), so ``2024:`` names segment "2024".
Timestamps stay strings. Values are ``Map`` (a dict) and ``Seq`` (a list) carrying 1-based
``(line, column)`` marks, which is what jsonschema walks and what diagnostics point at.
"""

from __future__ import annotations

from typing import Any

import yaml

try:  # the C composer is much faster and supports compose()
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml not built
    _Loader = yaml.SafeLoader

Mark = tuple[int, int]  # 1-based line, column


class YAMLProblem(Exception):
    """A problem found while reading a YAML file, with a 1-based line and column."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


class Map(dict):
    """A mapping that remembers its own mark and the marks of its keys and values."""

    mark: Mark = (1, 1)

    def __init__(self) -> None:
        super().__init__()
        self.key_marks: dict[str, Mark] = {}
        self.value_marks: dict[str, Mark] = {}
        self.styles: dict[str, str | None] = {}


class Seq(list):
    """A sequence that remembers its own mark and the marks of its items."""

    mark: Mark = (1, 1)

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[Mark] = []
        self.styles: list[str | None] = []


def _mark(node: yaml.Node) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


_STR = "tag:yaml.org,2002:str"
_SCALARS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}
_COLLECTIONS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_constructor = yaml.constructor.SafeConstructor()


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = node.tag
    if tag == _STR or tag == "tag:yaml.org,2002:timestamp":
        return node.value
    if tag in _SCALARS:
        return _constructor.yaml_constructors[tag](_constructor, node)
    raise YAMLProblem(*_mark(node), f"unsupported YAML tag {tag!r}; use plain strings, numbers, booleans or null")


def build(node: yaml.Node) -> Any:
    """Build the value of ``node`` (recursively)."""
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if node.tag not in _COLLECTIONS and not isinstance(node, yaml.ScalarNode):
        raise YAMLProblem(*_mark(node), f"unsupported YAML tag {node.tag!r}; use plain mappings and lists")
    if isinstance(node, yaml.SequenceNode):
        seq = Seq()
        seq.mark = _mark(node)
        for item in node.value:
            seq.append(build(item))
            seq.marks.append(_mark(item))
            seq.styles.append(getattr(item, "style", None))
        return seq
    if isinstance(node, yaml.MappingNode):
        out = Map()
        out.mark = _mark(node)
        for key_node, value_node in _pairs(node):
            if not isinstance(key_node, yaml.ScalarNode):
                raise YAMLProblem(*_mark(key_node), "mapping keys must be plain names, not lists or mappings")
            key = key_node.value
            if key in out:
                line, col = out.key_marks[key]
                raise YAMLProblem(
                    *_mark(key_node),
                    f"duplicate key {key!r} (first at line {line}, column {col}); "
                    "YAML would silently keep only the last one: remove or merge one of them",
                )
            out[key] = build(value_node)
            out.key_marks[key] = _mark(key_node)
            out.value_marks[key] = _mark(value_node)
            out.styles[key] = getattr(value_node, "style", None)
        return out
    raise YAMLProblem(*_mark(node), "unsupported YAML node")  # pragma: no cover


def _pairs(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """The key/value node pairs, with ``<<`` merge keys expanded (explicit keys win)."""
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    raise YAMLProblem(*_mark(src), "a '<<' merge key needs a mapping (or a list of mappings)")
                merged.extend(_pairs(src))
        else:
            pairs.append((key_node, value_node))
    if merged:
        explicit = {k.value for k, _ in pairs if isinstance(k, yaml.ScalarNode)}
        seen: set[str] = set()
        extra = []
        for k, v in merged:
            if k.value not in explicit and k.value not in seen:
                seen.add(k.value)
                extra.append((k, v))
        pairs = extra + pairs
    return pairs


def parse(text: str) -> Any:
    """Parse one YAML document into marked values; ``None`` for an empty document.

    Raises ``YAMLProblem`` for syntax errors and duplicate keys.
    """
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = exc.problem or "invalid YAML"
        if exc.context:
            context = exc.context
            cm = exc.context_mark
            if cm is not None and mark is not None and (cm.line, cm.column) != (mark.line, mark.column):
                context += f" (started at line {cm.line + 1}, column {cm.column + 1})"
            what = f"{context}, {what}"
        raise YAMLProblem(line, col, f"YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        raise YAMLProblem(1, 1, f"YAML syntax error: {exc}") from None
    if node is None:
        return None
    return build(node)
