"""The per-process cache of reference indexes, with a fake loader: sharing, herds, failures, eviction."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence

import pytest

from packmatch.domain.models import FieldMapping, MatchingConfig, ReferenceRow
from packmatch.services.reference.cache import ReferenceCache

MakeMapping = Callable[..., FieldMapping]
MakeConfig = Callable[..., MatchingConfig]

ROWS = [ReferenceRow(f"r{i}", {"name": f"acme {i}", "amount": i}) for i in range(50)]


class Loader:
    """Counts loads; can hold them until released, and fail the first ``failures`` of them."""

    def __init__(self, failures: int = 0, hold: bool = False) -> None:
        self.calls: list[uuid.UUID] = []
        self.failures = failures
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, dataset_id: uuid.UUID) -> Sequence[ReferenceRow]:
        self.calls.append(dataset_id)
        self.started.set()
        assert self.release.wait(10)
        if len(self.calls) <= self.failures:
            raise ConnectionError("database went away")
        return ROWS


@pytest.fixture
def fuzzy_config(make_mapping: MakeMapping, make_config: MakeConfig) -> MatchingConfig:
    return make_config(make_mapping("name", "fuzzy"))


def on_dataset(config: MatchingConfig, dataset: int) -> MatchingConfig:
    return config.model_copy(update={"reference_data_id": uuid.UUID(int=dataset)})


def test_an_index_is_built_once_and_shared(fuzzy_config: MatchingConfig) -> None:
    loader = Loader()
    cache = ReferenceCache(loader, max_bytes=2**30)
    assert cache.index(fuzzy_config) is cache.index(fuzzy_config)
    assert len(loader.calls) == 1


def test_configs_reading_the_same_columns_share_an_index(
    make_mapping: MakeMapping, make_config: MakeConfig, fuzzy_config: MatchingConfig
) -> None:
    cache = ReferenceCache(Loader(), max_bytes=2**30)
    other_weights = make_config(make_mapping("name", "fuzzy", weight=3, scorer="ratio"), threshold=0.2)
    numbers = make_config(make_mapping("amount", "numeric_range"))
    assert cache.index(other_weights) is cache.index(fuzzy_config)
    assert cache.index(numbers) is not cache.index(fuzzy_config)


def test_threads_wanting_a_missing_index_wait_for_one_build(fuzzy_config: MatchingConfig) -> None:
    loader = Loader(hold=True)
    cache = ReferenceCache(loader, max_bytes=2**30)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(cache.index(fuzzy_config))) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert loader.started.wait(10)
    loader.release.set()
    for thread in threads:
        thread.join(10)
    assert len(loader.calls) == 1
    assert len(results) == 8
    assert all(result is results[0] for result in results)


def test_a_failed_build_is_not_cached(fuzzy_config: MatchingConfig) -> None:
    loader = Loader(failures=1)
    cache = ReferenceCache(loader, max_bytes=2**30)
    with pytest.raises(ConnectionError):
        cache.index(fuzzy_config)
    assert len(cache.index(fuzzy_config)) == len(ROWS)
    assert len(loader.calls) == 2


def test_a_thread_waiting_for_a_failed_build_builds_itself(fuzzy_config: MatchingConfig) -> None:
    loader = Loader(failures=1, hold=True)
    cache = ReferenceCache(loader, max_bytes=2**30)
    errors: list[BaseException] = []

    def build_and_fail() -> None:
        try:
            cache.index(fuzzy_config)
        except ConnectionError as error:
            errors.append(error)

    builder = threading.Thread(target=build_and_fail)
    builder.start()
    assert loader.started.wait(10)
    results: list[object] = []
    waiter = threading.Thread(target=lambda: results.append(cache.index(fuzzy_config)))
    waiter.start()
    loader.release.set()
    builder.join(10)
    waiter.join(10)
    assert len(errors) == 1
    assert len(results) == 1
    assert len(loader.calls) == 2


def test_the_least_recently_used_index_is_evicted_beyond_the_budget(fuzzy_config: MatchingConfig) -> None:
    loader = Loader()
    size = ReferenceCache(Loader(), max_bytes=2**30).index(fuzzy_config).nbytes
    cache = ReferenceCache(loader, max_bytes=2 * size)
    first, second, third = (on_dataset(fuzzy_config, n) for n in (10, 11, 12))
    cache.index(first)
    cache.index(second)
    cache.index(first)  # now second is the least recently used
    cache.index(third)
    assert cache.nbytes == 2 * size
    cache.index(first)
    assert len(loader.calls) == 3
    cache.index(second)
    assert len(loader.calls) == 4


def test_an_index_larger_than_the_budget_is_returned_but_not_kept(fuzzy_config: MatchingConfig) -> None:
    loader = Loader()
    cache = ReferenceCache(loader, max_bytes=0)
    assert len(cache.index(fuzzy_config)) == len(ROWS)
    assert cache.nbytes == 0
    cache.index(fuzzy_config)
    assert len(loader.calls) == 2
