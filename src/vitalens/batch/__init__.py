"""Batch screening of an archive: cases from a manifest or a folder, analysed on Ray Data, results as Parquet.

``vitalens batch ANALYZER --input DIR|manifest.csv --out results.parquet``; resumable, with progress; every case
takes the single-analysis path (slot decoders → analyzer), so batch and one-by-one results are identical.
"""

from __future__ import annotations

import logging

from vitalens.batch._cases import Case, cases_from_dir, cases_from_manifest, load_cases
from vitalens.batch._run import BatchSummary, analyse_case, case_inputs, result_row, run_batch

__all__ = [
    "BatchSummary",
    "Case",
    "analyse_case",
    "case_inputs",
    "cases_from_dir",
    "cases_from_manifest",
    "load_cases",
    "result_row",
    "run_batch",
]

logger = logging.getLogger(__name__)
