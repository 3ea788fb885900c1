"""A tiny JSON-over-HTTP GET used by the network skills (stdlib only, explicit timeout, no keys)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

USER_AGENT = "Mozilla/5.0 (compatible; chathuman_hf skills)"


class ServiceUnavailable(RuntimeError):
    """The remote service could not be reached or answered with something unusable."""


class NotFound(LookupError):
    """The remote service answered but knows nothing about what was asked."""


def get_json(url: str, params: dict[str, Any] | None = None, *, timeout: float = 5.0) -> Any:
    """GET ``url?params`` and decode JSON; network trouble → ``ServiceUnavailable``, HTTP 404 → ``NotFound``."""
    if params:
        url = f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http/https URLs from config)
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise NotFound(f"{url}: 404") from exc
        raise ServiceUnavailable(f"{url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ServiceUnavailable(f"{url}: {exc}") from exc
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ServiceUnavailable(f"{url}: the answer is not JSON ({exc})") from exc
