"""appointments: the idempotency key of a key-authenticated create, unique per account

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 15:00:00

"""
from alembic import op
import sqlalchemy as sa

from callnfy_integrations import online_schema

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


# appointments is live: nullable columns without a default (no rewrite), the unique index built
# concurrently and then attached as the constraint.
def upgrade():
    op.add_column("appointments", sa.Column("idempotency_key", sa.String(length=255), nullable=True))
    op.add_column("appointments", sa.Column("idempotency_fingerprint", sa.String(length=64), nullable=True))
    online_schema.add_unique_constraint("uq_appointments_user_id_idempotency_key", "appointments",
                                        ["user_id", "idempotency_key"])


def downgrade():
    op.drop_constraint("uq_appointments_user_id_idempotency_key", "appointments", type_="unique")
    op.drop_column("appointments", "idempotency_fingerprint")
    op.drop_column("appointments", "idempotency_key")
