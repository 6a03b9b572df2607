"""Migrations: a single head, a clean upgrade and downgrade, and agreement with the models."""

import secrets

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect

from callnfy_integrations import MIGRATIONS_DIR, create_app
from callnfy_integrations.extensions import db
from tests.conftest import create_database, drop_database, make_config


def test_migrations_have_a_single_head():
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


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
