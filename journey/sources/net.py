"""The sockets under every connector: a total deadline, and a guard for addresses typed in Slack.

Why a layer under httpx rather than checks around it:

- **Deadlines.** httpx's timeouts are per socket operation: a server that sends
  one byte every 20 s never trips a 60 s read timeout, in its headers or its
  body, so a request could run for hours. Here every connect, TLS handshake,
  read and write gets a timeout of at most the time left before the deadline
  in force (`deadline_scope`), and one past it fails at once as a timeout. The
  deadline is a context variable, so the sync (hours) and each request within
  it (minutes) nest: the earlier one wins.
- **Addresses from Slack.** A store address typed into the connect modal could
  name `127.0.0.1`, `169.254.169.254` or any host on the server's own network.
  With `guard=True` the host is resolved here, every address it resolves to
  must be public (not loopback, private, link-local, unique-local, multicast,
  unspecified or reserved), and the socket connects to the very address that
  was checked. So a name that resolves to a public address for the check and to
  a private one a moment later (DNS rebinding) cannot slip through: there is no
  second look-up. TLS still verifies the certificate against the host name.

`transport(guard=...)` is the httpx transport built on this; `check_address`
is the same rule run ahead of time, for a clear error at connect.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import ssl
import time
import typing
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpcore
import httpx

from journey.errors import JourneyError

SOCKET_OPTION = typing.Any

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "journey_http_deadline", default=None
)


# --- deadlines ----------------------------------------------------------------------


def current_deadline() -> float | None:
    """The `time.monotonic()` by which the current request or sync must be done (None: none)."""
    return _deadline.get()


@contextlib.contextmanager
def deadline_scope(seconds: float | None) -> Iterator[float | None]:
    """Every socket operation in the block ends by `seconds` from now, or by the deadline
    already in force if that is sooner. Yields the deadline in force (monotonic time)."""
    outer = _deadline.get()
    ends = outer
    if seconds is not None:
        mine = time.monotonic() + max(0.0, seconds)
        ends = mine if outer is None else min(outer, mine)
    token = _deadline.set(ends)
    try:
        yield ends
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    ends = _deadline.get()
    return None if ends is None else ends - time.monotonic()


def _clamp(timeout: float | None, expired: type[Exception]) -> float | None:
    left = remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise expired("the deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every operation ends by the deadline in force."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


# --- which addresses may be reached -------------------------------------------------


class AddressRefused(JourneyError):
    """An address typed in Slack leads somewhere journey does not connect to.

    The message says what to do and never what the host resolved to, nor anything
    the remote end said: that would let a workspace admin map the server's network.
    """


REFUSED_WORDS = (
    "journey connects only to public internet addresses for a store typed in Slack, and "
    "{host} leads to a local, private or reserved one. Enter the store's public https:// "
    "address; a store on a private network can be added by your journey operator with "
    "`journey sources add`."
)


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `ip` is an ordinary internet address (the rule for addresses from Slack)."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return is_public(mapped)
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64: the IPv4 inside decides
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
        or not ip.is_global
    )


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, each checked public; AddressRefused otherwise."""
    name = host.strip("[]")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise AddressRefused(
            f"{host} could not be found (no such host name). Check the store's address "
            "and connect again."
        ) from None
    addresses = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not is_public(ip):
            raise AddressRefused(REFUSED_WORDS.format(host=host))
        if str(ip) not in addresses:
            addresses.append(str(ip))
    if not addresses:
        raise AddressRefused(REFUSED_WORDS.format(host=host))
    return addresses


def check_address(url: str) -> None:
    """Refuse a URL (typed in Slack) whose host is not a public internet address, now."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AddressRefused(f"{url!r} has a port that is not a number.") from None
    if not host:
        raise AddressRefused("The store's address has no host name: enter https://your-store")
    resolve(host, port)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, guard: bool) -> None:
        self._inner = httpcore.SyncBackend()
        self._guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        targets = resolve(host, port) if self._guard else [host]
        error: Exception | None = None
        for target in targets:  # connect to the address checked, never a new look-up
            try:
                stream = self._inner.connect_tcp(
                    target,
                    port,
                    _clamp(timeout, httpcore.ConnectTimeout),
                    local_address,
                    socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return _DeadlineStream(stream)
        assert error is not None
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if self._guard:
            raise AddressRefused(
                "journey does not connect to local sockets for a store typed in Slack."
            )
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _on_backend(made: httpx.HTTPTransport, guard: bool) -> httpx.HTTPTransport:
    # httpx builds its httpcore pool without a way to pass a network backend; the pool
    # reads it from this attribute for every new connection.
    made._pool._network_backend = _Backend(guard)  # type: ignore[union-attr]
    return made


def proxy_mounts(*, guard: bool) -> dict[str, httpx.BaseTransport | None]:
    """The proxies of the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY), read
    by httpx's own rule, each on this socket layer so deadlines hold through them.

    None for a guarded client: a proxy makes the connection itself, so the address
    it reaches could not be checked here; an address typed in Slack is reached directly.
    """
    if guard:
        return {}
    try:
        from httpx._utils import get_environment_proxies  # httpx's reading of the variables
    except ImportError:  # pragma: no cover (a future httpx)
        return {}
    mounts: dict[str, httpx.BaseTransport | None] = {}
    for pattern, proxy in get_environment_proxies().items():
        if proxy is None:
            mounts[pattern] = None  # NO_PROXY: straight through the default transport
            continue
        try:
            mounts[pattern] = _on_backend(httpx.HTTPTransport(proxy=proxy), guard=False)
        except (ImportError, ValueError) as exc:  # e.g. socks5:// without socksio
            raise JourneyError(
                f"The proxy for {pattern} cannot be used ({exc}); fix HTTP_PROXY/HTTPS_PROXY."
            ) from None
    return mounts


def transport(*, guard: bool = False) -> httpx.HTTPTransport:
    """An httpx transport whose sockets keep the deadline in force and, with `guard`,
    reach only public addresses (checked and pinned at each connection)."""
    return _on_backend(httpx.HTTPTransport(), guard)
