"""A reviewer clears `review` bundles in real headless Chromium; the JSON API shows what was recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from packmatch.api.review_page.routes import assets
from packmatch.domain.ids import Kind, format_id
from tests.browser.conftest import REVIEWER, Live

pytestmark = pytest.mark.postgres
RUNS = "/v1/matching/packages/runs"


def wait(browser: Any, seconds: float = 20) -> WebDriverWait[Any]:
    return WebDriverWait(browser, seconds)


def sign_in(browser: Any, live: Live, key: str | None = None) -> None:
    browser.get(f"{live.url}/review")
    field = wait(browser).until(ec.visibility_of_element_located((By.ID, "key")))
    field.send_keys(key or live.reviewer_key, Keys.ENTER)


def queue_ids(browser: Any, count: int) -> list[str]:
    wait(browser).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#runs li.run")) == count)
    return [a.get_attribute("data-id") for a in browser.find_elements(By.CSS_SELECTOR, "#runs li.run a")]


def press(browser: Any, keys: str) -> None:
    browser.find_element(By.TAG_NAME, "body").send_keys(keys)


def opened(browser: Any, run_id: str) -> None:
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "bundle-title"), run_id))
    wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#slots table.evidence"))


def review_of(live: Live, run_id: str) -> dict[str, Any]:
    review: dict[str, Any] = live.get(f"{RUNS}/{run_id}")["review"]
    return review


def test_a_reviewer_approves_one_bundle_and_rejects_another_with_the_keyboard(
    browser: Any, live: Live, screenshots: Path
) -> None:
    sign_in(browser, live)
    first, second, third = queue_ids(browser, 3)
    assert "3 bundles left to review" in browser.find_element(By.ID, "count").text
    browser.save_screenshot(str(screenshots / "review-queue.png"))
    press(browser, Keys.ENTER)
    opened(browser, first)
    outcomes = browser.find_element(By.CSS_SELECTOR, "table.outcomes").text
    assert "allow_review_on_expected sends it to a person" in outcomes
    evidence = browser.find_element(By.ID, "slots").text
    assert "same" in evidence  # each field's score and difference beside each candidate
    assert browser.find_elements(By.CSS_SELECTOR, "td.differs"), "no difference highlighted"
    browser.set_window_size(1280, 1600)  # the bundle and its evidence in one picture
    browser.save_screenshot(str(screenshots / "review-bundle.png"))
    browser.set_window_size(1280, 800)
    press(browser, "n")
    browser.switch_to.active_element.send_keys("delivery number checked by phone", Keys.ESCAPE)
    press(browser, "a")
    opened(browser, second)  # the next undecided bundle opens by itself
    press(browser, "r")
    opened(browser, third)
    approved, rejected = review_of(live, first), review_of(live, second)
    assert (approved["decision"], approved["notes"]) == ("approved", "delivery number checked by phone")
    assert rejected["decision"] == "rejected"
    reviewer = live.runtime.services.accounts.authenticate(live.reviewer_key)
    for review in (approved, rejected):
        assert review["reviewed_by"] == {"key_id": format_id(Kind.API_KEY, reviewer.key_id), "name": REVIEWER}
    assert review_of(live, third) is None


def test_a_wrong_key_shows_a_clear_message_and_is_not_kept(browser: Any, live: Live) -> None:
    sign_in(browser, live, key="pmk_not_a_real_key")
    alert = wait(browser).until(ec.visibility_of_element_located((By.ID, "alert")))
    assert "API key was not accepted" in alert.text
    assert browser.find_element(By.ID, "login").is_displayed()
    assert browser.execute_script("return sessionStorage.length") == 0


def test_a_second_tab_deciding_first_makes_the_first_tab_see_a_conflict(browser: Any, live: Live) -> None:
    sign_in(browser, live)
    run_id = queue_ids(browser, 3)[0]
    press(browser, Keys.ENTER)
    opened(browser, run_id)
    first_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    sign_in(browser, live)
    queue_ids(browser, 3)
    press(browser, Keys.ENTER)
    opened(browser, run_id)
    press(browser, "a")
    wait(browser).until(lambda _: review_of(live, run_id) is not None)
    browser.switch_to.window(first_tab)
    press(browser, "r")
    alert = wait(browser).until(ec.visibility_of_element_located((By.ID, "alert")))
    assert "Someone else decided this first" in alert.text
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "current-decision"), "Approved by"))
    assert review_of(live, run_id)["decision"] == "approved"
    history = live.get(f"{RUNS}/{run_id}/reviews")
    assert history["pagination"]["total"] == 1


def test_every_field_has_a_label_and_a_phone_width_screen_needs_no_sideways_scroll(
    browser: Any, live: Live
) -> None:
    sign_in(browser, live)
    run_id = queue_ids(browser, 3)[0]
    unlabelled = (
        "return [...document.querySelectorAll('input,select,textarea')].filter(e => !e.labels.length).length"
    )
    assert browser.execute_script(unlabelled) == 0
    browser.set_window_size(390, 844)
    overflow = "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert browser.execute_script(overflow) <= 0
    press(browser, Keys.ENTER)
    opened(browser, run_id)
    assert browser.execute_script(overflow) <= 0


def test_a_queue_of_100_bundles_renders_quickly_and_the_page_is_light(browser: Any, live: Live) -> None:
    live.submit("no delivery note", 97)
    sign_in(browser, live)
    queue_ids(browser, 100)
    measures = "return performance.getEntriesByName('queue-render-frame').map(e => e.duration)"
    render_ms = wait(browser).until(lambda b: b.execute_script(measures))[0]
    script = (
        "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))"
        ".filter(e => new URL(e.name).pathname.startsWith('/review'))"
        ".map(e => [e.name, e.transferSize, e.encodedBodySize])"
    )
    entries = browser.execute_script(script)
    transferred = sum(max(size, body) for _, size, body in entries)
    on_disk = sum(map(len, assets().values()))
    print(
        f"\nreview page: queue of 100 rendered in {render_ms:.1f} ms after the API answered; "
        f"{len(entries)} page files, {transferred} bytes transferred ({on_disk} on disk)"
    )
    assert len(entries) == len(assets())  # every asset loaded, and nothing else
    assert render_ms <= 300
    assert transferred <= 150_000


def test_j_and_k_move_through_the_queue_and_enter_opens_the_selected_bundle(browser: Any, live: Live) -> None:
    sign_in(browser, live)
    ids = queue_ids(browser, 3)
    press(browser, "jjk")
    selected = browser.find_element(By.CSS_SELECTOR, "#runs li.selected a").get_attribute("data-id")
    assert selected == ids[1]
    press(browser, Keys.ENTER)
    opened(browser, ids[1])
    press(browser, "k")
    opened(browser, ids[0])


def test_a_reviewer_approves_a_chosen_candidate_and_rejects_a_result(browser: Any, live: Live) -> None:
    sign_in(browser, live)
    run_id = queue_ids(browser, 3)[0]
    press(browser, Keys.ENTER)
    opened(browser, run_id)
    first_row = browser.find_elements(By.CSS_SELECTOR, "article.result")[0]
    choose = first_row.find_elements(By.CSS_SELECTOR, "thead button.approve")[1]
    chosen = choose.text.removeprefix("Approve ")
    choose.click()
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "status"), f"approved {chosen}"))
    browser.find_elements(By.CSS_SELECTOR, "article.result button.reject")[1].click()
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "status"), "rejected"))
    run = live.get(f"{RUNS}/{run_id}")
    slots = [s for s in run["document_results"] if s["matching_run_id"]]
    reviews = [
        result["review"]
        for slot in slots
        for result in live.get(f"/v1/matching/runs/{slot['matching_run_id']}/results")["data"]
    ]
    assert (reviews[0]["status"], reviews[0]["reference_row_id"]) == ("approved", chosen)
    assert reviews[1]["status"] == "rejected"
    assert {r["reviewed_by"]["name"] for r in reviews[:2]} == {REVIEWER}
    assert run["review"] is None  # deciding rows leaves the bundle undecided


def test_the_decided_view_and_the_config_filter(browser: Any, live: Live) -> None:
    sign_in(browser, live)
    decided, following, _ = queue_ids(browser, 3)
    press(browser, Keys.ENTER)
    opened(browser, decided)
    press(browser, "a")
    opened(browser, following)
    press(browser, Keys.ESCAPE)
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "count"), "2 bundles left to review"))
    assert queue_ids(browser, 2)[0] == following
    browser.find_element(By.CSS_SELECTOR, "input[value=decided]").click()
    assert queue_ids(browser, 1) == [decided]
    assert "approved" in browser.find_element(By.CSS_SELECTOR, "#runs li.run").text
    browser.find_element(By.CSS_SELECTOR, "input[value=undecided]").click()
    queue_ids(browser, 2)
    other = live.runtime.services.accounts.create_key("demo", frozenset({"read", "write"}))
    lone = live.client.post(
        "/v1/matching/packages/configs",
        headers={"Authorization": f"Bearer {other}"},
        json={"name": "Empty", "document_type_configs": [
            {"document_type": s.document_type, "matching_config_id": s.matching_config_id,
             "presence": s.presence.value} for s in live.installed.package.document_type_configs]},
    )  # fmt: skip
    assert lone.status_code == 201, lone.text
    browser.refresh()  # the key stays in the tab; the config list is read again
    queue_ids(browser, 2)
    Select(browser.find_element(By.ID, "config")).select_by_visible_text("Empty")
    wait(browser).until(ec.text_to_be_present_in_element((By.ID, "count"), "0 bundles left to review"))
