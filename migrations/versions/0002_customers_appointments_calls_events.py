"""customers, appointments, calls and the event outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 02:20:27.858110

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('customers',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_customers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('user_id', 'phone', name=op.f('uq_customers_user_id_phone'))
    )
    op.create_table('events',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_events_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    op.create_index('ix_events_due', 'events', ['next_attempt_at'], unique=False, postgresql_where='dispatched_at IS NULL')
    op.create_index('ix_events_user_id_type_created_at', 'events', ['user_id', 'type', 'created_at'], unique=False)

    op.create_table('appointments',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('customer_id', sa.UUID(), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='scheduled', nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=16), server_default='callnfy', nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('google_event_id', sa.String(length=1024), nullable=True),
    sa.Column('google_etag', sa.String(length=255), nullable=True),
    sa.Column('google_synced_version', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("source IN ('callnfy', 'google')", name=op.f('ck_appointments_source')),
    sa.CheckConstraint("status IN ('scheduled', 'cancelled', 'completed')", name=op.f('ck_appointments_status')),
    sa.CheckConstraint('duration BETWEEN 1 AND 1440', name=op.f('ck_appointments_duration')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_appointments_customer_id_customers')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_appointments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments'))
    )
    op.create_index('ix_appointments_user_id_created_at', 'appointments', ['user_id', 'created_at'], unique=False)
    op.create_index('ix_appointments_user_id_google_event_id', 'appointments', ['user_id', 'google_event_id'], unique=True, postgresql_where='google_event_id IS NOT NULL')
    op.create_index('ix_appointments_user_id_scheduled_at', 'appointments', ['user_id', 'scheduled_at'], unique=False)

    op.create_table('calls',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('customer_id', sa.UUID(), nullable=False),
    sa.Column('duration', sa.Integer(), nullable=False),
    sa.Column('recording_url', sa.String(length=2048), nullable=True),
    sa.Column('transcript', sa.Text(), nullable=True),
    sa.Column('sentiment', sa.String(length=16), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("sentiment IS NULL OR sentiment IN ('positive', 'neutral', 'negative')", name=op.f('ck_calls_sentiment')),
    sa.CheckConstraint('duration BETWEEN 0 AND 86400', name=op.f('ck_calls_duration')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_calls_customer_id_customers')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_calls_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calls'))
    )
    op.create_index('ix_calls_user_id_received_at', 'calls', ['user_id', 'received_at'], unique=False)

    op.create_table('event_handler_runs',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('handler', sa.String(length=100), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_event_handler_runs_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', 'handler', name=op.f('pk_event_handler_runs'))
    )


def downgrade():
    op.drop_table('event_handler_runs')
    op.drop_index('ix_calls_user_id_received_at', table_name='calls')

    op.drop_table('calls')
    op.drop_index('ix_appointments_user_id_scheduled_at', table_name='appointments')
    op.drop_index('ix_appointments_user_id_google_event_id', table_name='appointments')
    op.drop_index('ix_appointments_user_id_created_at', table_name='appointments')

    op.drop_table('appointments')
    op.drop_index('ix_events_user_id_type_created_at', table_name='events')
    op.drop_index('ix_events_due', table_name='events')

    op.drop_table('events')
    op.drop_table('customers')
