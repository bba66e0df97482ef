"""The LRU model cache keeps models under a byte budget and evicts the least recently used."""

from __future__ import annotations

import pytest
import torch

from vitalens.artifacts import ModelCache, module_nbytes


def test_loads_once_and_evicts_least_recently_used() -> None:
    loads: list[str] = []

    def loader(key: str, size: int) -> object:
        def _load() -> str:
            loads.append(key)
            return "x" * size

        return _load

    cache: ModelCache[str] = ModelCache(budget_bytes=10, sizeof=len)
    cache.get("a", loader("a", 4))
    cache.get("b", loader("b", 4))
    cache.get("a", loader("a", 4))  # hit: a becomes most recent
    assert loads == ["a", "b"]
    cache.get("c", loader("c", 4))  # 12 > 10: evict b (least recent), not a
    assert cache.keys() == ["a", "c"]
    assert cache.evictions == 1 and cache.nbytes == 8
    cache.get("b", loader("b", 4))
    assert loads == ["a", "b", "c", "b"] and "a" not in cache


def test_entry_larger_than_budget_is_returned_not_kept() -> None:
    cache: ModelCache[str] = ModelCache(budget_bytes=3, sizeof=len)
    assert cache.get("big", lambda: "xxxxx") == "xxxxx"
    assert len(cache) == 0


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="budget_bytes must be positive"):
        ModelCache(budget_bytes=0)


def test_module_nbytes_counts_parameters_and_buffers() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.BatchNorm1d(5))
    # Linear: 50 + 5 params; BN: 5 + 5 params, running mean/var 5 + 5 (float32) + num_batches_tracked (int64)
    assert module_nbytes(net) == (55 + 10 + 10) * 4 + 8


def test_torch_models_cached_by_real_size() -> None:
    cache: ModelCache[torch.nn.Module] = ModelCache(budget_bytes=2 * 4 * 110)
    cache.get("m1", lambda: torch.nn.Linear(10, 10))  # 110 floats
    cache.get("m2", lambda: torch.nn.Linear(10, 10))
    cache.get("m3", lambda: torch.nn.Linear(10, 10))
    assert cache.keys() == ["m2", "m3"]
