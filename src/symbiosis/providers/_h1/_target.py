"""Where a URL's requests go, worked out once per URL string, and the bytes of a request.

Providers post to the same few URLs, so everything that depends on the URL alone (the
origin, the request line, the ``Host`` header, whether a proxy is configured for it) is
computed on first use and cached; a request only adds its headers and body.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Framing and encoding are the pool's business: a caller's value would contradict ours.
_OWN_HEADERS = frozenset(("host", "content-length", "transfer-encoding", "accept-encoding"))
_AGENT = "user-agent: symbiosis\r\n"
# Never ask for a compressed body: LLM answers are small and decoding costs CPU.
_TAIL = "accept-encoding: identity\r\ncontent-length: "
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"

Origin = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Target:
    """One URL as the pool sees it. ``direct`` is False when the pool leaves it to httpx:
    a proxy is configured for it, or it has credentials, a non-ASCII host or a scheme
    other than http(s)."""

    origin: Origin
    direct: bool
    prefix: str = ""

    @property
    def tls(self) -> bool:
        return self.origin[0] == "https"

    def request(self, content: bytes, headers: Mapping[str, str]) -> bytes:
        """The request's bytes, head and body, for one ``transport.write``."""
        lines = []
        agent = True
        for name, value in headers.items():
            lower = name.lower()
            if lower in _OWN_HEADERS:
                continue
            if lower == "user-agent":
                agent = False
            lines.append(f"{name}: {value}\r\n")
        if agent:
            lines.append(_AGENT)
        block = "".join(lines)
        # One CRLF per line; any other means a name or value smuggled a line in.
        if block.count("\n") != len(lines) or block.count("\r") != len(lines):
            raise ValueError("header names and values must not contain CR or LF")
        head = f"{self.prefix}{block}{_TAIL}{len(content)}\r\n\r\n"
        return head.encode() + content


def parse_target(url: str) -> Target:
    """The pool's view of ``url``; never raises for a URL httpx could still try."""
    try:
        split = urlsplit(url)
        scheme, host, port = split.scheme.lower(), split.hostname, split.port
    except ValueError:
        return Target(("", url, 0), direct=False)
    if scheme not in _DEFAULT_PORTS or not host or not host.isascii() or split.username:
        return Target((scheme, host or "", 0), direct=False)
    port = port or _DEFAULT_PORTS[scheme]
    origin = (scheme, host, port)
    if _proxied(scheme, host):
        return Target(origin, direct=False)
    authority = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        authority = f"{authority}:{port}"
    target = quote(split.path or "/", safe=_PATH_SAFE)
    if split.query:
        target = f"{target}?{quote(split.query, safe=_QUERY_SAFE)}"
    return Target(origin, direct=True, prefix=f"POST {target} HTTP/1.1\r\nhost: {authority}\r\n")


def _proxied(scheme: str, host: str) -> bool:
    """Whether the environment sends ``scheme://host`` through a proxy (httpx would)."""
    proxies = urllib.request.getproxies()
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)
