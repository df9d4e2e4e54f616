"""Bounds on what reading the files may cost, and confinement of the files a config names.

The files come from whoever opened a pull request, while an API key sits in the
environment, so reading them is bounded (file size, CSV rows, YAML nesting depth and alias
expansion, directory walks, errors reported) and every file a config references must
resolve, symlinks followed, inside the **config root**: the directory given on the command
line, or the given file's directory. The config root itself (every path given) must not be
a symlink and must resolve inside the directory the command runs in (``paths.root_problem``),
unless the user names it with ``--allow-outside`` (local use only; a workflow never does).

The limits come from the environment, not from the files: a file cannot raise its own limit.
A team that needs more sets, e.g. in its CI workflow:

- ``RESEND_IAC_MAX_FILE_BYTES``   (64 MiB)  a YAML file's size
- ``RESEND_IAC_MAX_CSV_BYTES``    (512 MiB) a CSV file's size
- ``RESEND_IAC_MAX_CSV_ROWS``     (2,000,000) lines of one CSV file
- ``RESEND_IAC_MAX_DEPTH``        (32)      nesting of mappings and lists in a YAML file
- ``RESEND_IAC_MAX_ALIAS_NODES``  (250,000) values that YAML aliases (``*name``, ``<<: *name``)
  add to a file when expanded; a "billion laughs" file is refused before anything is expanded
- ``RESEND_IAC_MAX_FILES``        (10,000)  entries (files and directories) a directory walk
  looks at
- ``RESEND_IAC_MAX_DIR_DEPTH``    (16)      directories nested below a directory given
- ``RESEND_IAC_MAX_ERRORS``       (1,000)   errors reported before reading stops
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from resend_iac.files import MiB, ReadProblem, read_bounded

__all__ = ["Limits", "MiB", "ReadProblem", "inside", "read_bounded"]


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 64 * MiB
    max_csv_bytes: int = 512 * MiB
    max_csv_rows: int = 2_000_000
    max_depth: int = 32
    max_alias_nodes: int = 250_000
    max_files: int = 10_000
    max_dir_depth: int = 16
    max_errors: int = 1_000

    @staticmethod
    def env_name(name: str) -> str:
        return "RESEND_IAC_" + name.upper()

    @classmethod
    def from_env(cls, environ: "os._Environ[str] | dict[str, str] | None" = None) -> "Limits":
        """The limits, with ``RESEND_IAC_MAX_*`` overrides; ``ValueError`` names a bad one."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(cls.env_name(f.name))
            if raw is None or raw.strip() == "":
                continue
            try:
                value = int(raw.strip().replace("_", ""))
            except ValueError:
                value = -1
            if value < 1:
                raise ValueError(
                    f"{cls.env_name(f.name)}={raw[:20]!r} is not a positive whole number "
                    f"(the default is {f.default:,})"
                )
            values[f.name] = value
        return cls(**values)


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) inside the resolved ``root``."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return False
