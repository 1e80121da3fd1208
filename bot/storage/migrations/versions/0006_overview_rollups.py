"""overview roll-ups: one row of figures per settled day, and the index that checks them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 19:50:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "overview_day",
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", "day"),
    )
    with op.batch_alter_table("thread", schema=None) as batch_op:
        batch_op.create_index("ix_thread_opened_updated", ["opened_at", "updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("thread", schema=None) as batch_op:
        batch_op.drop_index("ix_thread_opened_updated")
    op.drop_table("overview_day")
