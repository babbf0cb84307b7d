"""Matching configs and package configs (slots live in their own table so references are queryable).

Reads taken before a write that depends on them lock what they read (`Lock`, PostgreSQL row locks):
`no key update` on a config being replaced (concurrent PUTs queue up; references to it do not
wait), `update` on one being deleted (a package config starting to use it waits, and the delete then
sees it), `key share` on the matching configs a package config is about to reference (a concurrent
delete waits, then fails its foreign-key check instead of leaving a dangling slot), `share` on the
package config and matching configs a run is accepted against (a concurrent PUT or DELETE waits for
the run's commit, and the run waits for one in progress: its snapshot is one committed version of
each). SQLite ignores them; it has one writer at a time, and a transaction reads one snapshot.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.domain.models import MatchingConfig, PackageConfig, Slot
from packmatch.errors import Conflict
from packmatch.store.pagination import Page, PageRequest, keyset_page
from packmatch.store.tables import matching_configs, package_config_slots, package_configs, package_runs

Lock = Literal["key share", "share", "no key update", "update"]
Query = TypeVar("Query", bound=sa.Select[Any])

MATCHING_CONFIG_IN_USE = "This matching config is used by a package config; change or delete that first."


def _locked(query: Query, lock: Lock | None) -> Query:
    if lock is None:
        return query
    read = lock in ("key share", "share")
    return query.with_for_update(read=read, key_share=lock in ("key share", "no key update"))


def _matching_values(config: MatchingConfig) -> dict[str, Any]:
    values = config.model_dump(mode="python")
    values["field_mappings"] = [m.model_dump(mode="json") for m in config.field_mappings]
    return values


def _matching(row: sa.Row[Any]) -> MatchingConfig:
    return MatchingConfig.model_validate(dict(row._mapping))


def insert_matching_config(conn: Connection, config: MatchingConfig) -> None:
    conn.execute(matching_configs.insert().values(**_matching_values(config)))


def update_matching_config(conn: Connection, config: MatchingConfig) -> int | None:
    """Write the replaceable fields (name, mappings, threshold) and `updated_at`, and add 1 to the
    stored version (in SQL: concurrent replacements never share a version); returns the new
    version, or None if the config is gone."""
    values = _matching_values(config)
    replaced = conn.execute(
        matching_configs.update()
        .where(
            matching_configs.c.id == config.id,
            matching_configs.c.organization_id == config.organization_id,
        )
        .values(
            {
                **{k: values[k] for k in ("name", "field_mappings", "threshold", "updated_at")},
                "version": matching_configs.c.version + 1,
            }
        )
        .returning(matching_configs.c.version)
    )
    version: int | None = replaced.scalar_one_or_none()
    return version


def get_matching_config(
    conn: Connection, organization_id: uuid.UUID, config_id: uuid.UUID, *, lock: Lock | None = None
) -> MatchingConfig | None:
    query = sa.select(matching_configs).where(
        matching_configs.c.id == config_id,
        matching_configs.c.organization_id == organization_id,
    )
    row = conn.execute(_locked(query, lock)).first()
    return None if row is None else _matching(row)


def get_matching_configs(
    conn: Connection,
    organization_id: uuid.UUID,
    config_ids: Iterable[uuid.UUID],
    *,
    lock: Lock | None = None,
) -> dict[uuid.UUID, MatchingConfig]:
    query = sa.select(matching_configs).where(
        matching_configs.c.id.in_(list(config_ids)),
        matching_configs.c.organization_id == organization_id,
    )
    return {row.id: _matching(row) for row in conn.execute(_locked(query, lock)).all()}


def package_configs_using(conn: Connection, matching_config_id: uuid.UUID) -> list[uuid.UUID]:
    """The package configs with a slot that uses this matching config, oldest first."""
    query = (
        sa.select(package_configs.c.id)
        .where(
            package_configs.c.id.in_(
                sa.select(package_config_slots.c.package_config_id).where(
                    package_config_slots.c.matching_config_id == matching_config_id
                )
            )
        )
        .order_by(package_configs.c.created_at, package_configs.c.id)
    )
    return list(conn.execute(query).scalars())


def delete_matching_config(conn: Connection, organization_id: uuid.UUID, config_id: uuid.UUID) -> bool:
    """Delete one matching config. A package config that started using it meanwhile → Conflict."""
    query = matching_configs.delete().where(
        matching_configs.c.id == config_id,
        matching_configs.c.organization_id == organization_id,
    )
    try:
        result = conn.execute(query)
    except sa.exc.IntegrityError:
        raise Conflict(MATCHING_CONFIG_IN_USE) from None
    return result.rowcount == 1


def list_matching_configs(
    conn: Connection, organization_id: uuid.UUID, request: PageRequest
) -> Page[MatchingConfig]:
    scope = [matching_configs.c.organization_id == organization_id]
    return keyset_page(conn, matching_configs, scope, request, _matching)


def insert_package_config(conn: Connection, config: PackageConfig) -> None:
    values = config.model_dump(mode="python", exclude={"slots"})
    values["pass_criteria"] = config.pass_criteria.model_dump(mode="json")
    conn.execute(package_configs.insert().values(**values))
    _insert_slots(conn, config.id, config.slots)


def update_package_config(conn: Connection, config: PackageConfig) -> int | None:
    """Write name, pass criteria and `updated_at`, replace the slots, and add 1 to the stored version
    (in SQL: concurrent replacements never share a version); returns the new version, or None if
    the config is gone."""
    replaced = conn.execute(
        package_configs.update()
        .where(
            package_configs.c.id == config.id,
            package_configs.c.organization_id == config.organization_id,
        )
        .values(
            name=config.name,
            pass_criteria=config.pass_criteria.model_dump(mode="json"),
            version=package_configs.c.version + 1,
            updated_at=config.updated_at,
        )
        .returning(package_configs.c.version)
    )
    version: int | None = replaced.scalar_one_or_none()
    if version is not None:
        conn.execute(
            package_config_slots.delete().where(package_config_slots.c.package_config_id == config.id)
        )
        _insert_slots(conn, config.id, config.slots)
    return version


def delete_package_config(conn: Connection, organization_id: uuid.UUID, config_id: uuid.UUID) -> int | None:
    """Delete a package config with its slots and runs; returns how many runs went, None if not found.

    The runs' slots, matching runs and results go with them (ON DELETE CASCADE, see `tables`).
    """
    count = sa.select(sa.func.count()).select_from(package_runs)
    runs = conn.execute(count.where(package_runs.c.package_config_id == config_id)).scalar_one()
    result = conn.execute(
        package_configs.delete().where(
            package_configs.c.id == config_id,
            package_configs.c.organization_id == organization_id,
        )
    )
    return int(runs) if result.rowcount == 1 else None


def _insert_slots(conn: Connection, config_id: uuid.UUID, slots: Iterable[Slot]) -> None:
    rows = [
        {"package_config_id": config_id, "position": i, **slot.model_dump(mode="python")}
        for i, slot in enumerate(slots)
    ]
    if rows:
        conn.execute(package_config_slots.insert(), rows)


def _slots_by_config(conn: Connection, config_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Slot]]:
    rows = conn.execute(
        sa.select(package_config_slots)
        .where(package_config_slots.c.package_config_id.in_(config_ids))
        .order_by(package_config_slots.c.package_config_id, package_config_slots.c.position)
    ).all()
    slots: dict[uuid.UUID, list[Slot]] = {config_id: [] for config_id in config_ids}
    for row in rows:
        slots[row.package_config_id].append(
            Slot(
                document_type=row.document_type,
                matching_config_id=row.matching_config_id,
                presence=row.presence,
            )
        )
    return slots


def _package(row: sa.Row[Any], slots: list[Slot]) -> PackageConfig:
    return PackageConfig.model_validate({**row._mapping, "slots": slots})


def get_package_config(
    conn: Connection, organization_id: uuid.UUID, config_id: uuid.UUID, *, lock: Lock | None = None
) -> PackageConfig | None:
    query = sa.select(package_configs).where(
        package_configs.c.id == config_id,
        package_configs.c.organization_id == organization_id,
    )
    row = conn.execute(_locked(query, lock)).first()
    if row is None:
        return None
    return _package(row, _slots_by_config(conn, [row.id])[row.id])


def list_package_configs(
    conn: Connection, organization_id: uuid.UUID, request: PageRequest
) -> Page[PackageConfig]:
    scope = [package_configs.c.organization_id == organization_id]
    page = keyset_page(conn, package_configs, scope, request, lambda row: row)
    slots = _slots_by_config(conn, [row.id for row in page.items])
    items = [_package(row, slots[row.id]) for row in page.items]
    return Page(items, page.total, page.limit, page.next_cursor)
