"""Persistence: SQLModel tables, the async engine, Alembic migrations and the key stores.

Import the submodule you need (``store.sql``, ``store.migrate``): this package stays
cheap to import, so ``import symbiosis`` does not load SQLAlchemy.
"""
