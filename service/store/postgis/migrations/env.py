"""Alembic environment of the PostGIS store.

The store passes its own connection in ``config.attributes["connection"]`` (see
:func:`service.store.postgis.migrate`), so migrations run inside the store's transaction
and need no URL in alembic.ini. From the command line the URL is ``-x url=...`` or
``$RISKMAP_STORE``. Migrations hold an advisory lock so two processes opening the store at
once cannot both run them.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text

from service.store.postgis.models import Base, include_object

MIGRATION_LOCK = 0x52534B4D  # "RSKM": pg_advisory_xact_lock key for migrations

config = context.config


def _url() -> str:
    url = (context.get_x_argument(as_dictionary=True).get("url")
           or config.get_main_option("sqlalchemy.url") or os.environ.get("RISKMAP_STORE"))
    if not url:
        raise RuntimeError("no database URL: pass -x url=postgresql+psycopg://... "
                           "or set RISKMAP_STORE")
    return url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      include_object=include_object, compare_type=True)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
