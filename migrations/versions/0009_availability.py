"""availability: settings per owner, holds, and the busy copy of their calendars

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 14:00:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


# New tables only: nothing the old release reads is locked.
def upgrade():
    op.create_table(
        "availability_settings",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("working_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("buffer_before", sa.Integer(), server_default="0", nullable=False),
        sa.Column("buffer_after", sa.Integer(), server_default="0", nullable=False),
        sa.Column("min_notice", sa.Integer(), server_default="0", nullable=False),
        sa.Column("busy_calendars", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_availability_settings_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_availability_settings")),
    )
    op.create_table(
        "availability_holds",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("clock_timestamp()"),
                  nullable=False),
        sa.CheckConstraint("duration BETWEEN 1 AND 1440", name=op.f("ck_availability_holds_duration")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_availability_holds_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_availability_holds")),
    )
    op.create_index("ix_availability_holds_user_id_scheduled_at", "availability_holds", ["user_id", "scheduled_at"])
    op.create_table(
        "busy_sources",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("calendar_id", sa.String(length=255), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_busy_sources_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "provider", "calendar_id", name=op.f("pk_busy_sources")),
    )
    op.create_table(
        "busy_blocks",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("calendar_id", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=1024), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("all_day", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_busy_blocks_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_busy_blocks")),
    )
    op.create_index("ix_busy_blocks_user_id_starts_at", "busy_blocks", ["user_id", "starts_at"])
    op.create_index("ix_busy_blocks_source", "busy_blocks", ["user_id", "provider", "calendar_id"])


def downgrade():
    op.drop_table("busy_blocks")
    op.drop_table("busy_sources")
    op.drop_table("availability_holds")
    op.drop_table("availability_settings")
