"""rollouts: one under way per app and platform (a partial unique index), the fleet run
that started one, the freezes holding its step

A database that already holds two rollouts under way of one app and platform (two starts
at once, before this index) keeps the newest under way; the older ones are marked
aborted, with a note saying why (their rows stay: nothing is deleted).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 21:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "state IN ('running', 'paused', 'halted', 'stepping')"
OLDER_ABORTED = """
UPDATE rollout
SET state = 'aborted', note = 'aborted: a newer rollout of this app and platform was under way'
WHERE state IN ('running', 'paused', 'halted', 'stepping') AND EXISTS (
    SELECT 1 FROM rollout AS newer
    WHERE newer.app_key = rollout.app_key AND newer.platform = rollout.platform
    AND newer.id > rollout.id AND newer.state IN ('running', 'paused', 'halted', 'stepping')
)
"""


def upgrade() -> None:
    with op.batch_alter_table("rollout") as batch:
        batch.add_column(sa.Column("fleet_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("held_by", sa.Text(), nullable=True))
        batch.create_index(batch.f("ix_rollout_fleet_id"), ["fleet_id"], unique=False)
        batch.create_foreign_key("fk_rollout_fleet_id_fleet_run", "fleet_run", ["fleet_id"], ["id"])
    op.execute(sa.text(OLDER_ABORTED))
    op.create_index(
        "uq_rollout_active",
        "rollout",
        ["app_key", "platform"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_rollout_active", table_name="rollout")
    with op.batch_alter_table("rollout") as batch:
        batch.drop_constraint("fk_rollout_fleet_id_fleet_run", type_="foreignkey")
        batch.drop_index(batch.f("ix_rollout_fleet_id"))
        batch.drop_column("held_by")
        batch.drop_column("fleet_id")
