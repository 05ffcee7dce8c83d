"""The catalog contract, run against the in-memory adapter."""

from __future__ import annotations

from adapters.inmemory.catalog import InMemoryCatalog
from application.catalog import Catalog
from tests.contract.catalog_contract import CatalogContract


class TestInMemoryCatalog(CatalogContract):
    def make_catalog(self) -> Catalog:
        return InMemoryCatalog()
