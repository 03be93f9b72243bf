"""staged rollouts: a gray release grown step by step behind a health gate

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 19:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "rollout",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_key", text(length=64), nullable=False),
        sa.Column("version", text(length=64), nullable=False),
        sa.Column("platform", text(length=32), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("previous", text(length=64), nullable=True),
        sa.Column("plan", text(length=64), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("state", text(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("on_regression", text(length=16), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.Column("next_at", when(), nullable=True),
        sa.Column("step_at", when(), nullable=True),
        sa.Column("gray_since", when(), nullable=True),
        sa.Column("holding_since", when(), nullable=True),
        sa.Column("asked_at", when(), nullable=True),
        sa.Column("warned_at", when(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("started_by", text(length=200), nullable=False),
        sa.Column("channel", text(length=64), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.Column("finished_at", when(), nullable=True),
        sa.ForeignKeyConstraint(["release_id"], ["release.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_rollout_app_key"), "rollout", ["app_key"], unique=False)
    op.create_index(op.f("ix_rollout_release_id"), "rollout", ["release_id"], unique=False)
    op.create_index(op.f("ix_rollout_state"), "rollout", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_rollout_state"), table_name="rollout")
    op.drop_index(op.f("ix_rollout_release_id"), table_name="rollout")
    op.drop_index(op.f("ix_rollout_app_key"), table_name="rollout")
    op.drop_table("rollout")
