"""ImageClassifier: the single-image 2D classifier on any timm backbone, its uniform surface and its variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitalens.errors import InputError
from vitalens.explain import gradcam_2d
from vitalens.nets import create_net, list_nets
from vitalens.nets.classifier2d import ImageClassifier


@pytest.fixture(scope="module")
def tiny() -> ImageClassifier:
    torch.manual_seed(0)
    return create_net("image_classifier_test", num_classes=4).eval()


def test_variants_are_registered_argument_sets() -> None:
    names = set(list_nets("image_classifier*"))
    assert {"image_classifier", "image_classifier_lite0", "image_classifier_lite1", "image_classifier_lite2"} <= names
    assert {"image_classifier_resnet18", "image_classifier_test"} <= names
    assert create_net("image_classifier_test", num_classes=3).backbone == "test_efficientnet"
    assert create_net("image_classifier", backbone="resnet18", num_classes=2).target_layer == "encoder.layer4"


def test_forward_and_the_uniform_surface(tiny: ImageClassifier) -> None:
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = tiny(x)
        fmap = tiny.forward_features(x)
        pooled = tiny.encode(x)
        from_map = tiny.forward_head(fmap)
        from_pooled = tiny.forward_head(pooled)
        pre = tiny.forward_head(fmap, pre_logits=True)
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    assert fmap.ndim == 4 and fmap.shape[:2] == (2, tiny.num_features)
    assert pooled.shape == (2, tiny.num_features) and pre.shape == (2, tiny.num_features)
    assert torch.allclose(from_map, logits, atol=1e-6) and torch.allclose(from_pooled, logits, atol=1e-6)
    assert tiny.get_classifier() is tiny.classifier and tiny.classifier.out_features == 4
    assert tiny.target_layer == "encoder.bn2"


def test_reset_classifier_keeps_the_encoder() -> None:
    net = create_net("image_classifier_test", num_classes=4, head_hidden=8)
    stem = net.encoder.conv_stem.weight.clone()
    net.reset_classifier(7)
    assert net(torch.rand(1, 3, 64, 64)).shape == (1, 7) and net.classifier.in_features == 8
    assert torch.equal(net.encoder.conv_stem.weight, stem)


def test_freeze_and_tail_unfreeze() -> None:
    net = create_net("image_classifier_test", num_classes=2)
    net.freeze_encoder(True)
    assert not any(p.requires_grad for p in net.encoder.parameters())
    assert all(p.requires_grad for p in net.classifier.parameters())
    net.freeze_encoder(False, trainable_tail=1)
    stages = net.encoder_stages()
    assert all(p.requires_grad for p in stages[-1].parameters())
    assert not any(p.requires_grad for p in stages[0].parameters())


def test_grayscale_lite1_from_offline_weights_and_gradcam_in_input_coordinates() -> None:
    net = create_net("image_classifier_lite1", pretrained=True, num_classes=3, in_chans=1).eval()
    assert net.encoder.conv_stem.weight.shape[1] == 1
    x = torch.rand(1, 1, 96, 80, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        top = int(net(x).argmax())
    heat = gradcam_2d(net, x, target_index=top)
    assert heat.shape == (96, 80) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and 0.0 <= heat.min() and heat.max() <= 1.0 and heat.max() > 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="num_classes must be ≥ 1"):
        ImageClassifier("test_efficientnet", num_classes=0)
    with pytest.raises(InputError, match="'lite2' weights exist only for backbone 'efficientnet_lite2'"):
        create_net("image_classifier_lite0", pretrained="lite2")
