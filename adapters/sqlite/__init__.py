"""SQLite adapters: the catalog read model in an SQLite database file."""

from adapters.sqlite.catalog import SQLiteCatalog

__all__ = ["SQLiteCatalog"]
