"""Files -> one desired ``State``, with every problem found reported at ``file:line:column``.

Two passes: first every YAML file is read, checked against the schema and its declarations
(properties, segments, topics, policy) merged; then the contact entries of every file are
expanded (single contacts, CSV seed lists, ``emails:`` shorthands) against everything
declared, so a contact in one file may use a segment declared in another.
"""

from __future__ import annotations

import gc
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resend_iac.config import checks
from resend_iac.config.csv_source import Shared, decode, read_csv
from resend_iac.config.limits import Limits, ReadProblem, inside, read_bounded
from resend_iac.config.paths import find
from resend_iac.config.yaml_loader import Map, Mark, Seq, YAMLProblem, parse
from resend_iac.errors import ResendIACError
from resend_iac.model import (
    MEMBERSHIPS,
    PROPERTY_TYPES,
    SUBSCRIPTIONS,
    UNSET,
    Contact,
    Location,
    Policy,
    Property,
    Segment,
    State,
    Topic,
    normalize_email,
)
from resend_iac.model.schema import CONTACT
from resend_iac.text import excerpt


@dataclass(frozen=True)
class Diagnostic:
    location: Location
    message: str

    def __str__(self) -> str:
        # File names and messages are printable by construction (names with a control or
        # invisible character are refused, quoted text goes through ``excerpt``); this keeps
        # a diagnostic one line whatever slipped through.
        loc = self.location
        file, message = loc.file, self.message
        if not file.isprintable():
            file = excerpt(file, 300, quote=False)
        if not message.isprintable():
            message = excerpt(message, None, quote=False)
        if not loc.line:
            return f"{file}: {message}"
        return f"{file}:{loc.line}:{loc.column}: {message}" if loc.column else f"{file}:{loc.line}: {message}"


