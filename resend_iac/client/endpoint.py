"""Which API endpoints the client trusts with the key, and what it says when it does not.

- The base URL is ``https://``; plain ``http://`` only to a loopback address (``127.0.0.0/8``,
  ``::1``, ``localhost``: the emulator on this machine). Anything else would carry the key in
  clear text over the network, so it is refused before the first request.
- A redirect (3xx) is an error naming the URL and its ``Location``: the client never follows
  one (the key would go to wherever it points, and the real API does not redirect).

A leaf module: it imports nothing of ours.
"""

from __future__ import annotations

import ipaddress

import httpx

LOOPBACK_NAMES = frozenset({"localhost"})
MAX_QUOTED = 200  # characters of a URL or header quoted in a message


def quoted(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` as a message may quote it: cut at ``limit`` characters, every character that
    is not printable (newlines, escapes, bidi controls) written as ``\\uXXXX``."""
    cut = text[:limit]
    shown = "".join(ch if ch.isprintable() and ch != "\\" else f"\\u{ord(ch):04x}" for ch in cut)
    return shown + ("..." if len(text) > limit else "")


def is_loopback(host: str) -> bool:
    """``host`` (a URL's host, IPv6 with or without brackets) names this machine."""
    name = host.strip("[]").rstrip(".").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def endpoint_problem(url: str) -> tuple[str, str] | None:
    """Why the client must not send the key to ``url``, as (error name, message); None if fine."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        return "invalid_url", f"the API URL '{quoted(str(url))}' is not http(s)://host[:port]"
    if parsed.scheme == "http" and not is_loopback(parsed.host):
        return (
            "insecure_url",
            f"the API URL '{quoted(str(url))}' is plain http to {quoted(parsed.host)}, which would "
            "send the API key unencrypted: use https:// (plain http is allowed only to a loopback "
            "address such as 127.0.0.1 or localhost, for the emulator)",
        )
    return None


def redirect_message(response: httpx.Response) -> str:
    """What a 3xx answer is told as: the URL asked, the status and where it points."""
    location = response.headers.get("location")
    where = f"to '{quoted(location)}'" if location else "with no Location"
    return (
        f"the API at '{quoted(str(response.request.url))}' answered {response.status_code} "
        f"{quoted(response.reason_phrase or 'redirect', 60)} {where}; resend-iac follows no "
        "redirects (the API key would be sent there) and sent nothing to it. Set RESEND_API_URL "
        "to the address that answers itself"
    )
