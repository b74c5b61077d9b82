"""Relation loading: Medusa's `relations` config (`["payments", "payments.captures"]`) read in one
query per relation, through the entities' relation table (`persistence.entities.RELATIONS`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from paymod.domain.errors import InvalidDataError
from paymod.persistence import entities as e
from paymod.persistence.repository import Repository, Row


async def load_relations(
    conn: AsyncConnection,
    repos: Mapping[str, Repository],
    entity: str,
    rows: list[Row],
    relations: Sequence[str],
) -> None:
    """Loads `relations` (dotted paths: `payments.captures`) into `rows`, one query per relation."""
    tree: dict[str, list[str]] = {}
    for path in relations:
        head, _, rest = path.partition(".")
        tree.setdefault(head, [])
        if rest:
            tree[head].append(rest)
    for name, nested in tree.items():
        relation = e.RELATIONS[entity].get(name)
        if relation is None:
            raise InvalidDataError(f"{entity} has no relation {name!r}")
        keys = sorted({r[relation.local] for r in rows if r.get(relation.local) is not None})
        repo = repos[relation.target]
        if not keys:
            children: list[Row] = []
        elif relation.through is not None:
            assert relation.through_target is not None
            pivot = relation.through
            stmt = select(pivot.c[relation.remote], pivot.c[relation.through_target]).where(
                pivot.c[relation.remote].in_(keys)
            )
            links = (await conn.execute(stmt)).all()
            targets = await repo.find(conn, {"id": sorted({link[1] for link in links})}) if links else []
            by_id = {c["id"]: c for c in targets}
            children = [{**by_id[link[1]], "__parent": link[0]} for link in links if link[1] in by_id]
        else:
            children = await repo.find_children(conn, relation.remote, keys)
        if nested:
            await load_relations(conn, repos, relation.target, children, nested)
        remote = "__parent" if relation.through is not None else relation.remote
        grouped: dict[Any, list[Row]] = {}
        for child in children:
            grouped.setdefault(child[remote], []).append(child)
        for row in rows:
            found = grouped.get(row.get(relation.local), [])
            row[name] = found if relation.many else (found[0] if found else None)
