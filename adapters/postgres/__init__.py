"""PostgreSQL adapters: the catalog read model in a PostgreSQL database."""

from adapters.postgres.catalog import PostgresCatalog

__all__ = ["PostgresCatalog"]
