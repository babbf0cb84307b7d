"""Real headless Chromium (Debian's `chromium` + `chromium-driver`) against a live API server.

The server is the real app on PostgreSQL with an in-process worker, served by uvicorn on a free
port in a thread (`packmatch.api.local_server`); the sample world of `packmatch demo`, created
through the client as the demo does, supplies the `review` bundles. When the browser cannot start
the tests skip with the reason, and fail under `CI=true` (as services do).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from packmatch import responses as r
from packmatch.api.app import create_app
from packmatch.api.local_server import LocalServer
from packmatch.bootstrap import Runtime
from packmatch.client import Client
from packmatch.demo import (
    Installed,
    create_demo_key,
    install_world,
    load_world,
    submit_bundles,
    wait_for_runs,
)
from packmatch.domain.models import RunStatus
from packmatch.worker.runner import InProcessWorker
from tests.conftest import service_missing

# Debian's paths; other systems point these at their own chromium and its matching driver.
CHROMIUM = Path(os.environ.get("PACKMATCH_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("PACKMATCH_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
REVIEWER = "Rita Reviewer"


def start_chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """docs/images/ with PACKMATCH_UPDATE_SCREENSHOTS=1 (run ids and times change on every run, so
    an ordinary test run leaves the committed pictures alone), else a temporary folder."""
    return DOCS_IMAGES if os.environ.get("PACKMATCH_UPDATE_SCREENSHOTS") == "1" else tmp_path


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    try:
        driver = start_chromium()
    except Exception as exc:  # ImportError, WebDriverException, a missing binary: all "cannot start"
        first_line = RuntimeError(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        service_missing(
            f"headless Chromium {CHROMIUM} (apt-get install chromium chromium-driver)", first_line
        )
    driver.set_window_size(1280, 800)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    """The session's browser with one tab at 1280×800; extra tabs a test opened are closed after it."""
    yield chromium
    for handle in chromium.window_handles[1:]:
        chromium.switch_to.window(handle)
        chromium.close()
    chromium.switch_to.window(chromium.window_handles[0])
    chromium.set_window_size(1280, 800)


@dataclass
class Live:
    url: str
    runtime: Runtime
    installed: Installed
    reviewer_key: str
    client: TestClient
    api: Client  # the demo key's client on `url`

    def get(self, path: str, key: str | None = None) -> Any:
        response = self.client.get(path, headers={"Authorization": f"Bearer {key or self.installed.api_key}"})
        assert response.status_code == 200, response.text
        return response.json()

    def submit(self, label: str, copies: int) -> list[r.PackageRun]:
        bundle = next(b for b in load_world().bundles if b.label == label)
        ids = submit_bundles(self.api, self.installed.package.id, [bundle] * copies)
        runs = wait_for_runs(self.api, ids, 120)
        assert runs is not None, "the worker did not finish the runs"
        return runs


@pytest.fixture
def live(make_runtime: Callable[..., Runtime], postgres_url: str) -> Iterator[Live]:
    """The demo's world on a live server: its three `review` bundles (and nine others) decided by no one."""
    runtime = make_runtime(database_url=postgres_url)
    app = create_app(runtime.services, runtime.settings)
    with InProcessWorker(runtime.broker, threads=2), LocalServer(app) as server:
        world = load_world()
        key = create_demo_key(runtime.services, world)
        with Client(server.url, key) as api:
            installed = Installed(key, install_world(api, world))
            runs = wait_for_runs(api, submit_bundles(api, installed.package.id, world.bundles), 120)
            assert runs is not None
            assert sum(run.status is RunStatus.REVIEW for run in runs) == 3
            reviewer = runtime.services.accounts.create_key(
                world.organization, frozenset({"review"}), REVIEWER
            )
            with TestClient(app) as client:
                yield Live(server.url, runtime, installed, reviewer, client, api)
