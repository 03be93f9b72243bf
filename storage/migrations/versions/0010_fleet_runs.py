"""fleet runs: one command over many apps, one item per app

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fleet_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("card_channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("card_ts", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_fleet_run_state"), "fleet_run", ["state"], unique=False)
    op.create_table(
        "fleet_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("app_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["fleet_run.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "app_key", name="uq_fleet_item_app"),
    )
    op.create_index(op.f("ix_fleet_item_run_id"), "fleet_item", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_fleet_item_run_id"), table_name="fleet_item")
    op.drop_table("fleet_item")
    op.drop_index(op.f("ix_fleet_run_state"), table_name="fleet_run")
    op.drop_table("fleet_run")
