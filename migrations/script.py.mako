"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


# This runs while the old release serves. On tables that already exist, build indexes and add
# constraints with callnfy_integrations.online_schema (CREATE INDEX CONCURRENTLY; NOT VALID, then
# VALIDATE); tests/test_migrations.py refuses plain op.create_index & co. on them.
def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
