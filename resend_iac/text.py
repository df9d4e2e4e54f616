"""The one way text from a file (or from the API) is quoted in anything resend-iac prints.

Files come from whoever opened a pull request, and what resend-iac prints goes to a CI log
(where a line starting with ``::`` is a workflow command), a pull request comment (Markdown)
and a terminal (where an escape sequence moves the cursor). So every piece of file content
or file name that a message, a diagnostic or a plan quotes passes through ``excerpt``:

- API keys masked (``mask_secrets``);
- cut to ``limit`` characters, with the full length said (``'abc'... (3,000 characters)``);
- every character that does not print (control characters such as newline and ESC, the
  invisible format characters of Unicode category Cf: zero-width, soft hyphen, BOM,
  direction overrides; line and paragraph separators; unassigned code points) shown as an
  escape (``\\n``, ``\\x1b``, ``\\u202e``), so a quoted piece is always one visible line and
  two different texts never print the same.

A leaf module: it imports nothing of ours but ``secrets``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from resend_iac.secrets import mask_secrets

__all__ = ["excerpt", "invisible", "printable"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)


def printable(text: str) -> bool:
    """Whether ``text`` prints as itself on one line (nothing ``excerpt`` would escape)."""
    return text.isprintable() and "\\" not in text


def excerpt(text: Any, limit: int | None = 40, *, quote: bool = True) -> str:
    """``text`` as it may be printed: API keys masked, at most ``limit`` characters
    (``None``: all of it) and every non-printing character escaped.

    ``quote=True`` (messages): in single quotes, like ``repr`` (``'a\\nb'``), with
    ``... (N characters)`` after a cut. ``quote=False`` (file names at the start of a
    diagnostic, names in a plan): bare, backslashes doubled so the escapes stay unambiguous.
    """
    text = mask_secrets(str(text))
    cut = limit is not None and len(text) > limit
    shown = text[:limit] if cut else text
    if quote:
        out = repr(shown)
    else:
        out = shown if printable(shown) else _escape(shown)
    if cut:
        out += f"... ({len(text):,} characters)"
    return out


def invisible(text: str) -> str | None:
    """``'U+200B (ZERO WIDTH SPACE) at character 4'`` for the first character of ``text``
    that prints nothing or moves text around (Unicode categories Cc and Cf: control
    characters, soft hyphen, zero-width characters, direction overrides, BOM), or ``None``."""
    if text.isascii() and text.isprintable():
        return None
    for n, ch in enumerate(text, 1):
        if unicodedata.category(ch) in ("Cc", "Cf"):
            name = unicodedata.name(ch, "a control character")
            return f"U+{ord(ch):04X} ({name}) at character {n}"
    return None
