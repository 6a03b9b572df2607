"""Migrations: a single head, a clean upgrade and downgrade, and agreement with the models."""

import ast
import re
import secrets
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from callnfy_integrations import MIGRATIONS_DIR, create_app
from callnfy_integrations.extensions import db
from tests.support import create_database, drop_database, make_config


def scripts() -> ScriptDirectory:
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def head_revision() -> str:
    return scripts().get_current_head()


def test_migrations_have_a_single_head():
    assert len(scripts().get_heads()) == 1


@pytest.fixture
def empty_database(servers):
    name = f"callnfy_migrate_{secrets.token_hex(4)}"
    url = create_database(servers["postgres"], name)
    yield url
    drop_database(servers["postgres"], name)


def test_upgrade_on_empty_database_then_downgrade_to_base(empty_database, servers):
    app = create_app(make_config(empty_database, servers["redis"]))
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "integrations", "alembic_version"} <= tables
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()  # and back up again: downgrade really undid everything
        db.engine.dispose()


def test_models_match_migrations(app, database_url):
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    engine.dispose()
    assert diff == []


# -- migrations run while the old release serves ----------------------------------------------------

def test_a_migration_gives_up_on_a_lock_instead_of_stalling_the_service(empty_database, servers):
    """0006 alters `integrations`; an old dyno's open transaction holding a lock on it must make the
    release fail after lock_timeout (every later query would otherwise queue behind the waiting ALTER)."""
    import threading
    import time

    import psycopg2

    from tests.support import admin_dsn

    app = create_app(make_config(empty_database, servers["redis"], MIGRATION_LOCK_TIMEOUT_SECONDS="1"))
    with app.app_context():
        upgrade(revision="0005")
    old_dyno = psycopg2.connect(admin_dsn(empty_database))
    outcome: dict = {}

    def release_phase():
        with app.app_context():
            started = time.monotonic()
            try:
                upgrade()
            except Exception as exc:  # what the release phase would print before exiting non-zero
                outcome["error"] = exc
            outcome["seconds"] = time.monotonic() - started

    try:
        with old_dyno.cursor() as cur:
            cur.execute("SELECT count(*) FROM integrations")  # ACCESS SHARE, held until its transaction ends
        release = threading.Thread(target=release_phase)
        release.start()
        release.join(timeout=20)
    finally:
        old_dyno.rollback()  # the old dyno's transaction ends; without lock_timeout the upgrade goes on now
        old_dyno.close()
    release.join(timeout=30)
    assert "lock timeout" in str(outcome.get("error", "")), outcome
    assert outcome["seconds"] < 15
    with app.app_context():
        assert db.session.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        db.session.remove()
        upgrade()  # once nothing holds the lock, the same release goes through
        assert db.session.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        db.session.remove()
        db.engine.dispose()


# Already applied in production before these rules: history is not rewritten.
DEPLOYED = {"0001", "0002", "0003", "0004", "0005", "0006"}

# Raw SQL in op.execute(): what the rules refuse, and why.
UNSAFE_SQL = [
    (re.compile(r"\bCREATE\s+(UNIQUE\s+)?INDEX\b(?!\s+CONCURRENTLY)", re.I),
     "CREATE INDEX without CONCURRENTLY blocks writes for the whole build"),
    (re.compile(r"\bADD\s+CONSTRAINT\b(?:(?!\bNOT\s+VALID\b|\bUSING\s+INDEX\b)[^;])*(;|$)", re.I),
     "ADD CONSTRAINT without NOT VALID (or UNIQUE USING INDEX) scans the table under an exclusive lock"),
    (re.compile(r"\bSET\s+NOT\s+NULL\b", re.I), "SET NOT NULL scans the table: online_schema.set_not_null"),
]
# op.<call>: where its table is (position, keyword); a table created in the same migration is not live.
TABLE_ARGUMENT = {"create_index": (1, "table_name"), "create_unique_constraint": (1, "table_name"),
                  "create_check_constraint": (1, "table_name"), "create_foreign_key": (1, "source_table"),
                  "alter_column": (0, "table_name")}


