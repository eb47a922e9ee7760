"""neighbors: each flagged item's nearest neighbours and near-duplicate set, per run

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "neighbors",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("neighbor_ids", sa.JSON(), nullable=False),
        sa.Column("duplicate_set", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name="fk_neighbors_item_id_items"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_neighbors_run_id_runs"),
        sa.PrimaryKeyConstraint("run_id", "item_id", name="pk_neighbors"),
    )
    op.create_index("ix_neighbors_run_set", "neighbors", ["run_id", "duplicate_set"])


def downgrade() -> None:
    op.drop_index("ix_neighbors_run_set", table_name="neighbors")
    op.drop_table("neighbors")
