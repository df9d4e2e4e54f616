"""Bounds on what reading the files may cost, and confinement of the files a config names.

The files come from whoever opened a pull request, while an API key sits in the
environment, so reading them is bounded (file size, CSV rows, YAML nesting depth and alias
expansion) and every file a config references must resolve, symlinks followed, inside the
**config root**: the directory given on the command line, or the given file's directory.

The limits come from the environment, not from the files: a file cannot raise its own limit.
A team that needs more sets, e.g. in its CI workflow:

- ``RESEND_IAC_MAX_FILE_BYTES``   (64 MiB)  a YAML file's size
- ``RESEND_IAC_MAX_CSV_BYTES``    (512 MiB) a CSV file's size
- ``RESEND_IAC_MAX_CSV_ROWS``     (2,000,000) lines of one CSV file
- ``RESEND_IAC_MAX_DEPTH``        (32)      nesting of mappings and lists in a YAML file
- ``RESEND_IAC_MAX_ALIAS_NODES``  (250,000) values that YAML aliases (``*name``, ``<<: *name``)
  add to a file when expanded; a "billion laughs" file is refused before anything is expanded
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, fields
from pathlib import Path

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 64 * MiB
    max_csv_bytes: int = 512 * MiB
    max_csv_rows: int = 2_000_000
    max_depth: int = 32
    max_alias_nodes: int = 250_000

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


class ReadProblem(Exception):
    """A file could not be read within the limits; ``message`` says why (no contents)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) inside the resolved ``root``."""
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return False


def read_bounded(path: Path, limit: int, what: str, env: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; ``ReadProblem`` otherwise.

    Opens first and checks the opened file (no race between the check and the read), and
    never reads more than ``limit + 1`` bytes whatever the file claims.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(str(path))
        if not stat.S_ISREG(st.st_mode):
            raise ReadProblem(f"{what} is not a regular file (a device, pipe or socket); nothing was read")
        if st.st_size > limit:
            raise ReadProblem(
                f"{what} is {st.st_size:,} bytes, more than the limit of {limit:,} bytes; "
                f"split it, or raise the limit with {env}"
            )
        # What the file claims, then on in small chunks until EOF or past the limit (never
        # read(limit + 1): that would allocate the whole limit up front).
        chunks = [f.read(st.st_size + 1)]
        size = len(chunks[0])
        while chunks[-1] and size <= limit:
            chunks.append(f.read(min(MiB, limit + 1 - size)))
            size += len(chunks[-1])
        data = b"".join(chunks)
    if len(data) > limit:
        raise ReadProblem(
            f"{what} is more than the limit of {limit:,} bytes; split it, or raise the limit with {env}"
        )
    return data
