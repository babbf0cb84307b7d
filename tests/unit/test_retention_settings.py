"""PACKMATCH_RETENTION_DAYS and its per-organization override, read from the environment as an
operator sets them (docs/operations.md, "Retention and archiving")."""

from __future__ import annotations

import pydantic
import pytest

from packmatch.bootstrap import retention_policy
from packmatch.settings import Settings


def test_the_default_and_the_per_organization_override_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PACKMATCH_RETENTION_DAYS", "90")
    monkeypatch.setenv("PACKMATCH_RETENTION_DAYS_BY_ORGANIZATION", '{"acme": 30, "audit": 0}')
    policy = retention_policy(Settings(_env_file=None))
    assert (policy.days_for("acme"), policy.days_for("audit"), policy.days_for("globex")) == (30, None, 90)
    assert not policy.keeps_everything


def test_unset_keeps_everything_and_a_negative_age_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PACKMATCH_RETENTION_DAYS", "PACKMATCH_RETENTION_DAYS_BY_ORGANIZATION"):
        monkeypatch.delenv(name, raising=False)
    assert retention_policy(Settings(_env_file=None)).keeps_everything
    monkeypatch.setenv("PACKMATCH_RETENTION_DAYS_BY_ORGANIZATION", '{"acme": -1}')
    with pytest.raises(pydantic.ValidationError):
        Settings(_env_file=None)
