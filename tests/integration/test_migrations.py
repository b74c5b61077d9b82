"""The Alembic migrations are the schema: they match the tables paymod queries, both ways."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from paymod.persistence.database import Database
from paymod.persistence.migrate import alembic_config, upgrade
from paymod.persistence.tables import metadata


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await database.close()


async def test_schema_has_the_reference_constraints(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.engine.connect() as conn:
            indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("payment"))
            unique = {i["name"]: i for i in indexes if i["unique"]}
            assert unique["IDX_payment_payment_session_id_unique"]["column_names"] == ["payment_session_id"]
            holder = await conn.run_sync(lambda c: inspect(c).get_indexes("account_holder"))
            names = {i["name"] for i in holder if i["unique"]}
            assert "IDX_account_holder_provider_id_external_id_unique" in names
            codes = (await conn.execute(text("SELECT code FROM refund_reason ORDER BY code"))).scalars().all()
            assert codes == ["customer_care_adjustment", "pricing_error", "shipping_issue"]
    finally:
        await database.close()


async def test_migrations_downgrade_to_nothing_and_upgrade_again(database_url: str) -> None:
    database = Database(database_url)

    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(downgrade)
        async with database.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert set(tables) <= {"alembic_version"}
        await upgrade(database.engine)
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await database.close()
