"""The oversight dashboard opened in a real headless Chromium, as a council member would: paste the
token, read the figures, open a case's timeline, switch to English. What it shows equals the API."""

from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.oversight.support import TOKENS, DirectFeed, scratch_database, serve, settings_for
from tests.support.browser import headless_chromium
from tests.unit.oversight.story import PHU_NHUAN, QUAN_1, CaseStory

NOW = datetime.now(UTC)
STORIES = [
    CaseStory(received_at=NOW - timedelta(days=9)).opened().routed(QUAN_1).assigned().resolved(1).closed(),
    CaseStory(received_at=NOW - timedelta(days=9)).opened().routed(QUAN_1).assigned().resolved(8),
    CaseStory(received_at=NOW - timedelta(days=7), name="Lê Thị Mai").opened().routed(QUAN_1).assigned().accepted(),
    CaseStory(received_at=NOW - timedelta(days=6)).opened().routed(PHU_NHUAN).assigned().progress(),
    CaseStory(received_at=NOW - timedelta(days=3)).opened().routed(PHU_NHUAN).resolved(2),
    CaseStory(received_at=NOW - timedelta(hours=3)).opened().routed(QUAN_1, 1),
    CaseStory(received_at=NOW - timedelta(hours=1)).opened().triaged(),
    # Quận 1 hands a case on past its deadline: late to it, resolved in time by Phú Nhuận.
    CaseStory(received_at=NOW - timedelta(days=12)).opened().routed(QUAN_1).wait(days=6).declined()
    .routed(PHU_NHUAN, fresh=True).resolved(8),
]


@pytest.fixture(scope="module")
def oversight(pg_admin_dsn, pg_port, kafka_bootstrap):
    with scratch_database(pg_admin_dsn) as database, \
            serve(settings_for(database, pg_port, kafka_bootstrap, consume=False)) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
async def cases(oversight):
    await DirectFeed(oversight.settings).apply(STORIES)


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium()
    yield driver
    driver.quit()


def sign_in(browser, oversight, token):
    browser.get(oversight.url + "/")
    field = browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()


def loaded(browser):
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "true")


def rows(browser, table):
    return browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")


def number(row, attribute):
    return int(row.find_element(By.CSS_SELECTOR, f"[{attribute}]").get_attribute(attribute))


def test_the_dashboard_shows_what_the_api_says(browser, oversight):
    sign_in(browser, oversight, TOKENS["council"])
    loaded(browser)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "vi"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Giám sát Tổng đài 1022"
    assert browser.find_element(By.ID, "who").text == "HĐND"

    overview = oversight.get("/v1/stats/overview", role="council").json()
    assert int(browser.find_element(By.ID, "total").text) == overview["total"] == len(STORIES)
    assert int(browser.find_element(By.ID, "overdue-total").text) == overview["overdue_now"] == 2
    assert {r.get_attribute("data-status"): number(r, "data-count") for r in rows(browser, "status-table")} == \
        overview["by_status"]
    assert {r.get_attribute("data-area"): (number(r, "data-total"), number(r, "data-overdue"))
            for r in rows(browser, "area-table")} == \
        {a["area_code"] or "": (a["total"], a["overdue_now"]) for a in overview["by_area"]}

    units = oversight.get("/v1/stats/units", role="council").json()["units"]
    shown = [(r.get_attribute("data-unit-id"), int(r.get_attribute("data-rank")), float(r.get_attribute("data-on-time-rate")),
              number(r, "data-received"), number(r, "data-open"), number(r, "data-resolved"), number(r, "data-overdue"),
              number(r, "data-left-late")) for r in rows(browser, "unit-table")]
    assert shown == [(u["unit_id"], u["rank"], u["on_time_rate"], u["received"], u["open"], u["resolved"], u["overdue_now"],
                      u["left_late"]) for u in units]
    assert [u["left_late"] for u in units if u["unit_id"] == QUAN_1.id] == [1]
    bars = browser.find_elements(By.CSS_SELECTOR, "#unit-chart svg rect")
    assert [float(b.get_attribute("data-value")) for b in bars] == [u["on_time_rate"] for u in units]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#status-chart svg rect")) == len(overview["by_status"])

    overdue = oversight.get("/v1/stats/overdue", role="council").json()["items"]
    listed = rows(browser, "overdue-table")
    assert [r.get_attribute("data-case-id") for r in listed] == [c["case_id"] for c in overdue]
    assert "L. T. M***" in listed[0].text and "Lê Thị Mai" not in browser.page_source


def test_a_case_timeline_opens_from_the_overdue_list(browser, oversight):
    first = rows(browser, "overdue-table")[0]
    case_id = first.get_attribute("data-case-id")
    first.find_element(By.CSS_SELECTOR, ".case").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline li"))
    timeline = oversight.get(f"/v1/cases/{case_id}/timeline", role="council").json()
    shown = [li.get_attribute("data-event-id") for li in browser.find_elements(By.CSS_SELECTOR, "#timeline li")]
    expected = {e["event_id"] for e in timeline["events"]} | {d["delivery_id"] for d in timeline["deliveries"]}
    assert set(shown) == expected and len(shown) == len(expected)
    kinds = [li.get_attribute("data-kind") for li in browser.find_elements(By.CSS_SELECTOR, "#timeline li")]
    assert kinds[:2] == ["CaseOpened", "CaseRouted"]


def test_english_on_a_button_and_nothing_loaded_from_elsewhere(browser, oversight):
    browser.find_element(By.ID, "lang").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "1022 hotline oversight"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert "Overdue cases" in browser.find_element(By.TAG_NAME, "body").text
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(url.startswith(oversight.url) for url in resources)
    browser.find_element(By.ID, "lang").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Giám sát Tổng đài 1022"


def test_a_wrong_token_shows_nothing(browser, oversight):
    browser.execute_script("sessionStorage.clear()")
    sign_in(browser, oversight, "not-a-token")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "error").text)
    assert browser.find_element(By.ID, "error").text == "Mã truy cập không đúng."
    assert not browser.find_element(By.ID, "board").is_displayed()
