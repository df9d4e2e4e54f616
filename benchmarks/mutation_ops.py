"""Mutants of one Python module, made on its AST (used by ``benchmarks/mutation.py``).

``mutants(source)`` lists every mutant of a module, in source order, each with a stable
description; ``mutated_tree(source, mutant)`` is the module's AST with that one mutant applied.

Operators (each applied at one place at a time):

- ``binop``: ``+`` <-> ``-``, ``*`` <-> ``/``, ``//`` -> ``/``, ``%`` -> ``/``, ``**`` -> ``*``,
  ``|`` <-> ``&`` (also in ``+=`` and the like);
- ``compare``: ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``, ``in`` <-> ``not in``,
  ``is`` <-> ``is not``;
- ``boolean``: ``and`` <-> ``or``; ``not x`` -> ``x``; ``-x`` -> ``x``;
- ``constant``: ``True`` <-> ``False``, a number ``n`` -> ``n + 1``, a string ``s`` ->
  ``"XX" s "XX"`` (``""`` -> ``"XX"``), bytes alike;
- ``loop``: ``continue`` <-> ``break``;
- ``return``: ``return x`` -> ``return None``;
- ``statement``: a call made for its effect (``x.append(...)``, ``conn.execute(...)``) removed.

Not mutated: docstrings, annotations, ``from __future__`` imports, and the format spec of
an f-string field (``{x:.0%}``: a mutant there is a crash, not a different behaviour).

A mutant is *message-only* when it changes only the text of an error or warning message: a
string literal (or a field of an f-string) whose value flows only into a message: the argument
of ``raise``, of an exception or warning constructor, of ``.append``/``.extend``/``.warn``/
``print``/``echo``/``super().__init__``, a ``return`` of prose (a list of messages, or a string
with a space in it), an assignment to a name such as ``message``/``head``/``tail``/``more``,
or a module constant used only there. The path from the literal to that place may only go
through ``+``, ``... if ... else ...``, f-strings, lists/tuples and ``str.join``: a literal
inside any other call (``Change("delete", ...)``) is never message-only.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import asdict, dataclass
from dataclasses import field as dc_field
from typing import Any

_BINOP = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.Div,
    ast.Pow: ast.Mult,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
_CMP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_SYMBOL = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.And: "and",
    ast.Or: "or",
}
_SINK_CALLS = frozenset(("append", "extend", "insert", "warn", "echo", "secho", "print", "__init__"))
_MESSAGE_NAMES = frozenset(
    ("message", "msg", "head", "tail", "more", "reason", "text", "hint", "note", "detail")
)


@dataclass
class Mutant:
    index: int  # position in mutants(source): the mutant's id within one version of the module
    op: str  # binop, compare, boolean, constant, loop, return, statement
    line: int
    scope: str  # qualified name of the function it is in, or "<module>"
    desc: str  # "`a < b` -> `a <= b`"
    message_only: bool
    path: list[Any]  # (field, index) steps from the Module to the node
    choice: int  # which operand of a comparison chain (else 0)
    func_path: list[str] | None  # outermost function holding it in its body (None: module level)
    top_names: list[str]  # names bound by the top-level statement it is in
    lines: list[int]  # first and last line of the statement (or header) that must run for it to matter
    uses: list[int] = dc_field(default_factory=list)  # module level: the lines that read what it binds
    occurrence: int = 1  # the n-th mutant of the same scope, operator and description

    @property
    def key(self) -> str:
        """Identifies the mutant across versions of the module (line numbers left out)."""
        base = f"{self.scope} | {self.op} | {self.desc}"
        return base if self.occurrence == 1 else f"{base} (#{self.occurrence})"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["key"] = self.key
        return out


def _short(node: ast.AST, width: int = 70) -> str:
    text = ast.unparse(node).splitlines()[0] if not isinstance(node, str) else node
    return text if len(text) <= width else text[: width - 3] + "..."


def _get(tree: ast.AST, path: list[Any]) -> ast.AST:
    node: Any = tree
    for field, i in path:
        node = getattr(node, field)
        if i is not None:
            node = node[i]
    return node


def _set(tree: ast.AST, path: list[Any], new: ast.AST) -> None:
    parent = _get(tree, path[:-1])
    field, i = path[-1]
    if i is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[i] = new


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _is_sink_call(call: ast.Call) -> bool:
    name = _call_name(call)
    return name in _SINK_CALLS or name.endswith(("Error", "Exception", "Warning"))


def _has_prose(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and " " in n.value for n in ast.walk(node)
    )


class _Walker:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.found: list[Mutant] = []
        self.message_constants = self._message_constants(tree)

    # -- where a node is --------------------------------------------------------------

    def _message_constants(self, tree: ast.Module) -> set[str]:
        """Module constants holding prose that is used only inside messages."""
        names = {
            s.targets[0].id
            for s in tree.body
            if isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)
            and isinstance(s.value, ast.Constant)
            and isinstance(s.value.value, str)
            and " " in s.value.value
        }
        if not names:
            return set()
        inside: set[int] = set()
        self._collect_message_nodes(tree, inside, set())
        uses: dict[str, list[ast.Name]] = {}
        for n in ast.walk(tree):
            if isinstance(n, ast.Name) and n.id in names and isinstance(n.ctx, ast.Load):
                uses.setdefault(n.id, []).append(n)
        return {k for k in names if uses.get(k) and all(id(u) in inside for u in uses[k])}

    def _collect_message_nodes(self, tree: ast.AST, out: set[int], constants: set[str]) -> None:
        """ids of every node inside a message expression (see the module docstring)."""
        for node in ast.walk(tree):
            roots: list[ast.AST] = []
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                roots += [*node.exc.args, *(k.value for k in node.exc.keywords)]
            elif isinstance(node, ast.Call) and _is_sink_call(node):
                roots += [*node.args, *(k.value for k in node.keywords)]
            elif isinstance(node, ast.Return) and node.value is not None:
                if isinstance(node.value, (ast.List, ast.Tuple)) or _has_prose(node.value):
                    roots.append(node.value)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and (t.id in _MESSAGE_NAMES or t.id in constants)
                for t in node.targets
            ):
                roots.append(node.value)
            for root in roots:
                self._mark_message(root, out)

    def _mark_message(self, node: ast.AST, out: set[int]) -> None:
        if isinstance(node, (ast.Constant, ast.Name)):
            out.add(id(node))
        elif isinstance(node, ast.JoinedStr):
            for n in ast.walk(node):
                out.add(id(n))
        elif isinstance(node, ast.BinOp):
            self._mark_message(node.left, out)
            self._mark_message(node.right, out)
        elif isinstance(node, ast.IfExp):
            self._mark_message(node.body, out)
            self._mark_message(node.orelse, out)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for e in node.elts:
                self._mark_message(e, out)
        elif isinstance(node, ast.Starred):
            self._mark_message(node.value, out)
        elif isinstance(node, ast.Call) and _call_name(node) == "join":
            self._mark_message(node.func, out)
            for a in node.args:
                self._mark_message(a, out)
        elif isinstance(node, ast.Subscript):  # a message's text cut short: text[:80]
            self._mark_message(node.value, out)
        elif isinstance(node, ast.Attribute):  # "; ".join
            self._mark_message(node.value, out)

    # -- the walk ---------------------------------------------------------------------

    def run(self) -> list[Mutant]:
        self.messages: set[int] = set()
        self._collect_message_nodes(self.tree, self.messages, self.message_constants)
        for i, stmt in enumerate(self.tree.body):
            names = self._bound(stmt)
            self._stmts(stmt, [("body", i)], scope=[], func=None, top=names, in_class=False)
        seen: dict[str, int] = {}
        for k, m in enumerate(self.found):
            m.index = k
            base = m.key  # occurrence 1 so far: the key without a number
            seen[base] = seen.get(base, 0) + 1
            m.occurrence = seen[base]
            if m.func_path is None:
                m.uses = self._uses(m)
        return self.found

    def _uses(self, m: Mutant) -> list[int]:
        """Lines that can observe a module-level mutant: those reading a name its top-level
        statement binds (a def or class: every line of it, the names read elsewhere too)."""
        top = next(
            s
            for s in self.tree.body
            if min([s.lineno] + [d.lineno for d in getattr(s, "decorator_list", [])])
            <= m.line
            <= (s.end_lineno or s.lineno)
        )
        lines: set[int] = set()
        if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            lines.update(range(top.lineno, (top.end_lineno or top.lineno) + 1))
        for n in ast.walk(self.tree):
            if isinstance(n, ast.Name) and n.id in m.top_names and isinstance(n.ctx, ast.Load):
                lines.add(n.lineno)
        return sorted(lines)

    @staticmethod
    def _bound(stmt: ast.stmt) -> list[str]:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return [stmt.name]
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            return sorted({n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)})
        return []

    def _stmts(
        self,
        stmt: ast.stmt,
        path: list[Any],
        scope: list[str],
        func: list[str] | None,
        top: list[str],
        in_class: bool,
    ) -> None:
        ctx = {"scope": scope, "func": func, "top": top}
        if isinstance(stmt, ast.ImportFrom | ast.Import):
            return
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner_scope = [*scope, stmt.name]
            # decorators and defaults run when the def runs: module level for a top-level def
            for field in ("decorator_list",):
                for j, d in enumerate(stmt.decorator_list):
                    self._expr(d, [*path, (field, j)], ctx, (stmt.lineno, stmt.lineno))
            for j, d in enumerate(stmt.args.defaults):
                self._expr(d, [*path, ("args", None), ("defaults", j)], ctx, (stmt.lineno, stmt.lineno))
            inner_func = func if func is not None else [*scope, stmt.name]
            self._body(stmt, path, inner_scope, inner_func, top, False)
            return
        if isinstance(stmt, ast.ClassDef):
            for j, d in enumerate(stmt.decorator_list):
                self._expr(d, [*path, ("decorator_list", j)], ctx, (stmt.lineno, stmt.lineno))
            self._body(stmt, path, [*scope, stmt.name], func, top, True)
            return
        if self._is_docstring(stmt):
            return
        span = (stmt.lineno, stmt.end_lineno or stmt.lineno)
        if isinstance(stmt, ast.Continue):
            self._add("loop", stmt, path, ctx, span, "`continue` -> `break`", lambda n: ast.Break())
        elif isinstance(stmt, ast.Break):
            self._add("loop", stmt, path, ctx, span, "`break` -> `continue`", lambda n: ast.Continue())
        elif isinstance(stmt, ast.Return) and stmt.value is not None:
            if not (isinstance(stmt.value, ast.Constant) and stmt.value.value is None):
                self._add(
                    "return",
                    stmt,
                    path,
                    ctx,
                    span,
                    f"`{_short(stmt)}` -> `return None`",
                    lambda n: ast.Return(value=ast.Constant(None)),
                )
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self._add(
                "statement",
                stmt,
                path,
                ctx,
                span,
                f"`{_short(stmt)}` removed",
                lambda n: ast.Pass(),
            )
        elif isinstance(stmt, ast.AugAssign) and type(stmt.op) in _BINOP:
            new_op = _BINOP[type(stmt.op)]
            self._add(
                "binop",
                stmt,
                path,
                ctx,
                span,
                f"`{_SYMBOL[type(stmt.op)]}=` -> `{_SYMBOL[new_op]}=` in `{_short(stmt)}`",
                lambda n, o=new_op: ast.AugAssign(target=n.target, op=o(), value=n.value),
            )
        # expressions of this statement (headers of compound statements only)
        header_end = span[1]
        for field in ("body", "orelse", "finalbody", "handlers"):
            seq = getattr(stmt, field, None)
            if isinstance(seq, list) and seq and isinstance(seq[0], (ast.stmt, ast.excepthandler)):
                header_end = min(header_end, seq[0].lineno - 1) if seq[0].lineno > stmt.lineno else header_end
        header_end = max(header_end, stmt.lineno)
        for field, value in ast.iter_fields(stmt):
            if field in ("body", "orelse", "finalbody", "handlers", "annotation", "type_comment"):
                continue
            if isinstance(value, ast.expr):
                self._expr(value, [*path, (field, None)], ctx, (stmt.lineno, header_end))
            elif isinstance(value, list):
                for j, v in enumerate(value):
                    if isinstance(v, ast.expr):
                        self._expr(v, [*path, (field, j)], ctx, (stmt.lineno, header_end))
                    elif isinstance(v, ast.withitem):
                        self._expr(v.context_expr, [*path, (field, j), ("context_expr", None)], ctx, span)
        for field in ("body", "orelse", "finalbody"):
            seq = getattr(stmt, field, None)
            if isinstance(seq, list):
                for j, s in enumerate(seq):
                    if isinstance(s, ast.stmt):
                        self._stmts(s, [*path, (field, j)], scope, func, top, in_class)
        for j, h in enumerate(getattr(stmt, "handlers", []) or []):
            if h.type is not None:
                self._expr(h.type, [*path, ("handlers", j), ("type", None)], ctx, (h.lineno, h.lineno))
            for k, s in enumerate(h.body):
                self._stmts(s, [*path, ("handlers", j), ("body", k)], scope, func, top, in_class)

    def _body(self, node: Any, path: list[Any], scope: list[str], func: Any, top: list[str], in_class: bool):
        for j, s in enumerate(node.body):
            self._stmts(s, [*path, ("body", j)], scope, func, top, in_class)

    @staticmethod
    def _is_docstring(stmt: ast.stmt) -> bool:
        return (
            isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
        )

    def _expr(self, node: ast.expr, path: list[Any], ctx: dict[str, Any], span: tuple[int, int]) -> None:
        if isinstance(node, ast.FormattedValue):
            self._expr(node.value, [*path, ("value", None)], ctx, span)
            return  # not the format spec
        if isinstance(node, (ast.Lambda,)):
            self._expr(node.body, [*path, ("body", None)], ctx, span)
            return
        self._expr_mutants(node, path, ctx, span)
        for field, value in ast.iter_fields(node):
            if isinstance(value, ast.expr):
                self._expr(value, [*path, (field, None)], ctx, span)
            elif isinstance(value, list):
                for j, v in enumerate(value):
                    if isinstance(v, ast.expr):
                        self._expr(v, [*path, (field, j)], ctx, span)
                    elif isinstance(v, ast.comprehension):
                        for f2 in ("target", "iter"):
                            self._expr(getattr(v, f2), [*path, (field, j), (f2, None)], ctx, span)
                        for k, cond in enumerate(v.ifs):
                            self._expr(cond, [*path, (field, j), ("ifs", k)], ctx, span)
                    elif isinstance(v, ast.keyword):
                        self._expr(v.value, [*path, (field, j), ("value", None)], ctx, span)

    def _expr_mutants(self, node: ast.expr, path: list[Any], ctx: dict[str, Any], span: tuple[int, int]):
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOP:
            new_op = _BINOP[type(node.op)]

            def binop(n: ast.BinOp, o: type = new_op) -> ast.AST:
                return ast.BinOp(left=n.left, op=o(), right=n.right)

            self._add("binop", node, path, ctx, span, self._desc(node, binop), binop)
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) not in _CMP:
                    continue

                def cmp(n: ast.Compare, k: int = k) -> ast.AST:
                    ops = list(n.ops)
                    ops[k] = _CMP[type(ops[k])]()
                    return ast.Compare(left=n.left, ops=ops, comparators=n.comparators)

                self._add("compare", node, path, ctx, span, self._desc(node, cmp), cmp, choice=k)
        elif isinstance(node, ast.BoolOp):

            def boolop(n: ast.BoolOp) -> ast.AST:
                return ast.BoolOp(op=ast.Or() if isinstance(n.op, ast.And) else ast.And(), values=n.values)

            self._add("boolean", node, path, ctx, span, self._desc(node, boolop), boolop)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            self._add(
                "boolean", node, path, ctx, span, self._desc(node, lambda n: n.operand), lambda n: n.operand
            )
        elif isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                new: Any = not v
            elif isinstance(v, (int, float)):
                new = v + 1
            elif isinstance(v, str):
                new = "XX" + v + "XX" if v else "XX"
            elif isinstance(v, bytes):
                new = b"XX" + v + b"XX" if v else b"XX"
            else:
                return
            self._add(
                "constant",
                node,
                path,
                ctx,
                span,
                f"`{_short(ast.Constant(v))}` -> `{_short(ast.Constant(new))}`",
                lambda n, new=new: ast.Constant(new),
            )

    @staticmethod
    def _desc(node: ast.expr, make: Any) -> str:
        return f"`{_short(node)}` -> `{_short(make(copy.deepcopy(node)))}`"

    def _add(self, op, node, path, ctx, span, desc, make, choice: int = 0) -> None:
        message = op == "constant" and id(node) in self.messages
        if op in ("binop", "compare", "boolean", "constant") and id(node) in self.messages:
            # inside an f-string field of a message, or a literal of one
            message = True
        self.found.append(
            Mutant(
                index=len(self.found),
                op=op,
                line=node.lineno,
                scope=".".join(ctx["scope"]) or "<module>",
                desc=desc,
                message_only=message,
                path=list(path),
                choice=choice,
                func_path=ctx["func"],
                top_names=list(ctx["top"]),
                lines=[span[0], span[1]],
            )
        )
        self._makers[len(self.found) - 1] = make

    _makers: dict[int, Any]


def mutants(source: str) -> list[Mutant]:
    tree = ast.parse(source)
    w = _Walker(tree)
    w._makers = {}
    return w.run()


def mutated_tree(source: str, mutant: Mutant) -> ast.Module:
    """A fresh AST of ``source`` with ``mutant`` applied."""
    tree = ast.parse(source)
    w = _Walker(ast.parse(source))
    w._makers = {}
    found = w.run()
    same = found[mutant.index]
    if same.key != mutant.key or same.path != mutant.path:
        raise ValueError(f"mutant {mutant.index} does not match this source: {mutant.key}")
    node = _get(tree, mutant.path)
    new = w._makers[mutant.index](node)
    ast.copy_location(new, node)
    _set(tree, mutant.path, new)
    return ast.fix_missing_locations(tree)
