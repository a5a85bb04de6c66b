"""The admin gateway and client of tests/admin, for the alerts' tests."""

from tests.admin.conftest import admin, admin_gateway

__all__ = ["admin", "admin_gateway"]
