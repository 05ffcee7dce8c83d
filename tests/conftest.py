"""Shared test setup: assertion rewriting for the reusable contract suites."""

import pytest

pytest.register_assert_rewrite("tests.contract")
