"""The one registry implementation: names, duplicates, helpful unknown names, discovery by walking packages and by
entry points, and loud failures for modules that do not import."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from vitalens._registry import Registry
from vitalens.errors import RegistryError, UnknownNameError


@pytest.fixture
def on_path(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path`` on ``sys.path`` for the test; modules imported from it are forgotten afterwards."""
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in set(sys.modules) - before:
            sys.modules.pop(name, None)
        import importlib

        importlib.invalidate_caches()


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_register_get_duplicate_and_unknown_with_the_closest_name() -> None:
    reg: Registry[int] = Registry("widget")
    assert reg.register("alpha.one", 1) == 1
    reg.decorator("alpha.two")(2)
    assert reg.get("alpha.two") == 2 and reg.names("alpha.*") == ["alpha.one", "alpha.two"]
    with pytest.raises(ValueError, match="widget 'alpha.one' is already registered"):
        reg.register("alpha.one", 3)
    with pytest.raises(UnknownNameError, match=r"Unknown widget 'alpha.tow'\. Did you mean 'alpha.two'\?"):
        reg.get("alpha.tow")
    with pytest.raises(ValueError, match="non-empty string"):
        reg.register(" padded", 4)


def test_temporarily_registers_for_a_block_only() -> None:
    reg: Registry[str] = Registry("widget")
    with reg.temporarily("fake", "x"):
        assert reg.get("fake") == "x"
    assert "fake" not in reg
    reg.register("kept", "y")
    assert reg.unregister("kept") == "y" and "kept" not in reg


def test_discovery_walks_every_public_module_and_skips_private_ones(on_path: Path) -> None:
    _write(on_path, "walkpkg/__init__.py", "from tests.test_registry import WALKED\n")
    for rel in ("walkpkg/a.py", "walkpkg/sub/__init__.py", "walkpkg/sub/b.py"):
        _write(on_path, rel, f"from tests.test_registry import WALKED\nWALKED.register('{rel}', 1)\n")
    _write(on_path, "walkpkg/_private.py", "raise RuntimeError('infrastructure is not walked')\n")
    WALKED._items.clear()
    WALKED._discovered = False
    assert WALKED.names() == ["walkpkg/a.py", "walkpkg/sub/__init__.py", "walkpkg/sub/b.py"]


def test_a_module_that_fails_to_import_is_an_error_naming_it(on_path: Path) -> None:
    _write(on_path, "brokenpkg/__init__.py", "")
    _write(on_path, "brokenpkg/good.py", "")
    _write(on_path, "brokenpkg/bad.py", "import a_module_that_is_not_installed\n")
    reg: Registry[int] = Registry("widget", packages=("brokenpkg",))
    with pytest.raises(RegistryError, match=r"widget module 'brokenpkg.bad' failed to import: ModuleNotFoundError"):
        reg.names()


def _dist(root: Path, name: str, group: str, entries: dict[str, str]) -> None:
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8")
    lines = [f"[{group}]"] + [f"{k} = {v}" for k, v in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_entry_points_of_installed_plugins_register(on_path: Path) -> None:
    _write(on_path, "plugin_ok.py", "from tests.test_registry import PLUGGED\nPLUGGED.register('plug.in', 42)\n")
    _dist(on_path, "plugin-ok", "vitalens.test_widgets", {"ok": "plugin_ok"})
    PLUGGED._items.clear()
    PLUGGED._discovered = False
    assert PLUGGED.get("plug.in") == 42


def test_an_entry_point_that_fails_is_an_error_naming_it_and_its_distribution(on_path: Path) -> None:
    _write(on_path, "plugin_bad.py", "raise ImportError('needs torch-nightly')\n")
    _dist(on_path, "plugin-bad", "vitalens.test_broken", {"bad": "plugin_bad"})
    reg: Registry[int] = Registry("widget", group="vitalens.test_broken")
    with pytest.raises(RegistryError, match=r"widget plug-in 'bad' \(plugin_bad, from plugin-bad\) failed to import"):
        reg.get("anything")


def test_the_real_registries_find_their_members_without_module_lists() -> None:
    from vitalens.analyzers import list_analyzers
    from vitalens.data import list_adapters
    from vitalens.nets import list_nets
    from vitalens.slots import list_slots
    from vitalens.training.tasks import list_tasks

    assert {"fundus.odir", "ecg.ptbxl", "ecg.intervals"} <= set(list_analyzers())
    assert {"odir_lite0", "se_resnet1d", "image_classifier_test"} <= set(list_nets())
    assert {"fundus.odir", "ecg.ptbxl"} <= set(list_tasks())
    assert {"odir", "ptbxl"} <= set(list_adapters())
    assert {"fundus_left", "fundus_right", "ecg", "age", "sex", "oct", "cxr"} <= set(list_slots())


WALKED: Registry[int] = Registry("walked", packages=("walkpkg",))
PLUGGED: Registry[int] = Registry("plugged", group="vitalens.test_widgets")
