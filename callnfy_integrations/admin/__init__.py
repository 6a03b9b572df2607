"""Operator-only pages, behind the ADMIN_USERNAME / ADMIN_PASSWORD basic auth."""
