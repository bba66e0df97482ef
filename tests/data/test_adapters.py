"""Dataset adapters: each writes exactly the layout it reads (synthetic twin → reader → writer → reader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vitalens.data import ExportInput, ExportRecord, SkipRecord, get_adapter, list_adapters
from vitalens.errors import UnknownNameError


def test_adapters_are_registered_and_unknown_names_help() -> None:
    assert {"odir", "ptbxl"} <= set(list_adapters())
    assert get_adapter("odir").title == "ODIR-5K" and get_adapter("ptbxl").labels[0] == "NORM"
    with pytest.raises(UnknownNameError, match="Did you mean 'odir'"):
        get_adapter("odri")


def _input(slot: str, path: Path, **meta: object) -> ExportInput:
    return ExportInput(slot=slot, filename=path.name, media_type="", load=path.read_bytes, meta=meta)


def test_odir_writer_writes_what_the_reader_reads(tmp_path: Path) -> None:
    adapter = get_adapter("odir")
    source = adapter.read(adapter.write_synthetic(tmp_path / "synth", n=6, seed=3))
    out = tmp_path / "export"
    with adapter.writer(out) as writer:
        for i, rec in enumerate(source.records):
            writer.add(
                ExportRecord(
                    record_id=f"study{i}",
                    patient_id=f"p{i}",
                    labels={c: bool(v) for c, v in zip(source.labels, rec.labels, strict=True)},
                    inputs={
                        "fundus_left": _input("fundus_left", rec.left),
                        "fundus_right": _input("fundus_right", rec.right),
                    },
                    age_years=float(rec.age_years),
                    sex=rec.sex,
                )
            )
        with pytest.raises(SkipRecord, match="not all 8 ODIR labels reviewed"):
            writer.add(ExportRecord(record_id="x", patient_id="x", labels={"N": True}, inputs={}))
    back = adapter.read(out)
    assert len(back) == len(source) and np.array_equal(back.targets, source.targets)
    assert [r.patient_id for r in back.records] == [f"study{i}" for i in range(len(source))]
    assert np.allclose(back.ages, source.ages)


def test_ptbxl_writer_writes_what_the_reader_reads_and_test_folds_alone_load(tmp_path: Path) -> None:
    adapter = get_adapter("ptbxl")
    root = adapter.write_synthetic(tmp_path / "synth", n=10, seed=1)
    source = adapter.read(root)
    out = tmp_path / "export"
    with adapter.writer(out) as writer:
        for i, fname in enumerate(source.filenames):
            zipped = tmp_path / f"rec{i}.zip"
            import zipfile

            with zipfile.ZipFile(zipped, "w") as zf:
                for suffix in (".hea", ".dat"):
                    zf.write(root / f"{fname}{suffix}", arcname=Path(fname).name + suffix)
            labels = {c: bool(v) for c, v in zip(source.labels, source.targets[i], strict=True)}
            writer.add(
                ExportRecord(
                    record_id=f"study{i}",
                    patient_id=f"patient{i // 2}",
                    labels=labels,
                    inputs={"ecg": _input("ecg", zipped)},
                    age_years=50.0 + i,
                    sex="female",
                )
            )
    back = adapter.read(out)
    assert len(back) == len(source) and np.array_equal(back.targets, source.targets)
    assert back.patient_ids.dtype.kind == "f" and len(set(back.patient_ids)) == 5  # numeric, one per patient
    assert np.allclose(back.read_record(0), source.read_record(0), atol=2e-3)  # 16-bit WFDB at 1 µV
    for fold in set(back.strat_folds):
        only = adapter.read(out, folds=[int(fold)])
        assert set(only.strat_folds) == {fold}
