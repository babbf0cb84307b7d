"""Factories for unit tests: build valid domain values with only the fields a test cares about.

Session-scoped because they are pure functions: hypothesis tests may use them too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from packmatch.domain.models import (
    FieldMapping,
    MatchingConfig,
    Presence,
    SlotResult,
    SlotStatus,
    Strategy,
)

_EPOCH = datetime(2024, 9, 14, 10, 40, tzinfo=UTC)
_ORGANIZATION_ID = uuid.UUID(int=1)
_REFERENCE_DATA_ID = uuid.UUID(int=2)


def build_mapping(
    source: str,
    strategy: Strategy | str = Strategy.EXACT,
    *,
    target: str | None = None,
    weight: float = 1.0,
    **options: Any,
) -> FieldMapping:
    """A mapping from ``source`` to ``target`` (defaults to the same name)."""
    return FieldMapping(
        source=source,
        target=target or source,
        strategy=Strategy(strategy),
        weight=weight,
        options=options,
    )


def build_config(*mappings: FieldMapping, threshold: float = 0.85) -> MatchingConfig:
    return MatchingConfig(
        id=uuid.UUID(int=3),
        organization_id=_ORGANIZATION_ID,
        name="test config",
        reference_data_id=_REFERENCE_DATA_ID,
        field_mappings=mappings,
        threshold=threshold,
        version=1,
        created_at=_EPOCH,
        updated_at=_EPOCH,
    )


def build_slot(
    presence: Presence | str,
    status: SlotStatus | str,
    confidence: float | None = None,
    *,
    document_type: str = "invoice",
    error: str | None = None,
) -> SlotResult:
    ran = SlotStatus(status) not in {SlotStatus.MISSING, SlotStatus.SKIPPED}
    return SlotResult(
        document_type=document_type,
        matching_config_id=uuid.UUID(int=3),
        matching_run_id=uuid.UUID(int=4) if ran else None,
        presence=Presence(presence),
        document_found=ran,
        status=SlotStatus(status),
        confidence=confidence,
        error=error,
    )


@pytest.fixture(scope="session")
def make_mapping() -> Callable[..., FieldMapping]:
    return build_mapping


@pytest.fixture(scope="session")
def make_config() -> Callable[..., MatchingConfig]:
    return build_config


@pytest.fixture(scope="session")
def make_slot() -> Callable[..., SlotResult]:
    return build_slot
