"""GradualUnfreezing(freeze_bn=True): BatchNorm of frozen encoder layers stays in eval mode every training epoch."""

from __future__ import annotations

from types import SimpleNamespace

from torch import nn

from vitalens.nets import create_net
from vitalens.training.callbacks import GradualUnfreezing


def _bn_modes(net: nn.Module) -> list[bool]:
    return [m.training for m in net.encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_frozen_batchnorm_stays_in_eval_mode_and_unfrozen_tail_trains() -> None:
    net = create_net("image_classifier_test", num_classes=3)
    module = SimpleNamespace(net=net)
    cb = GradualUnfreezing(unfreeze_after=1, unfreeze_stages=1, freeze_bn=True)
    net.train()
    cb.on_train_epoch_start(SimpleNamespace(current_epoch=0), module)  # type: ignore[arg-type]
    assert not any(_bn_modes(net))  # the whole encoder is frozen: every BN in eval mode
    net.train()  # Lightning re-enters train mode before the next epoch
    cb.on_train_epoch_start(SimpleNamespace(current_epoch=1), module)  # type: ignore[arg-type]
    modes = _bn_modes(net)
    assert any(modes) and not all(modes)  # the unfrozen last stage trains its BN, the frozen stages do not
    plain = GradualUnfreezing(unfreeze_after=1, freeze_bn=False)
    net.train()
    plain.on_train_epoch_start(SimpleNamespace(current_epoch=0), module)  # type: ignore[arg-type]
    assert all(_bn_modes(net))
