"""Schema changes that are safe while the previous release serves: for migrations after 0006.

Heroku's release phase (`flask db upgrade`) runs while the old dynos serve. Plain DDL holds an ACCESS
EXCLUSIVE lock on a live table for as long as it scans or builds, and every query of the old dynos
queues behind it. So, in new migrations (tests/test_migrations.py inspects them):

* indexes on existing tables: `create_index` (CREATE INDEX CONCURRENTLY: reads and writes go on);
* CHECK and FOREIGN KEY constraints: `add_check_constraint` / `add_foreign_key` (added NOT VALID —
  a moment's lock, no scan — then validated in a separate step, which scans under a lock that lets
  reads and writes go on);
* UNIQUE constraints: `add_unique_constraint` (its index built concurrently, then attached);
* NOT NULL on an existing column: `set_not_null` (a validated CHECK lets PostgreSQL skip the scan).

migrations/env.py sets `lock_timeout` for every migration, so a statement that cannot get its lock
soon fails the release instead of stalling the service. A table created in the same migration is
not live yet: plain `op.*` calls are fine there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op


def _quoted(name: str) -> str:
    return op.get_bind().dialect.identifier_preparer.quote(name)


def create_index(name: str, table: str, columns: Sequence[str], *, unique: bool = False,
                 where: str | None = None) -> None:
    """CREATE [UNIQUE] INDEX CONCURRENTLY, outside the migration's transaction (it cannot run in one)."""
    with op.get_context().autocommit_block():
        # A concurrent build that failed part-way leaves an INVALID index under this name: build anew.
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        op.create_index(name, table, list(columns), unique=unique, postgresql_concurrently=True,
                        postgresql_where=where)


def drop_index(name: str, table: str) -> None:
    """DROP INDEX CONCURRENTLY (a plain DROP INDEX locks the table against reads while it waits)."""
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


def _validate(table: str, name: str) -> None:
    # Its own transaction: the ACCESS EXCLUSIVE lock of ADD CONSTRAINT is released first.
    with op.get_context().autocommit_block():
        op.execute(f"ALTER TABLE {_quoted(table)} VALIDATE CONSTRAINT {_quoted(name)}")


def add_check_constraint(name: str, table: str, condition: str) -> None:
    """ADD CONSTRAINT … CHECK … NOT VALID (new rows are checked from now on), then VALIDATE (old rows)."""
    op.create_check_constraint(name, table, condition, postgresql_not_valid=True)
    _validate(table, name)


def add_foreign_key(name: str, source: str, referent: str, local_columns: Sequence[str],
                    remote_columns: Sequence[str], **options) -> None:
    """ADD CONSTRAINT … FOREIGN KEY … NOT VALID, then VALIDATE (`options`: ondelete=…)."""
    op.create_foreign_key(name, source, referent, list(local_columns), list(remote_columns),
                          postgresql_not_valid=True, **options)
    _validate(source, name)


def add_unique_constraint(name: str, table: str, columns: Sequence[str]) -> None:
    """A unique index built concurrently, then made the constraint (no scan, a moment's lock)."""
    create_index(name, table, columns, unique=True)
    op.execute(f"ALTER TABLE {_quoted(table)} ADD CONSTRAINT {_quoted(name)} UNIQUE USING INDEX {_quoted(name)}")


def set_not_null(table: str, column: str) -> None:
    """SET NOT NULL without a scan under ACCESS EXCLUSIVE: PostgreSQL (12+) trusts a validated
    `column IS NOT NULL` check instead; the check is dropped afterwards."""
    check = f"{table}_{column}_not_null"[:63]
    add_check_constraint(check, table, f"{_quoted(column)} IS NOT NULL")
    op.alter_column(table, column, nullable=False)
    op.drop_constraint(check, table, type_="check")
