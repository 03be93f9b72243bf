"""a revision of the apps kept by the database; who retried a fleet run

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    revisions = op.create_table(
        "apps_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(revisions, [{"id": 1, "revision": 0}])
    with op.batch_alter_table("fleet_run") as batch:
        batch.add_column(
            sa.Column("retried_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("fleet_run") as batch:
        batch.drop_column("retried_by")
    op.drop_table("apps_revision")
