"""URLs that may hold secrets: RPC providers put API keys in the path, the query or the
user info (``https://mainnet.example/v3/KEY``), and none of it may reach a log, an error
message or a URL we print."""

from __future__ import annotations

import re
from urllib.parse import urlparse

__all__ = ["is_loopback", "redact_secrets", "redact_url"]

_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?:[^\s/@'\"]*@)?([^\s/?#@'\"]+)([^\s'\"]*)")
_URL_TAIL = re.compile(r"(?i)\b((?:with|for) url: )/\S*")

#: The shortest URL piece :func:`redact_url` treats as a possible key.
_SECRET_MIN = 6


def redact_secrets(text: str) -> str:
    """``text`` with every URL cut to its scheme and host, and the ``url: /path`` tails of
    HTTP client errors dropped."""

    def cut(match: re.Match[str]) -> str:
        rest = "/…" if match.group(3).strip("/") else ""
        return f"{match.group(1)}{match.group(2)}{rest}"

    return _URL_TAIL.sub(r"\1/…", _URL.sub(cut, text))


def redact_url(text: str, url: str) -> str:
    """``text`` with nothing of ``url`` that may hold a secret.

    HTTP libraries repeat a URL's pieces on their own ("Max retries exceeded with url:
    /v3/<key>"). :func:`redact_secrets` cuts every URL and such tails; then the URL's path,
    query and password become "…" where they still appear, when long enough to be a key
    (short ones, like ``/rpc``, are also common words).
    """
    text = redact_secrets(text)
    parsed = urlparse(url)
    path_and_query = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    pieces = {
        piece
        for piece in (path_and_query, parsed.path, parsed.query, parsed.password)
        if piece and len(piece.strip("/?")) >= _SECRET_MIN
    }
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "…")
    return text


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (where anvil's public dev keys may be used)."""
    host = urlparse(url).hostname or ""
    return host in {"localhost", "127.0.0.1", "::1"} or host.startswith("127.")
