"""Batch screening on Ray Data: the same per-case path as a single analysis, many cases at once, resumable.

Why Ray Data: one process per worker holds one model in memory and streams cases through it; on one machine it
uses the local cores (``ray.init()`` starts a local cluster), on a cluster the same code spreads over the nodes
(``RAY_ADDRESS``). Why chunks: results are written as Parquet part files, one per chunk, each atomically; an
interrupted run (a crash, a killed node, Ctrl-C) loses at most the chunk in flight, and a re-run skips every case
a part already holds. Every case goes through :func:`analyse_case` — the slot decoders and the analyzer call that a
single analysis uses — so a batch row equals the one-by-one result (a test checks it).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitalens.batch._cases import Case
from vitalens.errors import InputError

__all__ = ["BatchSummary", "analyse_case", "case_inputs", "result_row", "run_batch"]

logger = logging.getLogger(__name__)

_STATE = "batch.json"


@dataclass
class BatchSummary:
    """What a run did: cases in the input, done before (resumed), analysed now, failed, and the output."""

    analyzer: str
    model: str | None
    total: int
    skipped: int = 0
    analysed: int = 0
    failed: int = 0
    seconds: float = 0.0
    out: str = ""
    parts: list[str] = field(default_factory=list)

    @property
    def cases_per_second(self) -> float:
        return self.analysed / self.seconds if self.seconds > 0 else 0.0


def case_inputs(case: Case, analyzer: Any, *, max_bytes: int | None = None, max_pixels: int = 40_000_000) -> Any:
    """The :class:`~vitalens.domain.StudyInputs` of ``case``: each file and value decoded by its slot's decoder and
    checked against the analyzer's limits, exactly as an upload is."""
    from vitalens.domain import StudyInputs
    from vitalens.slots import decode_slot, get_slot

    values: dict[str, Any] = {}
    for slot, path in case.files.items():
        file = Path(path)
        if not file.is_file():
            raise InputError(f"file not found: {file}", field=slot)
        value = decode_slot(slot, file.read_bytes(), filename=file.name, max_bytes=max_bytes, max_pixels=max_pixels)
        analyzer.validate_input(slot, value)
        values[get_slot(slot).attribute] = value
    for slot, text in case.values.items():
        value = decode_slot(slot, text)
        analyzer.validate_input(slot, value)
        values[get_slot(slot).attribute] = value
    return StudyInputs(**values)


def analyse_case(case: Case, analyzer: Any, *, explain: bool = False) -> Any:
    """One case through the single-analysis path: decode → analyzer (quality gates, model) → ``AnalysisResult``."""
    return analyzer(case_inputs(case, analyzer), explain=explain)


def result_row(case: Case, result: Any | None, error: str | None) -> dict[str, Any]:
    """One output row: id, status, per-label probability/positive, measurements, and the full result as JSON."""
    row: dict[str, Any] = {"case_id": case.case_id, "status": "ok" if error is None else "error", "error": error}
    if result is None:
        return row
    row["model"] = result.model.name if result.model else None
    row["model_version"] = result.model.version if result.model else None
    row["band"] = str(result.band) if getattr(result, "band", None) is not None else None
    row["tier"] = str(result.tier) if getattr(result, "tier", None) is not None else None
    for f in result.findings:
        row[f"p_{f.code}"] = float(f.probability)
        row[f"positive_{f.code}"] = bool(f.positive)
    for m in result.measurements:
        row[f"m_{m.name}"] = None if m.value is None else float(m.value)
    row["result_json"] = result.model_dump_json(exclude={"explanations"})
    return row


class _Worker:
    """A Ray Data actor: builds the analyzer once, then analyses each batch of cases it is given."""

    def __init__(self, analyzer: str, artifact: str | None, torch_threads: int) -> None:
        import torch

        from vitalens.analyzers import create_analyzer

        torch.set_num_threads(max(1, torch_threads))
        self.analyzer = create_analyzer(analyzer, artifact=Path(artifact) if artifact else None)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        rows = []
        for payload in batch["case"]:
            case = Case.from_dict(json.loads(str(payload)))
            try:
                rows.append(result_row(case, analyse_case(case, self.analyzer), None))
            except Exception as exc:  # noqa: BLE001 - one bad case is a row with its error, the batch goes on
                message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
                rows.append(result_row(case, None, message))
        return {"row": [json.dumps(r) for r in rows]}


def _ensure_ray(num_cpus: int | None) -> None:
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)


def _done_ids(parts_dir: Path) -> set[str]:
    import pyarrow.parquet as pq

    done: set[str] = set()
    for part in sorted(parts_dir.glob("part-*.parquet")):
        done.update(str(v) for v in pq.read_table(part, columns=["case_id"]).column("case_id").to_pylist())
    return done


