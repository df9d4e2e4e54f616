"""Masking of API keys in anything resend-iac prints: a second line of defence.

Nothing resend-iac writes should ever hold an API key (the key is never formatted into a
message, and errors never quote more than a short excerpt of a file), but a file, a server's
answer or an exception text might. ``mask_secrets`` replaces every string that looks like a
Resend API key (``re_`` followed by a long token with at least one digit) by ``re_****``;
render outputs (text, Markdown, JSON) and the CLI's error output pass through it.
"""

from __future__ import annotations

import logging
import re

__all__ = ["MASK", "SECRET_RE", "SecretFilter", "install_log_filter", "mask_secrets"]

MASK = "re_****"
# ``re_`` + 16 or more key characters, one of them a digit (real keys look like
# ``re_AbC12345_XyZ...``; property keys such as ``re_engaged_customer`` do not); not in the
# middle of a word, not an email's local part (possessive: no backtracking to dodge ``@``).
SECRET_RE = re.compile(r"(?<![A-Za-z0-9_])re_(?=[A-Za-z0-9_\-]*[0-9])[A-Za-z0-9_\-]{16,}+(?!@)")


def mask_secrets(text: str) -> str:
    """``text`` with every API-key-looking string replaced by ``re_****``."""
    if "re_" not in text:
        return text
    return SECRET_RE.sub(MASK, text)


class SecretFilter(logging.Filter):
    """Masks API-key-looking strings in the log records of the logger it is attached to."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


LOGGERS = ("resend_iac", "resend_iac.client", "resend_iac.engine", "resend_iac.emulator")


def install_log_filter(names: tuple[str, ...] = LOGGERS) -> None:
    """Attach a ``SecretFilter`` to our loggers (a logger's filters see only its own
    records, so each named one gets it); idempotent. The CLI calls it at start-up."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretFilter) for f in logger.filters):
            logger.addFilter(SecretFilter())
