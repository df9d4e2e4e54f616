"""Line-aware YAML: compose PyYAML nodes and build plain Python values that remember where
each key and value came from, refusing duplicate keys (PyYAML silently keeps the last).

Mapping keys are always strings (their source text), so ``2024:`` names segment "2024".
Timestamps stay strings. Values are ``Map`` (a dict) and ``Seq`` (a list) carrying 1-based
``(line, column)`` marks, which is what jsonschema walks and what diagnostics point at.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from resend_iac.text import excerpt

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
_NUMBERS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_COLLECTIONS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_constructor = yaml.constructor.SafeConstructor()


# The largest whole number a JSON double (what the API stores) holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1


def number_problem(value: Any, text: str) -> str | None:
    """Why a number read from YAML (``text`` as written) cannot be stored, or ``None``."""
    shown = text if len(text) <= 40 else text[:20] + "..." + text[-8:]
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if value != value:
            return f"{shown} (not a number) is not allowed: Resend stores finite JSON numbers only"
        if value in (math.inf, -math.inf):
            if text.strip().lstrip("+-").lower() in (".inf",):
                return f"{shown} (infinity) is not allowed: Resend stores finite JSON numbers only"
            return (
                f"the number {shown} is out of range: Resend stores JSON numbers (doubles), "
                "finite and at most about 1.8e308 in size"
            )
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        return (
            f"the whole number {shown} is too large: Resend stores JSON numbers (doubles), exact only "
            f"up to {MAX_SAFE_INTEGER:,}; quote it to make it a string"
        )
    return None


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = node.tag
    if tag == _STR or tag == "tag:yaml.org,2002:timestamp":
        return node.value
    if tag in _SCALARS:
        try:
            value = _constructor.yaml_constructors[tag](_constructor, node)
        except (ValueError, OverflowError):  # e.g. an int of more than 4300 digits
            value = math.inf
        if tag in _NUMBERS:
            problem = number_problem(value, node.value)
            if problem:
                raise YAMLProblem(*_mark(node), problem)
        return value
    raise YAMLProblem(
        *_mark(node), f"unsupported YAML tag {excerpt(tag)}; use plain strings, numbers, booleans or null"
    )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [c for pair in node.value for c in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class _Builder:
    """Builds values from a composed node graph within the limits: nesting ``max_depth``;
    values added by aliases at most ``max_alias_nodes``, counted *before* expanding (a
    node's size is memoised), so a billion-laughs file costs what its text costs."""

    def __init__(self, max_depth: int, max_alias_nodes: int) -> None:
        self.max_depth = max_depth
        self.budget = max_alias_nodes
        self.max_alias_nodes = max_alias_nodes
        self.built: set[int] = set()
        self.sizes: dict[int, int] = {}
        self.pairs_memo: dict[int, list[tuple[yaml.Node, yaml.Node]]] = {}
        self.free = 0  # > 0 while building inside an alias already paid for
        self.aliased = True  # the text has anchors (else no accounting, no memo)

    def size(self, node: yaml.Node) -> int:
        """Values ``node`` expands to (itself and mapping keys included), without building
        them; memoised, iterative. A cycle (a recursive alias) adds nothing here: the depth
        limit refuses it when built."""
        memo = self.sizes
        visiting: set[int] = set()
        stack: list[tuple[yaml.Node, bool]] = [(node, False)]
        while stack:
            n, done = stack.pop()
            nid = id(n)
            if done:
                memo[nid] = 1 + sum(memo.get(id(c), 0) for c in _children(n))
                visiting.discard(nid)
            elif nid not in memo and nid not in visiting:
                if isinstance(n, yaml.ScalarNode):
                    memo[nid] = 1
                else:
                    visiting.add(nid)
                    stack.append((n, True))
                    stack.extend((c, False) for c in _children(n))
        return memo[id(node)]

    def precheck(self, root: yaml.Node) -> None:
        """Refuse, before building anything, a graph whose aliases expand beyond the budget;
        point at the anchor that costs most (its size times its extra uses)."""
        total = self.size(root)
        nodes: dict[int, yaml.Node] = {}
        refs: dict[int, int] = {}
        stack = [root]
        while stack:
            n = stack.pop()
            if id(n) in nodes:
                continue
            nodes[id(n)] = n
            for c in _children(n):
                refs[id(c)] = refs.get(id(c), 0) + 1
                stack.append(c)
        if total - len(nodes) <= self.max_alias_nodes:
            return
        worst = max((i for i, k in refs.items() if k > 1), key=lambda i: self.sizes.get(i, 0) * (refs[i] - 1))
        self.built.add(worst)
        self.budget = -1
        self.charge(nodes[worst])

    def charge(self, node: yaml.Node) -> bool:
        """``node`` is about to be built: when again (an alias), spend its whole size from
        the budget and say so (its subtree is then not charged a second time)."""
        if id(node) not in self.built:
            self.built.add(id(node))
            return False
        self.budget -= self.size(node) if self.budget >= 0 else 0
        if self.budget < 0:
            line, col = _mark(node)
            raise YAMLProblem(
                line,
                col,
                f"YAML aliases of the anchor at line {line}, column {col} (and others) expand to more "
                f'than {self.max_alias_nodes:,} values (a "billion laughs" file?), so they were not expanded. '
                "Use fewer aliases, or raise the limit with RESEND_IAC_MAX_ALIAS_NODES",
            )
        return True

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        if self.free or not self.charge(node):
            return self._build(node, depth)
        self.free += 1  # an alias, paid for in full: its subtree is free
        try:
            return self._build(node, depth)
        finally:
            self.free -= 1

    def _build(self, node: yaml.Node, depth: int) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        if depth >= self.max_depth:
            raise YAMLProblem(
                *_mark(node),
                f"mappings and lists are nested more than {self.max_depth} deep here; a resend-iac file "
                "needs a handful of levels (raise the limit with RESEND_IAC_MAX_DEPTH)",
            )
        if node.tag not in _COLLECTIONS:
            raise YAMLProblem(
                *_mark(node), f"unsupported YAML tag {excerpt(node.tag)}; use plain mappings and lists"
            )
        child = self.build if self.aliased else self._build  # no anchors: no accounting
        if isinstance(node, yaml.SequenceNode):
            seq = Seq()
            seq.mark = _mark(node)
            for item in node.value:
                seq.append(child(item, depth + 1))
                seq.marks.append(_mark(item))
                seq.styles.append(getattr(item, "style", None))
            return seq
        if isinstance(node, yaml.MappingNode):
            out = Map()
            out.mark = _mark(node)
            for key_node, value_node in self.pairs(node):
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YAMLProblem(
                        *_mark(key_node), "mapping keys must be plain names, not lists or mappings"
                    )
                key = key_node.value
                if key in out:
                    line, col = out.key_marks[key]
                    raise YAMLProblem(
                        *_mark(key_node),
                        f"duplicate key {excerpt(key)} (first at line {line}, column {col}); "
                        "YAML would silently keep only the last one: remove or merge one of them",
                    )
                out[key] = child(value_node, depth + 1)
                out.key_marks[key] = _mark(key_node)
                out.value_marks[key] = _mark(value_node)
                out.styles[key] = getattr(value_node, "style", None)
            return out
        raise YAMLProblem(*_mark(node), "unsupported YAML node")  # pragma: no cover

    def pairs(self, node: yaml.MappingNode, depth: int = 0) -> list[tuple[yaml.Node, yaml.Node]]:
        """The key/value node pairs, with ``<<`` merge keys expanded (explicit keys win).
        Memoised per node, and each merged source contributes each key once, so a chain of
        merges costs what its text costs."""
        if not self.aliased:  # no anchors in the text: no node is reached twice
            if not any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value):
                return node.value
        memo = self.pairs_memo.get(id(node))
        if memo is not None:
            return memo
        if depth >= self.max_depth:
            raise YAMLProblem(*_mark(node), f"'<<' merge keys are chained more than {self.max_depth} deep")
        self.pairs_memo[id(node)] = []  # a merge cycle adds nothing
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        raise YAMLProblem(
                            *_mark(src), "a '<<' merge key needs a mapping (or a list of mappings)"
                        )
                    merged.extend(self.pairs(src, depth + 1))
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
        self.pairs_memo[id(node)] = pairs
        return pairs