def _check_state(parts_dir: Path, state: dict[str, Any]) -> None:
    path = parts_dir / _STATE
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        if (before.get("analyzer"), before.get("model")) != (state["analyzer"], state["model"]):
            raise InputError(
                f"{parts_dir} holds results of {before.get('analyzer')} ({before.get('model')}); this run is "
                f"{state['analyzer']} ({state['model']}): use another --out or delete the parts",
                field="out",
            )
    else:
        path.write_text(json.dumps(state, indent=2), encoding="utf-8")


def _write_part(parts_dir: Path, index: int, rows: list[dict[str, Any]]) -> Path:
    import pandas as pd

    final = parts_dir / f"part-{index:05d}.parquet"
    tmp = parts_dir / f".part-{index:05d}.parquet.tmp"
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    os.replace(tmp, final)
    return final


def run_batch(
    analyzer: str,
    cases: Sequence[Case],
    out: Path,
    *,
    artifact: Path | None = None,
    chunk_size: int = 256,
    concurrency: int | None = None,
    torch_threads: int = 1,
    max_chunks: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BatchSummary:
    """Analyse ``cases`` with ``analyzer`` on Ray Data and write ``out`` (Parquet), resuming earlier parts.

    Args:
        analyzer: registered analyzer name.
        cases: what to screen (:func:`vitalens.batch.load_cases`).
        out: the results file; part files go to ``<out>.parts/`` until the run completes.
        artifact: a model artifact folder (default: the analyzer's bundled model).
        chunk_size: rows per part file (what an interruption can lose).
        concurrency: model replicas (Ray actors); default half the local CPUs, at least 1.
        torch_threads: torch threads per replica.
        max_chunks: stop after writing this many part files (to split a long run; the next run resumes).
        progress: called with (done, total) after every part file.

    Returns:
        The summary; ``out`` exists once every case has a row.
    """
    import pandas as pd
    import ray

    from vitalens.analyzers import create_analyzer

    out = Path(out)
    ids = [c.case_id for c in cases]
    if len(set(ids)) != len(ids):
        raise InputError("case ids must be unique", field="input")
    probe = create_analyzer(analyzer, artifact=artifact)
    model = None
    if probe.artifact is not None:
        info = probe.model_info()
        model = f"{info.name} {info.version}"
    parts_dir = out.with_name(out.name + ".parts")
    parts_dir.mkdir(parents=True, exist_ok=True)
    _check_state(parts_dir, {"analyzer": analyzer, "model": model, "cases": len(cases)})
    done = _done_ids(parts_dir)
    todo = [c for c in cases if c.case_id not in done]
    summary = BatchSummary(analyzer=analyzer, model=model, total=len(cases), skipped=len(cases) - len(todo))
    if summary.skipped:
        logger.info("resuming: %d of %d cases already done", summary.skipped, len(cases))
    workers = max(1, min(concurrency or max(1, (os.cpu_count() or 2) // 2), len(todo) or 1))
    start = time.perf_counter()
    next_index = len(list(parts_dir.glob("part-*.parquet")))
    if todo:
        _ensure_ray(None)
        # One streaming pipeline for the whole run: the replicas start once, rows come back as they are done and
        # are written every ``chunk_size`` rows.
        ds = ray.data.from_items([{"case": json.dumps(c.as_dict())} for c in todo])
        ds = ds.map_batches(
            _Worker,
            fn_constructor_kwargs={
                "analyzer": analyzer,
                "artifact": str(artifact) if artifact else None,
                "torch_threads": torch_threads,
            },
            batch_size=max(1, min(8, chunk_size)),
            concurrency=workers,
            num_cpus=torch_threads,
        )
        pending: list[dict[str, Any]] = []
        written = 0

        def flush() -> None:
            nonlocal next_index, written
            summary.parts.append(str(_write_part(parts_dir, next_index, pending)))
            next_index += 1
            written += 1
            summary.analysed += len(pending)
            summary.failed += sum(1 for r in pending if r["status"] != "ok")
            pending.clear()
            logger.info("batch %s: %d/%d cases", analyzer, summary.skipped + summary.analysed, len(cases))
            if progress is not None:
                progress(summary.skipped + summary.analysed, len(cases))

        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            pending.extend(json.loads(str(r)) for r in batch["row"])
            while len(pending) >= chunk_size:
                tail = pending[chunk_size:]
                del pending[chunk_size:]
                flush()
                pending.extend(tail)
                if max_chunks is not None and written >= max_chunks:
                    break
            if max_chunks is not None and written >= max_chunks:
                break
        else:
            if pending:
                flush()
    summary.seconds = time.perf_counter() - start
    if summary.skipped + summary.analysed == len(cases):
        frames = [pd.read_parquet(p) for p in sorted(parts_dir.glob("part-*.parquet"))]
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"case_id": []})
        order = {cid: i for i, cid in enumerate(ids)}
        table = table[table["case_id"].isin(order)]
        table = table.sort_values("case_id", key=lambda s: s.map(order)).reset_index(drop=True)
        tmp = out.with_name(f".{out.name}.tmp")
        table.to_parquet(tmp, index=False)
        os.replace(tmp, out)
        summary.out = str(out)
        summary.failed = int((table["status"] != "ok").sum())
    return summary
