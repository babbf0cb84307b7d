"""Which URLs a webhook may target (server-side request forgery guard).

A URL is checked statically when a webhook is written (`check_written`: scheme, form, metadata host
names and a literal address; no DNS, so a receiver whose name only resolves where the workers run is
accepted), and fully before every attempt (`check`: the name is resolved and every address judged);
the attempt then connects to the addresses that were checked, never resolving the name again. Refused
whatever the settings say: link-local addresses (169.254.0.0/16, fe80::/10) and cloud metadata
endpoints. Refused unless `PACKMATCH_WEBHOOK_ALLOW_PRIVATE_NETWORKS` lists them: loopback, private,
shared (CGNAT), multicast and every other non-global (reserved, documentation…) address.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from packmatch.errors import FieldProblem, ValidationFailed
from packmatch.services.ports import Destination, Resolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean…
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
    )
)
SHARED = ipaddress.ip_network("100.64.0.0/10")
PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
ALWAYS_REFUSED = frozenset({"cloud metadata", "link-local"})


class RefusedUrl(ValidationFailed):
    """A webhook URL that may not be called; at the API edge a 400 naming the `url` field."""

    def __init__(self, reason: str) -> None:
        message = f"The webhook URL is refused: {reason}."
        super().__init__(message, details=[FieldProblem("url", reason)])
        self.reason = reason


def classify(address: IPAddress) -> str | None:
    """Why an address is special, or None for an ordinary public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    checks = (
        ("link-local", address.is_link_local),
        ("loopback", address.is_loopback),
        ("multicast", address.is_multicast),
        ("shared (CGNAT)", address in SHARED),
        ("private", any(address in network for network in PRIVATE)),
    )
    return next((name for name, hit in checks if hit), None if address.is_global else "reserved")


def parse_url(url: str) -> Destination:
    """The parts of an http(s) URL; anything else (credentials, fragments, bad ports) is refused."""
    if len(url) > MAX_URL_LENGTH:
        raise RefusedUrl(f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedUrl("not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise RefusedUrl("only http and https URLs are allowed")
    if not parts.hostname:
        raise RefusedUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("credentials in the URL are not supported")
    if parts.fragment or url.endswith("#"):
        raise RefusedUrl("the URL may not have a fragment")
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise RefusedUrl("the URL may not contain spaces or control characters")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname.rstrip(".").lower()
    default = 443 if parts.scheme == "https" else 80
    return Destination(parts.scheme, host, port or default, target)


class SystemResolver:
    """`getaddrinfo` with a time bound (it has none of its own); a slow lookup is abandoned.

    Each lookup runs in a daemon thread, so an abandoned one never holds up the process's exit (a
    thread pool's workers are joined at exit, and a stuck `getaddrinfo` cannot be interrupted). At
    most `max_lookups` run at once; a lookup that cannot start within the bound is refused too.
    """

    def __init__(self, timeout: float, max_lookups: int = 4) -> None:
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(max_lookups)

    def __call__(self, host: str, port: int) -> Sequence[str]:
        deadline = time.monotonic() + self.timeout
        if not self._slots.acquire(timeout=self.timeout):
            raise self._late()
        lookup = _Lookup(host, port, self._slots)
        threading.Thread(target=lookup.run, name=f"resolve-{host}"[:60], daemon=True).start()
        if not lookup.done.wait(max(0.0, deadline - time.monotonic())):
            raise self._late()
        if lookup.error is not None:
            raise lookup.error
        return list(dict.fromkeys(str(info[4][0]) for info in lookup.found))

    def _late(self) -> TimeoutError:
        return TimeoutError(f"resolving took longer than {self.timeout:g} s")


class _Lookup:
    """One `getaddrinfo` call's outcome, handed from its thread to the caller."""

    def __init__(self, host: str, port: int, slots: threading.BoundedSemaphore) -> None:
        self.host, self.port, self.slots = host, port, slots
        self.done = threading.Event()
        self.found: list[Any] = []
        self.error: OSError | UnicodeError | None = None

    def run(self) -> None:
        try:
            self.found = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            self.error = exc
        finally:
            self.slots.release()
            self.done.set()


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class UrlPolicy:
    def __init__(self, resolver: Resolver, allowed: Iterable[Network] = ()) -> None:
        self.resolver = resolver
        self.allowed = tuple(allowed)

    def check_written(self, url: str) -> Destination:
        """What can be known of a URL without DNS: its form, and its address if it is a literal one."""
        destination = parse_url(url)
        if destination.host in METADATA_HOSTS:
            raise RefusedUrl(f"{destination.host} is a cloud metadata host")
        literal = _literal(destination.host)
        if literal is not None:
            self._permit(literal)
        return destination

    def check(self, url: str) -> Destination:
        """The URL's destination with its addresses, every one of them permitted; else RefusedUrl."""
        destination = self.check_written(url)
        addresses = [self._address(a) for a in self._resolve(destination)]
        for address in addresses:
            self._permit(address)
        return Destination(
            destination.scheme,
            destination.host,
            destination.port,
            destination.target,
            tuple(str(a) for a in addresses),
        )

    def _resolve(self, destination: Destination) -> Sequence[str]:
        if _literal(destination.host) is not None:
            return [destination.host]
        try:
            found = self.resolver(destination.host, destination.port)
        except (OSError, UnicodeError) as exc:
            detail = str(exc) if isinstance(exc, TimeoutError) else "it does not resolve"
            raise RefusedUrl(f"host {destination.host}: {detail}") from None
        if not found:
            raise RefusedUrl(f"host {destination.host}: it does not resolve")
        return found

    @staticmethod
    def _address(text: str) -> IPAddress:
        return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone index

    def _permit(self, address: IPAddress) -> None:
        category = classify(address)
        if category is None:
            return
        if category not in ALWAYS_REFUSED and any(address in network for network in self.allowed):
            return
        hint = "" if category in ALWAYS_REFUSED else " not in PACKMATCH_WEBHOOK_ALLOW_PRIVATE_NETWORKS"
        raise RefusedUrl(f"{address} is a {category} address{hint}")
