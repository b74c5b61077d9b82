"""Runs the Alembic migrations (the only way the schema changes) on an async engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from paymod.persistence.database import AUTOCOMMIT_OPTION

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    if engine.dialect.name == "sqlite":
        await _upgrade_sqlite(engine, revision)
        return
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)


async def _upgrade_sqlite(engine: AsyncEngine, revision: str) -> None:
    """SQLite's procedure for rebuilding tables (sqlite.org/lang_altertable.html): foreign keys off
    outside the transaction, the migrations in one transaction, `foreign_key_check` before commit.
    With them on, dropping a rebuilt parent table would cascade into its children's rows."""
    async with engine.execution_options(**{AUTOCOMMIT_OPTION: True}).connect() as conn:
        # No BEGIN is sent for this connection (see persistence.database): each statement commits alone.
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                await conn.run_sync(_upgrade, revision)
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"the migration left rows whose references are missing: {broken[:5]}")
            except BaseException:
                await conn.exec_driver_sql("ROLLBACK")
                raise
            await conn.exec_driver_sql("COMMIT")
        finally:
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