def _literal(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and node.args and getattr(node.func, "attr", getattr(node.func, "id", "")) == "text":
        return _literal(node.args[0])  # sa.text("…")
    return None


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def migration_violations(source: str) -> list[str]:
    """What in this migration's upgrade() would lock a live table for long (see online_schema.py)."""
    upgrade_fn = next((n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"),
                      None)
    if upgrade_fn is None:
        return []
    created = {_literal(n.args[0]) for n in ast.walk(upgrade_fn) if isinstance(n, ast.Call) and n.args
               and getattr(n.func, "attr", "") == "create_table"}
    found, not_valid, validated = [], 0, 0

    def visit(node, in_autocommit: bool):
        nonlocal not_valid, validated
        if isinstance(node, ast.With):
            in_autocommit = in_autocommit or any(
                isinstance(item.context_expr, ast.Call) and getattr(item.context_expr.func, "attr", "") ==
                "autocommit_block" for item in node.items)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id == "op":
            name, line = node.func.attr, node.lineno
            if name == "execute":
                sql = _literal(node.args[0]) if node.args else None
                if sql is None:
                    found.append(f"line {line}: op.execute with SQL the inspection cannot read (use a literal)")
                else:
                    found.extend(f"line {line}: {why}" for pattern, why in UNSAFE_SQL if pattern.search(sql))
                    if re.search(r"\bCONCURRENTLY\b", sql, re.I) and not in_autocommit:
                        found.append(f"line {line}: CONCURRENTLY must run in op.get_context().autocommit_block()")
                    not_valid += len(re.findall(r"\bNOT\s+VALID\b", sql, re.I))
                    validated += len(re.findall(r"\bVALIDATE\s+CONSTRAINT\b", sql, re.I))
            elif name in TABLE_ARGUMENT:
                position, keyword = TABLE_ARGUMENT[name]
                table = _literal(node.args[position]) if len(node.args) > position else \
                    _literal(_keyword(node, keyword))
                if table not in created:
                    if name == "create_index":
                        if not _is_true(_keyword(node, "postgresql_concurrently")):
                            found.append(f"line {line}: create_index on {table} without postgresql_concurrently=True")
                        elif not in_autocommit:
                            found.append(f"line {line}: CONCURRENTLY must run in op.get_context().autocommit_block()")
                    elif name == "create_unique_constraint":
                        found.append(f"line {line}: create_unique_constraint on {table} builds its index under an "
                                     f"exclusive lock: online_schema.add_unique_constraint")
                    elif name in ("create_check_constraint", "create_foreign_key"):
                        if _is_true(_keyword(node, "postgresql_not_valid")):
                            not_valid += 1
                        else:
                            found.append(f"line {line}: {name} on {table} without postgresql_not_valid=True")
                    elif name == "alter_column" and isinstance(_keyword(node, "nullable"), ast.Constant) and \
                            _keyword(node, "nullable").value is False:
                        found.append(f"line {line}: alter_column(nullable=False) on {table} scans the table: "
                                     f"online_schema.set_not_null")
        for child in ast.iter_child_nodes(node):
            visit(child, in_autocommit)

    visit(upgrade_fn, False)
    if not_valid > validated:
        found.append("a constraint added NOT VALID is never validated (VALIDATE CONSTRAINT, in its own step)")
    return found


def new_migrations() -> list[Path]:
    return sorted(p for p in (MIGRATIONS_DIR / "versions").glob("*.py") if p.name[:4] not in DEPLOYED)


def test_migrations_after_0006_are_safe_while_the_old_release_serves():
    assert {p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("*.py")} >= DEPLOYED
    for path in new_migrations():
        assert migration_violations(path.read_text()) == [], path.name


UNSAFE_MIGRATION = '''
from alembic import op
import sqlalchemy as sa


def upgrade():
    op.create_table("notes", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("body", sa.Text()))
    op.create_index("ix_notes_body", "notes", ["body"])  # a new table: fine
    op.create_index("ix_events_type", "events", ["type"])
    op.create_index("ix_appointments_status", "appointments", ["status"], postgresql_concurrently=True)
    op.create_unique_constraint("uq_calls_recording_url", "calls", ["recording_url"])
    op.create_check_constraint("ck_webhook_deliveries_attempts", "webhook_deliveries", "attempts >= 0")
    op.create_foreign_key("fk_calls_customer", "calls", "customers", ["customer_id"], ["id"],
                          postgresql_not_valid=True)
    op.alter_column("customers", "name", nullable=False)
    op.execute("CREATE INDEX ix_webhook_deliveries_event_id ON webhook_deliveries (event_id)")
    op.execute(sa.text("ALTER TABLE events ADD CONSTRAINT ck_events_attempts CHECK (attempts >= 0)"))
    op.execute("ALTER TABLE customers ALTER COLUMN phone SET NOT NULL")
    op.execute(f"UPDATE events SET attempts = {0}")
'''

SAFE_MIGRATION = '''
from alembic import op
import sqlalchemy as sa

from callnfy_integrations import online_schema


def upgrade():
    op.create_table("notes", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("body", sa.Text()))
    op.create_index("ix_notes_body", "notes", ["body"])
    op.create_check_constraint("ck_notes_body", "notes", "body <> ''")
    online_schema.create_index("ix_events_type", "events", ["type"])
    online_schema.add_check_constraint("ck_webhook_deliveries_attempts", "webhook_deliveries", "attempts >= 0")
    online_schema.set_not_null("customers", "name")
    with op.get_context().autocommit_block():
        op.create_index("ix_appointments_status", "appointments", ["status"], postgresql_concurrently=True)
        op.execute("CREATE INDEX CONCURRENTLY ix_webhook_deliveries_event_id ON webhook_deliveries (event_id)")
    op.execute("ALTER TABLE events ADD CONSTRAINT ck_events_attempts CHECK (attempts >= 0) NOT VALID")
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE events VALIDATE CONSTRAINT ck_events_attempts")
    op.add_column("events", sa.Column("note", sa.Text(), nullable=True))
'''


def test_the_inspection_refuses_each_unsafe_change():
    found = migration_violations(UNSAFE_MIGRATION)
    expected = ["create_index on events without postgresql_concurrently=True",
                "CONCURRENTLY must run in op.get_context().autocommit_block()",
                "create_unique_constraint on calls", "create_check_constraint on webhook_deliveries without",
                "alter_column(nullable=False) on customers", "CREATE INDEX without CONCURRENTLY",
                "ADD CONSTRAINT without NOT VALID", "SET NOT NULL scans the table",
                "op.execute with SQL the inspection cannot read", "a constraint added NOT VALID is never validated"]
    for fragment in expected:
        assert any(fragment in violation for violation in found), (fragment, found)
    assert len(found) == len(expected), found
    assert not any("notes" in violation for violation in found)  # created in the same migration


def test_the_inspection_accepts_the_safe_patterns():
    assert migration_violations(SAFE_MIGRATION) == []


def test_online_schema_helpers_leave_valid_indexes_and_constraints(empty_database, servers):
    from alembic.operations import Operations

    from callnfy_integrations import online_schema

    engine = create_engine(make_config(empty_database, servers["redis"])["SQLALCHEMY_DATABASE_URI"])
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE parents (id int PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE live (id int PRIMARY KEY, parent_id int, code text, n int)")
        conn.exec_driver_sql("INSERT INTO parents VALUES (1)")
        conn.exec_driver_sql("INSERT INTO live SELECT g, 1, 'c' || g, g FROM generate_series(1, 1000) g")
        conn.commit()
        context = MigrationContext.configure(conn)
        with context.begin_transaction(), Operations.context(context):
            online_schema.create_index("ix_live_n", "live", ["n"], where="n > 10")
            online_schema.create_index("ix_live_n", "live", ["n"], where="n > 10")  # again: rebuilt, not refused
            online_schema.add_unique_constraint("uq_live_code", "live", ["code"])
            online_schema.add_check_constraint("ck_live_n", "live", "n > 0")
            online_schema.add_foreign_key("fk_live_parent", "live", "parents", ["parent_id"], ["id"],
                                          ondelete="CASCADE")
            online_schema.set_not_null("live", "code")
            online_schema.drop_index("ix_live_n", "live")
        conn.commit()
        constraints = dict(conn.exec_driver_sql(
            "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'live'::regclass").all())
        invalid_indexes = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'live'::regclass AND NOT indisvalid").scalar()
        not_null = conn.exec_driver_sql("SELECT attnotnull FROM pg_attribute WHERE attrelid = 'live'::regclass "
                                        "AND attname = 'code'").scalar()
        indexes = {row[0] for row in conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE tablename = 'live'")}
    engine.dispose()
    assert constraints == {"live_pkey": True, "uq_live_code": True, "ck_live_n": True, "fk_live_parent": True}
    assert invalid_indexes == 0 and not_null is True
    assert indexes == {"live_pkey", "uq_live_code"}


def test_0012_moves_the_google_state_to_links_and_keeps_the_old_release_writing(empty_database, servers):
    """The backfill copies each appointment's Google state; while the old release still serves, its
    writes of the google_* columns reach the links (the trigger); a downgrade gives them back."""
    app = create_app(make_config(empty_database, servers["redis"]))
    user, customer, synced, pending = (secrets.token_hex(16) for _ in range(4))
    with app.app_context():
        upgrade(revision="0011")
        db.session.execute(text("INSERT INTO users (id) VALUES (:u)"), {"u": user})
        db.session.execute(text("INSERT INTO customers (id, user_id, name, phone) VALUES (:c, :u, 'Ann', '+1')"),
                           {"c": customer, "u": user})
        for appointment, state, event_id in ((synced, "synced", "ev1"), (pending, None, None)):
            db.session.execute(text(
                "INSERT INTO appointments (id, user_id, customer_id, scheduled_at, duration, version, "
                "google_sync_state, google_event_id, google_synced_version, google_etag) "
                "VALUES (:a, :u, :c, now(), 30, 2, :s, :e, 2, '\"etag\"')"),
                {"a": appointment, "u": user, "c": customer, "s": state, "e": event_id})
        db.session.commit()
        upgrade()
        links = db.session.execute(text(
            "SELECT appointment_id::text, provider, state, event_id, synced_version, etag FROM calendar_links")).all()
        assert [tuple(row) for row in links] == [(str(_uuid(synced)), "google_calendar", "synced", "ev1", 2,
                                                  '"etag"')]  # nothing to copy of the one never synced
        # The old release, still serving: a push outcome, and an appointment it imports from Google.
        db.session.execute(text("UPDATE appointments SET google_sync_state = 'failed', google_sync_error = 'HTTP 500' "
                                "WHERE id = :a"), {"a": synced})
        imported = secrets.token_hex(16)
        db.session.execute(text(
            "INSERT INTO appointments (id, user_id, customer_id, scheduled_at, duration, source, google_event_id, "
            "google_sync_state, google_synced_version) VALUES (:a, :u, :c, now(), 30, 'google', 'ev2', 'synced', 1)"),
            {"a": imported, "u": user, "c": customer})
        db.session.execute(text("UPDATE appointments SET notes = 'not a sync column' WHERE id = :a"), {"a": pending})
        db.session.commit()
        links = dict(db.session.execute(text("SELECT event_id, state || ' ' || coalesce(error, '') "
                                             "FROM calendar_links")).all())
        assert links == {"ev1": "failed HTTP 500", "ev2": "synced "}
        # This release's own writes go to the links only, and a downgrade copies them back.
        db.session.execute(text("UPDATE calendar_links SET state = 'synced', error = NULL, synced_version = 3, "
                                "event_id = 'ev1b' WHERE event_id = 'ev1'"))
        db.session.commit()
        db.session.remove()
        downgrade(revision="0011")
        row = db.session.execute(text("SELECT google_sync_state, google_sync_error, google_synced_version, "
                                      "google_event_id FROM appointments WHERE id = :a"), {"a": synced}).one()
        assert tuple(row) == ("synced", None, 3, "ev1b")
        db.session.remove()
        db.engine.dispose()


def _uuid(hex_text: str):
    import uuid

    return uuid.UUID(hex_text)
