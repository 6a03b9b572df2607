"""integrations: Microsoft 365 / Outlook as a provider (`microsoft_calendar`)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 10:00:00

"""
from alembic import op

from callnfy_integrations import online_schema

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

NAME = "ck_integrations_provider"


# This runs while the old release serves: the old CHECK is dropped and the wider one added NOT VALID in
# one short transaction (a moment's lock, no scan), then validated without blocking reads and writes.
def upgrade():
    op.drop_constraint(op.f(NAME), "integrations", type_="check")
    online_schema.add_check_constraint(op.f(NAME), "integrations",
                                       "provider IN ('google_calendar', 'microsoft_calendar', 'zapier')")


def downgrade():
    op.execute("DELETE FROM integrations WHERE provider = 'microsoft_calendar'")
    op.drop_constraint(op.f(NAME), "integrations", type_="check")
    op.create_check_constraint(op.f(NAME), "integrations", "provider IN ('google_calendar', 'zapier')")
