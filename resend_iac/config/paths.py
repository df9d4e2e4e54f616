"""Which files a command reads: the paths given on the command line (each a **config root**,
or a file whose directory is its root) and the YAML files found in a directory given.

In CI the pull request writes the config root itself (``pr/resend``), so a path given must be
a real file or directory (not a symlink, nor under one) inside the directory the command runs
in (``root_problem``): otherwise it is refused at once, nothing read and nothing of what it
points at quoted, unless the user names it with ``--allow-outside`` (local use; a workflow
never does). A directory walk is bounded (``Limits.max_files`` entries, ``max_dir_depth``
levels) and stops at its first problem with one message, rather than one per file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from resend_iac.config.limits import Limits, inside
from resend_iac.text import excerpt


def _is_link(path: str) -> bool:
    try:
        return os.path.islink(path)
    except (OSError, ValueError):  # a NUL byte
        return True


def root_problem(raw: str, cwd: Path, allow_outside: tuple[Path, ...] = ()) -> str | None:
    """Why the path given on the command line (a config root: file or directory) may not be
    read, or ``None``. It must not be a symlink (nor any directory on the way to it below
    ``cwd``), and it must resolve inside ``cwd``, the directory the command runs in; a path
    inside one of ``allow_outside`` (the user's ``--allow-outside``) is exempt. The answer
    quotes nothing a symlink points at."""
    given = Path(os.path.abspath(raw))
    try:
        resolved = Path(raw).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        resolved = None
    for allowed in allow_outside:
        for base in {Path(os.path.abspath(allowed)), _resolved(allowed)}:
            if base is not None and (
                given.is_relative_to(base) or (resolved is not None and resolved.is_relative_to(base))
            ):
                return None
    hint = "Nothing was read. For local use only, --allow-outside PATH reads it anyway"
    steps = [raw]
    if not os.path.isabs(raw):
        parts = Path(raw).parts
        steps = [os.path.join(*parts[: n + 1]) for n in range(len(parts))]
    for n, step in enumerate(steps):
        if _is_link(step):
            which = "is" if n == len(steps) - 1 else "lies in a directory that is"
            return (
                f"this path {which} a symlink: a config root must be a real file or directory (a symlink "
                f"in a pull request could lead anywhere on the machine): name the real one. {hint}"
            )
    if resolved is None or not resolved.is_relative_to(cwd):
        return (
            "this path leads outside the directory resend-iac runs in; run it from a directory that "
            f"holds the files. {hint}"
        )
    return None


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def find(
    paths: Sequence[str | os.PathLike[str]],
    limits: Limits,
    allow_outside: Sequence[str | os.PathLike[str]] = (),
) -> tuple[list[tuple[str, Path, str]], list[tuple[str, str]]]:
    """The YAML files to read, each with its config root: a directory given is the root
    of the files found in it (read recursively without following symlinked directories;
    a file that resolves outside it is refused), for a file given, the root is its own
    directory. A path given that is a symlink or resolves outside the working directory
    is refused (``root_problem``) unless it is inside one of ``allow_outside``."""
    out: list[tuple[str, Path, str]] = []
    problems: list[tuple[str, str]] = []
    allowed = tuple(Path(a) for a in allow_outside)
    seen: set[Path] = set()
    cwd = Path.cwd().resolve()
    for raw in paths:
        shown = os.fspath(raw)
        if not shown.isprintable():
            problems.append(
                (
                    excerpt(shown, 200, quote=False),
                    "the path holds a control or invisible character; name a plain path. Nothing was read",
                )
            )
            continue
        p = Path(raw)
        if not os.path.lexists(p):
            problems.append((shown, "no such file or directory"))
            continue
        problem = root_problem(shown, cwd, allowed)
        if problem:
            problems.append((shown, problem))
            continue
        if p.is_dir():
            root = p.resolve()
            found, walk_problem = walk(p, shown, root, limits)
            if walk_problem:
                problems.append(walk_problem)
            if found is None:
                continue
            if not found:
                problems.append((shown, "no .yaml or .yml files in this directory"))
            for q in found:
                display = os.path.join(shown, os.fspath(q.relative_to(p)))
                if q.resolve() not in seen:
                    seen.add(q.resolve())
                    out.append((display, root, shown))
        elif p.exists():
            if p.resolve() not in seen:
                seen.add(p.resolve())
                out.append((shown, p.absolute().parent.resolve(), os.path.dirname(shown) or "."))
        else:
            problems.append((shown, "no such file or directory"))
    return out, problems


def walk(
    top: Path, shown: str, root: Path, limits: Limits
) -> tuple[list[Path] | None, tuple[str, str] | None]:
    """The ``.yaml``/``.yml`` files under ``top`` (sorted; hidden files and directories
    skipped; symlinked directories not followed), or ``None`` and the first problem
    (``(path as shown, message)``): more entries than ``max_files``, nested deeper than ``max_dir_depth``, a
    directory that cannot be read, a name with a control or invisible character, a file
    that is a symlink leading outside the root. Nothing under ``top`` is read then."""
    found: list[Path] = []
    entries = 0
    failed: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=failed.append):
        if failed:
            break
        here = Path(dirpath)
        depth = len(here.relative_to(top).parts)
        entries += len(dirnames) + len(filenames)
        problem = None
        if entries > limits.max_files:
            problem = (
                f"this directory holds more than {limits.max_files:,} files and directories; point "
                "resend-iac at the directory of the declared files (or raise the limit with "
                f"{Limits.env_name('max_files')})"
            )
        elif depth > limits.max_dir_depth:
            problem = (
                f"directories are nested more than {limits.max_dir_depth} deep here; point resend-iac at "
                f"the directory of the declared files (or raise the limit with {Limits.env_name('max_dir_depth')})"
            )
        else:
            odd = next((n for n in dirnames + filenames if not n.isprintable()), None)
            if odd is not None:
                problem = (
                    f"{excerpt(os.path.join(*here.relative_to(top).parts, odd), 80)} has a control "
                    "or invisible character in its name; rename it"
                )
        if problem:
            return None, (shown, problem + f". Nothing under {shown} was read")
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            q = here / name
            if q.suffix in (".yaml", ".yml") and not name.startswith("."):
                found.append(q)
    if failed:
        message = (
            f"cannot read a directory in it ({failed[0].strerror or 'error'}). Nothing under {shown} was read"
        )
        return None, (shown, message)
    found.sort()
    found = [q for q in found if q.is_file() or q.is_symlink()]
    outside = [q for q in found if not inside(q, root)]
    if outside:
        more = len(outside) - 1
        return None, (
            os.path.join(shown, os.fspath(outside[0].relative_to(top))),
            f"this file is a symlink that leads outside {shown} (the config root)"
            + (f", and so do {more} more file{'s' if more != 1 else ''}" if more else "")
            + f"; keep every file inside it. Nothing under {shown} was read",
        )
    return found, None
