"""The image–text alignment plug-in interface: unavailable without weights, pluggable with them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from vitalens.errors import UnknownNameError
from vitalens.notes.alignment import (
    AlignerUnavailable,
    ImageTextAligner,
    list_aligners,
    load_aligner,
    register_aligner,
    unregister_aligner,
)


class _Constant:
    name = "constant"

    def score(self, image: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return np.arange(len(texts), dtype=np.float32)


@pytest.fixture
def fake_aligner() -> Iterator[str]:
    register_aligner("test.constant")(lambda weights: _Constant())
    yield "test.constant"
    unregister_aligner("test.constant")


def test_nothing_configured_is_unavailable_not_faked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VITALENS_ALIGNER", raising=False)
    with pytest.raises(AlignerUnavailable, match="none is configured, so no alignment is reported"):
        load_aligner()


def test_weights_are_required(fake_aligner: str, tmp_path: Path) -> None:
    with pytest.raises(AlignerUnavailable, match="needs a weights folder"):
        load_aligner(fake_aligner, tmp_path / "missing")
    aligner = load_aligner(fake_aligner, tmp_path)
    assert isinstance(aligner, ImageTextAligner)
    assert aligner.score(np.zeros((4, 4, 3), np.uint8), ["a", "b"]).tolist() == [0.0, 1.0]


def test_unknown_names_list_the_registered_ones(fake_aligner: str, tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="Unknown aligner 'test.constnt'. Did you mean 'test.constant'"):
        load_aligner("test.constnt", tmp_path)
    assert "open_clip" in list_aligners()


def test_open_clip_without_its_package_or_config_says_so(tmp_path: Path) -> None:
    with pytest.raises(AlignerUnavailable, match="open_clip"):
        load_aligner("open_clip", tmp_path)
