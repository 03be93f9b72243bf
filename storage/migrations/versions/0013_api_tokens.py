"""the CI API's tokens: kept as digests, scoped to apps and roles

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 20:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", text(length=64), nullable=False),
        sa.Column("active_name", text(length=64), nullable=True),
        sa.Column("token_hash", text(length=64), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("apps", sa.JSON(), nullable=False),
        sa.Column("created_by", text(length=200), nullable=False),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("last_used_at", when(), nullable=True),
        sa.Column("revoked_at", when(), nullable=True),
        sa.Column("revoked_by", text(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("active_name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(op.f("ix_api_token_name"), "api_token", ["name"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_token_name"), table_name="api_token")
    op.drop_table("api_token")
