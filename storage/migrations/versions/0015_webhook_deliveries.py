"""webhook deliveries kept in the database until taken, so none is lost with a process

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 22:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", text(length=40), nullable=False),
        sa.Column("kind", text(length=16), nullable=False),
        sa.Column("url", text(length=2000), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", when(), nullable=False),
        sa.Column("claimed_until", when(), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_webhook_delivery_due_at"), "webhook_delivery", ["due_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_delivery_due_at"), table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
