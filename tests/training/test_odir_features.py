"""Frozen-trunk ODIR features: the vectors are the net's own encoder output on the card's preprocessing, views are
the documented transforms, and the per-view cache is reused and invalidated by a changed image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vitalens.data.odir import OdirDataset
from vitalens.synth.odir import write_odir_synth
from vitalens.training.odir_features import extract_features, view_transform


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> OdirDataset:
    root = write_odir_synth(tmp_path_factory.mktemp("odir"), n_patients=6, image_size=64, seed=0)
    return OdirDataset(root)


def test_views_are_the_documented_transforms() -> None:
    x = torch.arange(3 * 4 * 4, dtype=torch.uint8).reshape(3, 4, 4)
    torch.testing.assert_close(view_transform("hflip")(x), x.flip(-1))
    torch.testing.assert_close(view_transform("vflip")(x), x.flip(-2))
    torch.testing.assert_close(view_transform("rot180")(x), x.flip(-1).flip(-2))
    torch.testing.assert_close(view_transform("id")(x), x)
    with pytest.raises(Exception, match="feature view"):
        view_transform("upside-down")


def test_features_are_the_encoder_output_on_the_card_preprocessing(twin: OdirDataset, tmp_path: Path) -> None:
    from vitalens.data.torch_odir import load_rgb
    from vitalens.data.transforms import FundusPreprocess
    from vitalens.nets.bilateral import BilateralFusionNet
    from vitalens.nets.pretrained import normalization_for

    torch.manual_seed(0)
    feats = extract_features(
        twin, backbone="test_efficientnet", pretrained="none", size=48, views=("id", "hflip"), cache_dir=None
    )
    assert feats.feats.shape[:3] == (len(twin), 2, 2)
    torch.manual_seed(0)
    net = BilateralFusionNet("test_efficientnet", pretrained="none").eval()
    prep = FundusPreprocess(48, *normalization_for("test_efficientnet", "none"))
    rec = twin.records[1]
    with torch.no_grad():
        right = prep(load_rgb(rec.right))[None]
        np.testing.assert_allclose(feats.feats[1, 1, 0], net.encode(right)[0].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(feats.feats[1, 1, 1], net.encode(right.flip(-1))[0].numpy(), rtol=1e-4, atol=1e-5)


def test_cache_is_reused_per_view_and_invalidated_by_a_changed_image(twin: OdirDataset, tmp_path: Path) -> None:
    kw = {"backbone": "test_efficientnet", "pretrained": "none", "size": 48, "cache_dir": tmp_path}
    torch.manual_seed(0)
    first = extract_features(twin, views=("id",), **kw)
    files = sorted(tmp_path.glob("*.npy"))
    assert len(files) == 1
    torch.manual_seed(1)  # a different random trunk: only a cache hit returns the first numbers
    again = extract_features(twin, views=("id", "hflip"), **kw)
    np.testing.assert_array_equal(again.feats[:, :, 0], first.feats[:, :, 0])
    assert len(sorted(tmp_path.glob("*.npy"))) == 2
    path = twin.records[0].left
    path.write_bytes(path.read_bytes() + b"\0")  # a changed file (size) is a different image
    torch.manual_seed(1)
    changed = extract_features(twin, views=("id",), **kw)
    assert not np.allclose(changed.feats[:, :, 0], first.feats[:, :, 0])
