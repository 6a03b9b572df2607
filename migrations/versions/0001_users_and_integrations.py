"""users and integrations

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), server_default="Europe/London", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "integrations",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), server_default="connected", nullable=False),
        # Google Calendar
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("sync_mode", sa.String(length=16), nullable=True),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("calendar_id", sa.String(length=255), nullable=True),
        sa.Column("sync_token", sa.Text(), nullable=True),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("channel_token_hash", sa.String(length=64), nullable=True),
        sa.Column("channel_resource_id", sa.String(length=255), nullable=True),
        sa.Column("channel_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        # Zapier
        sa.Column("api_key_hash", sa.String(length=64), nullable=True),
        sa.Column("api_key_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("provider IN ('google_calendar', 'zapier')", name=op.f("ck_integrations_provider")),
        sa.CheckConstraint("status IN ('connected', 'reauthorization_required')", name=op.f("ck_integrations_status")),
        sa.CheckConstraint("sync_mode IS NULL OR sync_mode IN ('one-way', 'two-way')",
                           name=op.f("ck_integrations_sync_mode")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_integrations_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrations")),
        sa.UniqueConstraint("channel_id", name=op.f("uq_integrations_channel_id")),
        sa.UniqueConstraint("user_id", "provider", name=op.f("uq_integrations_user_id_provider")),
    )
    op.create_index("ix_integrations_user_id", "integrations", ["user_id"])
    op.create_index("ix_integrations_api_key_hash", "integrations", ["api_key_hash"], unique=True)


def downgrade():
    op.drop_index("ix_integrations_api_key_hash", table_name="integrations")
    op.drop_index("ix_integrations_user_id", table_name="integrations")
    op.drop_table("integrations")
    op.drop_table("users")
