"""The SSRF guard's classification and URL rules, event matching, the retry schedule and its settings."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from packmatch.domain.models import RunStatus
from packmatch.domain.webhooks import WebhookEvent, event_for, retry_delay
from packmatch.services.ports import Destination
from packmatch.services.webhooks.address_guard import RefusedUrl, SystemResolver, UrlPolicy, classify
from packmatch.settings import Settings

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("93.184.216.34", None), ("2606:4700::1111", None), ("172.32.0.1", None),
        ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"), ("169.254.10.1", "link-local"), ("fe80::1", "link-local"),
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
        ("fd12::1", "private"),
        ("100.64.0.1", "shared (CGNAT)"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
        ("0.0.0.0", "reserved"), ("240.0.0.1", "reserved"), ("192.0.2.1", "reserved"), ("::", "reserved"),
        ("255.255.255.255", "reserved"), ("2001:db8::1", "reserved"),
    ],
)  # fmt: skip
def test_addresses_are_classified(address: str, category: str | None) -> None:
    assert classify(ipaddress.ip_address(address)) == category


def resolving(*addresses: str) -> Any:
    def resolve(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolve


def refused(policy: UrlPolicy, url: str) -> str:
    with pytest.raises(RefusedUrl) as caught:
        policy.check(url)
    assert caught.value.details[0].field == "url"
    return caught.value.reason


PUBLIC = UrlPolicy(resolving("93.184.216.34"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "only http and https URLs are allowed"),
        ("file:///etc/passwd", "only http and https URLs are allowed"),
        ("example.com/hook", "only http and https URLs are allowed"),
        ("https:///path", "the URL has no host"),
        ("https://user:pw@example.com/", "credentials in the URL are not supported"),
        ("https://example.com/#frag", "the URL may not have a fragment"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://exa mple.com/", "the URL may not contain spaces or control characters"),
        ("https://example.com/" + "a" * 2048, "longer than 2048 characters"),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "metadata.google.internal is a cloud metadata host",
        ),
        ("http://METADATA.google.internal./", "metadata.google.internal is a cloud metadata host"),
    ],
)
def test_malformed_or_metadata_urls_are_refused(url: str, reason: str) -> None:
    assert refused(PUBLIC, url) == reason


def test_a_public_url_keeps_its_parts_and_checked_addresses() -> None:
    destination = PUBLIC.check("https://Hooks.Example.com:8443/in?x=1")
    assert destination == Destination("https", "hooks.example.com", 8443, "/in?x=1", ("93.184.216.34",))
    assert destination.host_header == "hooks.example.com:8443"


def test_an_ipv6_literal_is_its_own_address() -> None:
    destination = UrlPolicy(resolving(), [ipaddress.ip_network("::1/128")]).check("http://[::1]/h")
    assert (destination.addresses, destination.host_header, destination.port) == (("::1",), "[::1]", 80)


def test_loopback_is_refused_unless_allow_listed() -> None:
    assert refused(UrlPolicy(resolving()), "http://127.0.0.1:8080/h") == (
        "127.0.0.1 is a loopback address not in PACKMATCH_WEBHOOK_ALLOW_PRIVATE_NETWORKS"
    )
    assert UrlPolicy(resolving(), [LOOPBACK]).check("http://127.0.0.1:8080/h").addresses == ("127.0.0.1",)


def test_link_local_and_metadata_are_refused_even_when_allow_listed() -> None:
    everything = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    policy = UrlPolicy(resolving("169.254.169.254"), everything)
    assert refused(policy, "http://169.254.169.254/latest/meta-data/") == (
        "169.254.169.254 is a cloud metadata address"
    )
    assert refused(policy, "http://[fe80::1]/") == "fe80::1 is a link-local address"
    assert refused(policy, "http://innocent.example/") == "169.254.169.254 is a cloud metadata address"


def test_a_name_is_refused_if_any_of_its_addresses_is() -> None:
    policy = UrlPolicy(resolving("93.184.216.34", "10.0.0.5"))
    assert refused(policy, "https://rebind.example/") == (
        "10.0.0.5 is a private address not in PACKMATCH_WEBHOOK_ALLOW_PRIVATE_NETWORKS"
    )


def test_a_name_that_does_not_resolve_is_refused() -> None:
    def fail(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    assert refused(UrlPolicy(fail), "https://nowhere.invalid/") == "host nowhere.invalid: it does not resolve"
    assert (
        refused(UrlPolicy(resolving()), "https://empty.invalid/") == "host empty.invalid: it does not resolve"
    )


def test_a_slow_lookup_is_abandoned_at_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def stuck(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        raise socket.gaierror("late")

    monkeypatch.setattr(socket, "getaddrinfo", stuck)
    try:
        reason = refused(UrlPolicy(SystemResolver(timeout=0.05)), "https://slow.example/")
    finally:
        release.set()
    assert reason == "host slow.example: resolving took longer than 0.05 s"


def test_a_stuck_lookup_runs_in_a_daemon_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    release, started = threading.Event(), threading.Event()
    daemon: list[bool] = []

    def stuck(*args: Any, **kwargs: Any) -> Any:
        daemon.append(threading.current_thread().daemon)
        started.set()
        release.wait(10)
        raise socket.gaierror("late")

    monkeypatch.setattr(socket, "getaddrinfo", stuck)
    try:
        with pytest.raises(TimeoutError):
            SystemResolver(timeout=0.05)("slow.example", 443)
        assert started.wait(5)
    finally:
        release.set()
    assert daemon == [True]


def test_a_process_exits_while_a_lookup_is_stuck() -> None:
    # Before: the thread pool's worker was joined at exit, so this process hung until the lookup ended.
    script = textwrap.dedent(
        """
        import socket, threading
        from packmatch.services.webhooks.address_guard import SystemResolver
        socket.getaddrinfo = lambda *a, **k: threading.Event().wait()
        try:
            SystemResolver(timeout=0.05)("slow.example", 443)
        except TimeoutError:
            print("abandoned")
        """
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == "abandoned"


def test_the_policy_checks_a_written_url_without_dns() -> None:
    def no_dns(host: str, port: int) -> Sequence[str]:
        raise AssertionError("resolved at write time")

    policy = UrlPolicy(no_dns)
    assert policy.check_written("https://erp.example.com/hooks/packmatch").host == "erp.example.com"
    with pytest.raises(RefusedUrl, match=r"10\.0\.0\.1 is a private address"):
        policy.check_written("http://10.0.0.1/hook")
    with pytest.raises(RefusedUrl, match="cloud metadata host"):
        policy.check_written("http://metadata.google.internal/")
    with pytest.raises(RefusedUrl, match="only http and https"):
        policy.check_written("ftp://erp.example.com/")


def test_the_system_resolver_finds_localhost() -> None:
    assert "127.0.0.1" in SystemResolver(timeout=2)("localhost", 80)


# --- events and schedule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "subscribed", "event"),
    [
        (RunStatus.PASSED, {WebhookEvent.COMPLETED}, WebhookEvent.COMPLETED),
        (RunStatus.PASSED, {WebhookEvent.FAILED, WebhookEvent.REVIEW, WebhookEvent.ERROR}, None),
        (RunStatus.FAILED, {WebhookEvent.FAILED}, WebhookEvent.FAILED),
        (RunStatus.FAILED, {WebhookEvent.COMPLETED, WebhookEvent.FAILED}, WebhookEvent.COMPLETED),
        (RunStatus.REVIEW, {WebhookEvent.ERROR}, None),
        (RunStatus.ERROR, {WebhookEvent.ERROR, WebhookEvent.REVIEW}, WebhookEvent.ERROR),
    ],
)
def test_one_event_per_webhook_and_run(
    status: RunStatus, subscribed: set[WebhookEvent], event: WebhookEvent | None
) -> None:
    assert event_for(status, subscribed) == event


def test_the_default_schedule_is_the_specs() -> None:
    schedule = Settings(_env_file=None).webhook_retry_schedule_seconds
    assert schedule == (60, 300, 1800, 14400)
    assert [retry_delay(n, schedule) for n in range(1, 6)] == [60, 300, 1800, 14400, None]


def test_settings_read_comma_separated_schedules_and_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKMATCH_WEBHOOK_RETRY_SCHEDULE_SECONDS", "0.5, 1,2")
    monkeypatch.setenv("PACKMATCH_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8,10.0.0.0/8, ::1/128")
    settings = Settings(_env_file=None)
    assert settings.webhook_retry_schedule_seconds == (0.5, 1, 2)
    assert [str(n) for n in settings.webhook_allow_private_networks] == [
        "127.0.0.0/8",
        "10.0.0.0/8",
        "::1/128",
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [("webhook_retry_schedule_seconds", "60,-1"), ("webhook_allow_private_networks", "10.0.0.1/8")],
)
def test_bad_webhook_settings_stop_the_process(name: str, value: str) -> None:
    values: dict[str, Any] = {name: value}
    with pytest.raises(ValueError, match=name):
        Settings(_env_file=None, **values)


def test_the_lease_must_outlast_an_attempt() -> None:
    with pytest.raises(ValueError, match="PACKMATCH_WEBHOOK_LEASE_SECONDS must exceed"):
        Settings(_env_file=None, webhook_timeout_seconds=10, webhook_lease_seconds=10)


def test_an_empty_schedule_means_one_attempt() -> None:
    assert retry_delay(1, ()) is None
