"""Studies received over DICOMweb remember their DICOM Study Instance UID (a second push joins the same study).

Revision ID: 0004_dicom_study_uid
Revises: 0003_generic_slots
Create Date: 2026-12-01 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_dicom_study_uid"
down_revision: str | None = "0003_generic_slots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dicom_study_uid", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_studies_dicom_study_uid"), ["dicom_study_uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_studies_dicom_study_uid"))
        batch_op.drop_column("dicom_study_uid")
