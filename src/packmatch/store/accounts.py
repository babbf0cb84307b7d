"""Organizations and API keys (only a SHA-256 hash of each key is stored)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.store.tables import api_keys, organizations


@dataclass(frozen=True)
class KeyRecord:
    id: uuid.UUID
    organization_id: uuid.UUID
    prefix: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None
    name: str | None = None


def find_organization(conn: Connection, name: str) -> uuid.UUID | None:
    found = conn.execute(sa.select(organizations.c.id).where(organizations.c.name == name))
    existing: uuid.UUID | None = found.scalar_one_or_none()
    return existing


def get_or_create_organization(conn: Connection, name: str, now: datetime) -> uuid.UUID:
    existing = find_organization(conn, name)
    if existing is not None:
        return existing
    org_id = uuid.uuid4()
    conn.execute(organizations.insert().values(id=org_id, name=name, created_at=now))
    return org_id


def insert_key(
    conn: Connection,
    *,
    organization_id: uuid.UUID,
    prefix: str,
    key_hash: str,
    scopes: frozenset[str],
    now: datetime,
    name: str | None = None,
) -> uuid.UUID:
    key_id = uuid.uuid4()
    conn.execute(
        api_keys.insert().values(
            id=key_id,
            organization_id=organization_id,
            prefix=prefix,
            key_hash=key_hash,
            scopes=",".join(sorted(scopes)),
            created_at=now,
            name=name,
        )
    )
    return key_id


def _record(row: sa.Row[tuple[object, ...]]) -> KeyRecord:
    m = row._mapping
    return KeyRecord(
        id=m["id"],
        organization_id=m["organization_id"],
        prefix=m["prefix"],
        scopes=frozenset(s for s in m["scopes"].split(",") if s),
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        name=m["name"],
    )


def find_key_by_hash(conn: Connection, key_hash: str) -> KeyRecord | None:
    row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
    return None if row is None else _record(row)


def list_keys(conn: Connection, organization_name: str | None = None) -> list[tuple[str, KeyRecord]]:
    query = sa.select(organizations.c.name.label("organization_name"), api_keys).join(
        organizations, organizations.c.id == api_keys.c.organization_id
    )
    if organization_name is not None:
        query = query.where(organizations.c.name == organization_name)
    rows = conn.execute(query.order_by(api_keys.c.created_at)).all()
    return [(row.organization_name, _record(row)) for row in rows]


def revoke_key(conn: Connection, key_id: uuid.UUID, now: datetime) -> bool:
    result = conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1
