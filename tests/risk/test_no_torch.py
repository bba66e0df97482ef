"""The pure layers stay light: importing them must not pull in torch (workers and the API import them first)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["vitalens.risk", "vitalens.domain", "vitalens.config", "vitalens.artifacts", "vitalens.store"]
)
def test_module_imports_no_torch(module: str) -> None:
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported by {module}'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