def build(node: yaml.Node, max_depth: int = 32, max_alias_nodes: int = 250_000, aliases: bool = True) -> Any:
    """Build the value of ``node`` (recursively), within the limits. ``aliases=False``
    (the text has no ``&`` anchor, so no node is shared) skips the alias accounting."""
    builder = _Builder(max_depth, max_alias_nodes)
    if not aliases:
        builder.free, builder.aliased = 1, False
        return builder.build(node)
    builder.precheck(node)
    return builder.build(node)


def parse(text: str, max_depth: int = 32, max_alias_nodes: int = 250_000) -> Any:
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
        # a problem may name an alias or a tag from the file
        raise YAMLProblem(line, col, f"YAML syntax error: {excerpt(what, 300, quote=False)}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. a control character
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        what = f"character #x{exc.character:04x}" if isinstance(exc.character, int) else "a character"
        raise YAMLProblem(
            line, col, f"YAML syntax error: {what} is not allowed in YAML ({exc.reason}): remove it"
        ) from None
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        raise YAMLProblem(1, 1, f"YAML syntax error: {excerpt(exc, 200)[1:-1]}") from None
    except RecursionError:  # pragma: no cover - libyaml refuses deeper nesting first
        raise YAMLProblem(1, 1, "mappings and lists are nested too deep") from None
    if node is None:
        return None
    return build(node, max_depth, max_alias_nodes, aliases="&" in text)
