"""Offline EfficientNet-Lite0 ImageNet weights: ordered, shape-checked mapping into timm, and they see a photo."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import timm
import torch

from vitalens.errors import ArtifactError, InputError, UnknownNameError
from vitalens.nets.pretrained import (
    LITE0_MEAN,
    LITE0_STD,
    create_backbone,
    lite0_state_dict_for_timm,
    lite0_weights_path,
    load_lite0_imagenet,
    map_state_dict_ordered,
    normalization_for,
    resolve_pretrained,
)

# ImageNet-1k classes a photo of a person in a navy uniform with a tie may sensibly get.
PERSON_WEAR = {
    652: "military uniform",
    834: "suit",
    457: "bow tie",
    906: "Windsor tie",
    465: "bulletproof vest",
    451: "bolo tie",
    617: "lab coat",
    400: "academic gown",
}


def _grace_hopper(size: int = 224) -> torch.Tensor:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        image = Image.open(fh).convert("RGB").resize((size, size), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean, std = torch.tensor(LITE0_MEAN)[:, None, None], torch.tensor(LITE0_STD)[:, None, None]
    return ((x - mean) / std)[None]


def _top5(model: torch.nn.Module) -> list[int]:
    with torch.no_grad():
        return model.eval()(_grace_hopper()).topk(5).indices[0].tolist()


def test_weights_file_ships_in_the_package() -> None:
    path = lite0_weights_path()
    assert path.name == "efficientnet-lite0-57934424.pth"
    assert path.stat().st_size > 10_000_000


def test_mapping_is_ordered_and_complete() -> None:
    mapped = lite0_state_dict_for_timm()
    raw = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    template = timm.create_model("efficientnet_lite0").state_dict()
    assert list(mapped) == list(template)
    # pairs by position: first, a middle depthwise conv, the classifier
    assert torch.equal(mapped["conv_stem.weight"], raw["_conv_stem.weight"])
    assert torch.equal(mapped["blocks.0.0.conv_dw.weight"], raw["_blocks.0._depthwise_conv.weight"])
    assert torch.equal(mapped["conv_head.weight"], raw["_conv_head.weight"])
    assert torch.equal(mapped["classifier.bias"], raw["_fc.bias"])


def test_mapping_fails_loudly_at_first_shape_mismatch() -> None:
    source = OrderedDict(a=torch.zeros(2, 3), b=torch.zeros(4), c=torch.zeros(5))
    target = OrderedDict(x=torch.zeros(2, 3), y=torch.zeros(5), z=torch.zeros(4))
    with pytest.raises(ArtifactError, match=r"#1 'b' has shape \(4,\) but the model's 'y' has \(5,\)"):
        map_state_dict_ordered(source, target)
    with pytest.raises(ArtifactError, match="has 3 tensors, the model has 2"):
        map_state_dict_ordered(source, OrderedDict(x=torch.zeros(2, 3), y=torch.zeros(4)))


def test_loading_into_another_architecture_fails() -> None:
    with pytest.raises(ArtifactError, match="architectures differ|cannot be mapped"):
        load_lite0_imagenet(timm.create_model("test_efficientnet"))


def test_lite0_classifies_grace_hopper_as_person_wear_and_random_init_does_not() -> None:
    torch.manual_seed(0)
    pretrained = create_backbone("efficientnet_lite0", pretrained="lite0")
    top5 = _top5(pretrained)
    # observed: military uniform, suit, bulletproof vest, Windsor tie, bow tie
    assert top5[0] == 652
    assert len(set(top5) & set(PERSON_WEAR)) >= 4
    assert pretrained.pretrained_cfg["mean"] == LITE0_MEAN
    random_top5 = _top5(timm.create_model("efficientnet_lite0"))
    assert len(set(random_top5) & set(PERSON_WEAR)) <= 1


def test_headless_model_keeps_its_own_classifier_and_adapts_one_channel_stem() -> None:
    features = create_backbone("efficientnet_lite0", pretrained=True, num_classes=0)
    assert features.num_features == 1280
    raw = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(features.conv_head.weight, raw["_conv_head.weight"])
    gray = create_backbone("efficientnet_lite0", pretrained="lite0", num_classes=3, in_chans=1)
    assert gray.conv_stem.weight.shape == (32, 1, 3, 3)
    assert torch.allclose(gray.conv_stem.weight, raw["_conv_stem.weight"].sum(dim=1, keepdim=True))
    assert gray.classifier.out_features == 3


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (False, "none"),
        (None, "none"),
        ("none", "none"),
        ("false", "none"),
        (True, "lite0"),
        ("lite0", "lite0"),
        ("LITE0", "lite0"),
        ("hub", "hub"),
    ],
)
def test_resolve_pretrained(value: bool | str | None, mode: str) -> None:
    assert resolve_pretrained(value) == mode


def test_resolve_pretrained_unknown() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'lite0'"):
        resolve_pretrained("lte0")


def test_lite0_only_for_lite0_backbones() -> None:
    with pytest.raises(InputError, match="only for backbone 'efficientnet_lite0', not 'test_efficientnet'"):
        create_backbone("test_efficientnet", pretrained=True)
    with pytest.raises(
        InputError, match="'lite1' weights exist only for backbone 'efficientnet_lite1', not 'efficientnet_lite0'"
    ):
        create_backbone("efficientnet_lite0", pretrained="lite1")


def test_hub_offline_says_what_to_do() -> None:
    # conftest sets HF_HUB_OFFLINE=1: the hub is unreachable by design here
    with pytest.raises(ArtifactError, match="model hub.*pretrained: lite0.*pretrained: false"):
        create_backbone("test_efficientnet", pretrained="hub")


def test_unknown_backbone() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'efficientnet_lite0'"):
        create_backbone("efficientnet_lite00")


@pytest.mark.parametrize(
    ("mode", "backbone", "features"), [("lite1", "efficientnet_lite1", 1280), ("lite2", "efficientnet_lite2", 1280)]
)
def test_lite1_and_lite2_load_every_tensor_by_order_with_shapes_checked(
    mode: str, backbone: str, features: int
) -> None:
    from vitalens.nets.pretrained import lite_weights_path

    raw = torch.load(lite_weights_path(mode), map_location="cpu", weights_only=True)
    for pretrained in (mode, True):
        model = create_backbone(backbone, pretrained=pretrained, num_classes=0)
        assert model.num_features == features
        assert torch.equal(model.conv_stem.weight, raw["_conv_stem.weight"])
        assert torch.equal(model.conv_head.weight, raw["_conv_head.weight"])
        assert model.pretrained_cfg["tag"] == f"{mode}_pypi"
    assert normalization_for(backbone, True) == (LITE0_MEAN, LITE0_STD)


def test_lite1_classifies_grace_hopper_as_person_wear() -> None:
    model = create_backbone("efficientnet_lite1", pretrained="lite1")
    assert len(set(_top5(model)) & set(PERSON_WEAR)) >= 3


def test_normalization_for() -> None:
    assert normalization_for("efficientnet_lite0", "lite0") == (LITE0_MEAN, LITE0_STD)
    assert LITE0_MEAN[0] == pytest.approx(0.49804, abs=1e-5) and LITE0_STD[0] == pytest.approx(0.50196, abs=1e-5)
    assert normalization_for("efficientnet_b4", False) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
