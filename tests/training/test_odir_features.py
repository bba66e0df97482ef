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


def test_pooled_stages_append_the_blocks_mean_outputs_and_leave_the_default_unchanged(
    twin: OdirDataset, tmp_path: Path
) -> None:
    from vitalens.data.torch_odir import load_rgb
    from vitalens.data.transforms import FundusPreprocess
    from vitalens.nets.bilateral import BilateralFusionNet
    from vitalens.nets.pretrained import normalization_for

    kw = {"backbone": "test_efficientnet", "pretrained": "none", "size": 48, "views": ("id",)}
    torch.manual_seed(0)
    plain = extract_features(twin, cache_dir=None, **kw)
    torch.manual_seed(0)
    staged = extract_features(twin, cache_dir=tmp_path, pool_stages=(3, 4), **kw)
    torch.manual_seed(0)
    net = BilateralFusionNet("test_efficientnet", pretrained="none").eval()
    enc = net.encoder
    width = enc.num_features
    c3, c4 = enc.blocks[3][-1].conv_pwl.out_channels, enc.blocks[4][-1].conv_pwl.out_channels
    assert plain.feats.shape == (len(twin), 2, 1, width)
    assert staged.feats.shape == (len(twin), 2, 1, width + c3 + c4)
    assert staged.pool_stages == (3, 4) and plain.pool_stages == ()
    # the leading columns are exactly the default vectors (the bundled net's encoder output)
    np.testing.assert_array_equal(staged.feats[..., :width], plain.feats)
    # the appended columns are the spatial means of blocks[3] and blocks[4], by hand
    prep = FundusPreprocess(48, *normalization_for("test_efficientnet", "none"))
    x = prep(load_rgb(twin.records[2].left))[None]
    with torch.no_grad():
        h = enc.bn1(enc.conv_stem(x))
        means = []
        for k, block in enumerate(enc.blocks):
            h = block(h)
            if k in (3, 4):
                means.append(h.mean(dim=(-2, -1))[0].numpy())
    np.testing.assert_allclose(staged.feats[2, 0, 0, width:], np.concatenate(means), rtol=1e-4, atol=1e-5)
    # its own cache file, plus the default's under the default key (a later default call is a cache hit)
    names = sorted(p.name for p in tmp_path.glob("*.npy"))
    assert len(names) == 2 and sum("-s3.4-" in n for n in names) == 1
    torch.manual_seed(1)  # another random trunk: only cache hits give the first numbers back
    np.testing.assert_array_equal(extract_features(twin, cache_dir=tmp_path, **kw).feats, plain.feats)
    np.testing.assert_array_equal(
        extract_features(twin, cache_dir=tmp_path, pool_stages=(3, 4), **kw).feats, staged.feats
    )


def test_pooled_stage_out_of_range_is_refused(twin: OdirDataset) -> None:
    with pytest.raises(ValueError, match=r"pool_stages \[9\] out of range: the encoder has blocks 0..4"):
        extract_features(
            twin, backbone="test_efficientnet", pretrained="none", size=48, views=("id",), pool_stages=(9,)
        )