class ConfigError(ResendIACError):
    """The configuration is not valid; ``diagnostics`` says where and why."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        lines = [str(d) for d in self.diagnostics[:20]]
        if len(self.diagnostics) > 20:
            lines.append(f"... and {len(self.diagnostics) - 20} more")
        super().__init__(f"{len(self.diagnostics)} configuration error(s):\n" + "\n".join(lines))


@dataclass
class LoadResult:
    state: State | None
    diagnostics: list[Diagnostic]
    files: list[str] = field(default_factory=list)  # YAML and CSV files read, as displayed
    # The ``broadcasts:`` sections (emulator-only seed data, never part of the state): each
    # entry with where it is declared.
    broadcasts: list[tuple[dict[str, Any], Location]] = field(default_factory=list)


def locate(root: Any, path: Iterable[Any], on_key: bool = False) -> Mark:
    """The mark of the value (or key) at ``path`` inside a parsed file; the nearest
    existing ancestor when the path goes further than the data."""
    node = root
    mark: Mark = getattr(root, "mark", (1, 1))
    steps = list(path)
    for n, step in enumerate(steps):
        last = n == len(steps) - 1
        if isinstance(node, Map) and step in node:
            mark = node.key_marks[step] if (last and on_key) else node.value_marks[step]
            node = node[step]
        elif isinstance(node, Seq) and isinstance(step, int) and 0 <= step < len(node):
            mark = node.marks[step]
            node = node[step]
        else:
            break
    return mark


@dataclass
class _File:
    display: str
    data: Map
    text: str
    bad: set[tuple[Any, ...]]  # top-level sections / contact entries with structural errors
    root: Path = Path(".")  # resolved config root: every file this one names must be inside
    root_display: str = "."


_SPLIT_RE = re.compile(r"[,;\s]+")


class Loader:
    def __init__(
        self, limits: Limits | None = None, allow_outside: Sequence[str | os.PathLike[str]] = ()
    ) -> None:
        self.allow_outside = tuple(Path(a) for a in allow_outside)
        self.diagnostics: list[Diagnostic] = []
        self.files: list[str] = []
        self.state = State()
        self._policy: dict[str, tuple[Any, Location]] = {}
        self.limits = limits
        self.roots: dict[str, tuple[Path, str]] = {}  # display -> (resolved root, root as shown)
        self.broadcasts: list[tuple[dict[str, Any], Location]] = []  # seed data: see LoadResult
        self._renames: dict[tuple[str, str], tuple[str, Location]] = {}  # (section, old) -> (new, where)

    # ------------------------------------------------------------ reporting
    def error(self, file: str, line: int, column: int, message: str) -> None:
        self.diagnostics.append(Diagnostic(Location(file, line, column), message))

    def at(self, f: _File, path: Iterable[Any], message: str, on_key: bool = False) -> Location:
        line, col = locate(f.data, path, on_key)
        loc = Location(f.display, line, col)
        self.diagnostics.append(Diagnostic(loc, message))
        return loc

    def where(self, f: _File, path: Iterable[Any], on_key: bool = False) -> Location:
        line, col = locate(f.data, path, on_key)
        return Location(f.display, line, col)

    # ------------------------------------------------------------ files
    def expand(self, paths: Sequence[str | os.PathLike[str]]) -> list[str]:
        """The YAML files to read (``paths.find``), each with its config root."""
        found, problems = find(paths, self.limits or Limits(), self.allow_outside)
        for shown, message in problems:
            self.error(shown, 0, 0, message)
        for display, root, root_shown in found:
            self.roots[display] = (root, root_shown)
        return [display for display, _, _ in found]

    def read(self, display: str) -> _File | None:
        self.files.append(display)
        limits = self.limits or Limits()
        try:
            data = read_bounded(
                Path(display), limits.max_file_bytes, "the file", Limits.env_name("max_file_bytes")
            )
        except ReadProblem as exc:
            self.error(display, 0, 0, exc.message)
            return None
        except OSError as exc:
            self.error(display, 0, 0, f"cannot read file: {exc.strerror or exc}")
            return None
        text, line, message = decode(data)
        if text is None:
            self.error(display, line, 0, message)
            return None
        try:
            parsed = parse(text, limits.max_depth, limits.max_alias_nodes)
        except YAMLProblem as p:
            self.error(display, p.line, p.column, p.message)
            return None
        if parsed is None:
            self.error(display, 1, 0, "file is empty; a resend-iac file starts with `version: 1`")
            return None
        root, root_display = self.roots.get(display, (Path(display).absolute().parent.resolve(), "."))
        f = _File(display, parsed, text, set(), root, root_display)
        for path, message, on_key in checks.file_issues(parsed):
            self.at(f, path, message, on_key)
            f.bad.add(tuple(path[:2]))
        if not isinstance(parsed, Map):
            return None
        return f

    # ------------------------------------------------------------ declarations
    def declarations(self, f: _File) -> None:
        data = f.data
        st = self.state
        seeds = data.get("broadcasts")  # emulator-only seed data (checked by the schema)
        if isinstance(seeds, Seq):
            self.broadcasts += [(dict(b), self.where(f, ("broadcasts", i))) for i, b in enumerate(seeds)]
        for key, spec in _section(data, "properties", f):
            found = checks.property_issues({"key": key, **spec}, structure=False)
            for path, message, on_key in found:
                base = ("properties", key)
                self.at(f, base if path == ("key",) else base + path, message, on_key or path == ("key",))
            loc = self.where(f, ("properties", key), on_key=True)
            if key in st.properties:
                self.at(
                    f,
                    ("properties", key),
                    f"property {excerpt(key, 60)} is already declared at {st.properties[key].location}; declare it once",
                    True,
                )
                continue
            spec = spec or {}
            if spec.get("type") not in PROPERTY_TYPES:
                continue  # reported by the schema
            fallback = spec.get("fallback_value", UNSET)
            if ("properties", key) in f.bad and not isinstance(fallback, (str, int, float, type(None))):
                fallback = UNSET
            st.properties[key] = Property(key=key, type=spec["type"], fallback_value=fallback, location=loc)
        for name, spec in _section(data, "segments", f):
            spec = spec or {}
            for path, message, on_key in checks.segment_issues({"name": name, **spec}, structure=False):
                base = ("segments", name)
                self.at(f, base if path == ("name",) else base + path, message, on_key or path == ("name",))
            loc = self.where(f, ("segments", name), on_key=True)
            if name in st.segments:
                self.at(
                    f,
                    ("segments", name),
                    f"segment {excerpt(name, 60)} is already declared at {st.segments[name].location}; declare it once",
                    True,
                )
                continue
            membership = spec.get("membership", "authoritative")
            st.segments[name] = Segment(
                name=name,
                membership=membership if membership in MEMBERSHIPS else "authoritative",
                renamed_from=self._renamed_from(f, "segments", name, spec),
                location=loc,
            )
        for name, spec in _section(data, "topics", f):
            spec = spec or {}
            for path, message, on_key in checks.topic_issues({"name": name, **spec}, structure=False):
                base = ("topics", name)
                self.at(f, base if path == ("name",) else base + path, message, on_key or path == ("name",))
            loc = self.where(f, ("topics", name), on_key=True)
            if name in st.topics:
                self.at(
                    f,
                    ("topics", name),
                    f"topic {excerpt(name, 60)} is already declared at {st.topics[name].location}; declare it once",
                    True,
                )
                continue
            st.topics[name] = Topic(
                name=name,
                default_subscription=spec.get("default_subscription", "opt_in")
                if spec.get("default_subscription", "opt_in") in SUBSCRIPTIONS
                else "opt_in",
                description=spec.get("description", UNSET),
                visibility=spec.get("visibility", UNSET),
                renamed_from=self._renamed_from(f, "topics", name, spec),
                location=loc,
            )
        policy = data.get("policy")
        if isinstance(policy, Map) and ("policy",) not in f.bad:
            for key, value in policy.items():
                if ("policy", key) in f.bad:
                    continue
                loc = self.where(f, ("policy", key), on_key=True)
                if key in self._policy and self._policy[key][0] != value:
                    first, where = self._policy[key]
                    self.at(
                        f,
                        ("policy", key),
                        f"policy {key} is {_show(value)} here but {_show(first)} at {where}; set it in one file only",
                        True,
                    )
                    continue
                self._policy.setdefault(key, (value, loc))

    def _renamed_from(self, f: _File, section: str, name: str, spec: Any) -> str | None:
        """A segment's or topic's ``renamed_from`` (None when absent or malformed), refused
        when another declaration already renames the same old name."""
        old = spec.get("renamed_from")
        if not isinstance(old, str) or not old.strip() or old == name or old != old.strip():
            return None  # absent, or reported by the checks
        claimed = self._renames.setdefault(
            (section, old), (name, self.where(f, (section, name), on_key=True))
        )
        if claimed[0] != name:
            kind = section[:-1]
            self.at(
                f,
                (section, name, "renamed_from"),
                f"{kind} {old!r} is already renamed to {claimed[0]!r} at {claimed[1]}; "
                f"one live {kind} can be renamed to one name only",
            )
            return None
        return old

    # ------------------------------------------------------------ contacts
    def contacts(self, f: _File) -> None:
        entries = f.data.get("contacts")
        if not isinstance(entries, Seq) or ("contacts",) in f.bad:
            return
        for i, entry in enumerate(entries):
            if not isinstance(entry, Map):
                continue
            if ("contacts", i) in f.bad:
                # Structure is wrong somewhere in the entry; still check the address.
                email = entry.get("email")
                if "csv" not in entry and "emails" not in entry and isinstance(email, str):
                    problem = checks.email_problem(email.strip())
                    if problem:
                        self.at(f, ("contacts", i, "email"), problem)
                continue
            if "csv" in entry:
                self.csv_entry(f, i, entry)
            elif "emails" in entry:
                self.emails_entry(f, i, entry)
            else:
                self.contact_entry(f, i, entry)

    def _refs(self, f: _File, base: tuple[Any, ...], entry: Map) -> bool:
        st = self.state
        found = checks.reference_issues(entry, st.properties, st.segments, st.topics)
        for path, message, on_key in found:
            self.at(f, base + path, message, on_key)
        return not found

    def _add(self, contact: Contact) -> None:
        self._add_many([contact])

    def _add_many(self, contacts: list[Contact]) -> None:
        """Add contacts keyed by normalised email, refusing a second declaration."""
        known = self.state.contacts
        for contact in contacts:
            key = normalize_email(contact.email)
            first = known.get(key)
            if first is None:
                known[key] = contact
                continue
            also = f" as {excerpt(first.email, 60)}" if first.email != contact.email else ""
            assert contact.location is not None  # every loaded contact has one
            self.diagnostics.append(
                Diagnostic(
                    contact.location,
                    f"contact {excerpt(contact.email, 60)} is declared twice (first at {first.location}{also}); an email may "
                    "appear only once across all files, CSVs and emails: lists (compared case-insensitively)",
                )
            )

    def contact_entry(self, f: _File, i: int, entry: Map) -> None:
        base = ("contacts", i)
        st = self.state
        found = checks.contact_issues(entry, st.properties, st.segments, st.topics, structure=False)
        for path, message, on_key in found:
            self.at(f, base + path, message, on_key)
        email = entry["email"].strip()
        if any(path[:1] == ("email",) for path, _, _ in found):
            return
        contact = Contact(
            email=email,
            **{f.name: entry.get(f.name, UNSET) for f in CONTACT.values},
            **{f.name: entry.get(f.name, f.default) for f in CONTACT.settings},
            properties=dict(entry.get("properties") or {}),
            segments=set(entry.get("segments") or ()),
            topics=dict(entry.get("topics") or {}),
            location=self.where(f, base),
        )
        self._add(contact)

    def _shared(self, entry: Map) -> Shared:
        return Shared(
            segments=set(entry.get("segments") or ()),
            topics=dict(entry.get("topics") or {}),
            properties=dict(entry.get("properties") or {}),
            fields={f.name: entry[f.name] for f in CONTACT.values if f.name in entry},
            protect=entry.get("protect"),  # None: not said; False: forget a protect (#23)
        )

    def emails_entry(self, f: _File, i: int, entry: Map) -> None:
        base = ("contacts", i)
        if not self._refs(f, base, entry):
            return
        shared = self._shared(entry)
        lines = f.text.splitlines()
        value = entry["emails"]
        if isinstance(value, Seq):
            items = [(item.strip(), value.marks[n]) for n, item in enumerate(value)]
        else:
            items = []
            line, col = locate(f.data, base + ("emails",))
            cursor = (line - 1, col - 1)  # 0-based search position in the raw text
            for token in _SPLIT_RE.split(value):
                if not token:
                    continue
                mark, cursor = _find(lines, token, cursor)
                items.append((token, mark or (line, col)))
        if not items:
            self.at(f, base + ("emails",), "emails: lists no addresses; add some or remove the entry")
        for email, (line, col) in items:
            loc = Location(f.display, line, col)
            problem = checks.email_problem(email)
            if problem:
                self.diagnostics.append(Diagnostic(loc, problem))
                continue
            self._add(
                Contact(
                    email=email,
                    **shared.fields,
                    properties=dict(shared.properties),
                    segments=set(shared.segments),
                    topics=dict(shared.topics),
                    protect=shared.protect,
                    location=loc,
                )
            )

    def csv_entry(self, f: _File, i: int, entry: Map) -> None:
        base = ("contacts", i)
        refs_ok = self._refs(f, base, entry)
        rel = entry["csv"].strip()
        if not rel:
            self.at(f, base + ("csv",), "csv: needs the path of a CSV file, relative to this YAML file")
            return
        if not rel.isprintable():
            self.at(
                f,
                base + ("csv",),
                "csv: the path holds a control character (e.g. a NUL byte) or an invisible one; "
                "name a plain file",
            )
            return
        if os.path.isabs(rel) or rel.startswith("~"):
            self.at(
                f,
                base + ("csv",),
                f"csv: {excerpt(rel)} is not a relative path; name a file inside {f.root_display} (the "
                "config root), relative to this YAML file. Nothing was read",
            )
            return
        path = Path(f.display).parent / rel
        display = os.path.normpath(os.path.join(os.path.dirname(f.display), rel))
        if not inside(path, f.root):
            self.at(
                f,
                base + ("csv",),
                f"csv: {excerpt(rel)} leads outside {f.root_display} (the config root: the directory given, "
                "or the given file's directory), through '..' or a symlink; keep seed lists inside it. "
                "Nothing was read",
            )
            return
        columns = entry.get("columns")
        limits = self.limits or Limits()
        contacts, problems = read_csv(
            path, display, columns, self.state.properties, self._shared(entry), limits
        )
        self.files.append(display)
        for kind, where, message in problems:
            if kind == "csv":
                self.error(display, where, 0, message)
            elif kind == "columns":
                self.at(f, base + ("columns", where), message, on_key=True)
            else:
                self.at(f, base + ("csv",), message)
        if refs_ok:
            self._add_many(contacts)

    # ------------------------------------------------------------ all
    def run(self, paths: Sequence[str | os.PathLike[str]]) -> LoadResult:
        # Loading allocates many small objects and frees none: the cyclic GC would only
        # re-scan them over and over (a third of the time for big files).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(paths)
        finally:
            if enabled:
                gc.enable()

    def _run(self, paths: Sequence[str | os.PathLike[str]]) -> LoadResult:
        if self.limits is None:
            try:
                self.limits = Limits.from_env()
            except ValueError as exc:
                self.error("environment", 0, 0, str(exc))
                return LoadResult(None, self.diagnostics, self.files)
        most = self.limits.max_errors
        files = []
        for display in self.expand(paths):
            if len(self.diagnostics) >= most:
                break
            f = self.read(display)
            if f is not None:
                files.append(f)
        for step in (self.declarations, self.contacts):
            for f in files:
                if len(self.diagnostics) < most:
                    step(f)
        self.state.policy = Policy(**{k: v for k, (v, _) in self._policy.items()})
        diags = sorted(self.diagnostics, key=lambda d: (d.location.file, d.location.line, d.location.column))
        if len(diags) > most:  # the first ones, in file order, and one line for the rest
            where = Location(os.fspath(paths[0]) if paths else ".", 0)
            diags = diags[:most] + [
                Diagnostic(
                    where,
                    f"stopped after {most:,} errors; fix these first (or raise the limit with "
                    f"{Limits.env_name('max_errors')})",
                )
            ]
        return LoadResult(None if diags else self.state, diags, self.files, self.broadcasts)


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (bool, int, float, type(None))) else excerpt(value, 60)


def _section(data: Map, name: str, f: _File) -> list[tuple[str, Any]]:
    section = data.get(name)
    if not isinstance(section, Map):
        return []
    return [(k, v if isinstance(v, Map) else {}) for k, v in section.items()]


def _find(lines: list[str], token: str, cursor: tuple[int, int]) -> tuple[Mark | None, tuple[int, int]]:
    """Find ``token`` in the raw text from ``cursor`` on (0-based line, column)."""
    line, col = cursor
    for n in range(line, min(len(lines), line + 10_000)):
        at = lines[n].find(token, col if n == line else 0)
        if at >= 0:
            return (n + 1, at + 1), (n, at + len(token))
    return None, cursor


def read(
    paths: Sequence[str | os.PathLike[str]], *, allow_outside: Sequence[str | os.PathLike[str]] = ()
) -> LoadResult:
    """Load and check ``paths`` (YAML files or directories of them). Each path must be a real
    file or directory (not a symlink) inside the working directory, unless it lies in one of
    ``allow_outside`` (a local user's explicit choice: ``--allow-outside``)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return Loader(allow_outside=allow_outside).run(paths)


def validate(
    paths: Sequence[str | os.PathLike[str]], *, allow_outside: Sequence[str | os.PathLike[str]] = ()
) -> tuple[State | None, list[Diagnostic]]:
    """``(state, [])`` when valid, ``(None, diagnostics)`` otherwise. No network."""
    result = read(paths, allow_outside=allow_outside)
    return result.state, result.diagnostics


def load(
    paths: Sequence[str | os.PathLike[str]], *, allow_outside: Sequence[str | os.PathLike[str]] = ()
) -> State:
    """The desired state declared by ``paths``; raises ``ConfigError`` when invalid."""
    result = read(paths, allow_outside=allow_outside)
    if result.state is None:
        raise ConfigError(result.diagnostics)
    return result.state
