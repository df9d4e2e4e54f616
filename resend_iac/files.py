"""Reading a file that came from someone else (a config, a CSV, a plan file): bounded.

Used by config/ (YAML and CSV files) and the engine (saved plans): one function, so every
untrusted file is read the same way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MiB = 1024 * 1024


class ReadProblem(Exception):
    """A file could not be read within the limits; ``message`` says why (no contents)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
