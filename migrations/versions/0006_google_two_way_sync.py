"""google calendar two-way sync: the channel being replaced, the baseline time, sync errors; phone-less customers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    # During a renewal both channels are accepted: the new one (channel_*) and the one it replaces.
    op.add_column("integrations", sa.Column("previous_channel_id", sa.String(length=64), nullable=True))
    op.add_column("integrations", sa.Column("previous_channel_token_hash", sa.String(length=64), nullable=True))
    op.add_column("integrations", sa.Column("previous_channel_resource_id", sa.String(length=255), nullable=True))
    op.create_unique_constraint(op.f("uq_integrations_previous_channel_id"), "integrations", ["previous_channel_id"])
    # Google events created before this moment are never imported (the baseline of two-way sync).
    op.add_column("integrations", sa.Column("two_way_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("integrations", sa.Column("sync_error", sa.String(length=500), nullable=True))
    op.add_column("integrations", sa.Column("sync_attempts", sa.Integer(), server_default="0", nullable=False))
    # Appointments imported from Google may not know the customer's phone.
    op.alter_column("customers", "phone", existing_type=sa.String(length=32), nullable=True)


def downgrade():
    op.execute("DELETE FROM customers WHERE phone IS NULL")
    op.alter_column("customers", "phone", existing_type=sa.String(length=32), nullable=False)
    op.drop_column("integrations", "sync_attempts")
    op.drop_column("integrations", "sync_error")
    op.drop_column("integrations", "two_way_since")
    op.drop_constraint(op.f("uq_integrations_previous_channel_id"), "integrations", type_="unique")
    op.drop_column("integrations", "previous_channel_resource_id")
    op.drop_column("integrations", "previous_channel_token_hash")
    op.drop_column("integrations", "previous_channel_id")
