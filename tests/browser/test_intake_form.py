"""The web form ("Gửi phản ánh") filled in and submitted in a real headless Chromium, as a citizen
would: Vietnamese first, a photo attached, and the page that ends on the tracking code. The request
it made is then read back from the real Kafka topic."""

import asyncio

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from contracts import ids
from tests.integration.intake.harness import KafkaTail, RunningIntake, Secrets, settings_for
from tests.support.browser import headless_chromium
from tests.support.databases import fresh_database

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082")


@pytest.fixture(scope="module")
def intake(kafka_bootstrap, pg_port, pg_admin_dsn):
    database = asyncio.run(fresh_database(pg_admin_dsn, "intake_browser"))
    running = RunningIntake(settings_for(kafka_bootstrap, pg_port, database, Secrets())).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    driver = headless_chromium()
    yield driver
    driver.quit()


@pytest.fixture
async def tail(kafka_bootstrap):
    reader = await KafkaTail(kafka_bootstrap).open()
    yield reader
    await reader.close()


def fill(browser, field_id: str, text: str) -> None:
    element = browser.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(text)


async def test_a_citizen_fills_in_the_form_and_sees_the_tracking_code(intake, browser, tail, tmp_path):
    photo = tmp_path / "gao-het.png"
    photo.write_bytes(PNG)
    browser.get(intake.url + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Gửi phản ánh, kiến nghị"

    fill(browser, "full_name", "Nguyễn Thị Hoa")
    fill(browser, "phone", "0903 123 456")
    fill(browser, "address", "12 Nguyễn Văn Trỗi, Phường 12, Quận Phú Nhuận")
    Select(browser.find_element(By.ID, "category")).select_by_visible_text("Hộ gia đình thiếu nhu yếu phẩm")
    fill(browser, "description", "Gia đình 5 người đang cách ly, hết gạo.")
    browser.find_element(By.ID, "files").send_keys(str(photo))
    browser.find_element(By.ID, "public").click()
    browser.find_element(By.ID, "submit").click()

    code = WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.ID, "tracking-code"))[0].text
    assert ids.normalise_tracking_code(code) == code
    assert "Đã tiếp nhận phản ánh" in browser.page_source
    browser.save_screenshot(str(tmp_path / "received.png"))

    seen = await tail.read(lambda got: any(e.tracking_code == code for e in got))
    [event] = [e for e in seen if e.tracking_code == code]
    assert event.channel == "web" and event.is_public and event.category == "essential_supplies"
    assert event.citizen.phone == "+84903123456" and event.citizen.full_name == "Nguyễn Thị Hoa"
    assert event.attachments[0].name == "gao-het.png" and event.attachments[0].media_type == "image/png"

    browser.back()  # the form again, as the browser kept it: sending it again is the same request
    browser.find_element(By.ID, "submit").click()
    again = WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.ID, "tracking-code"))[0].text
    assert again == code


def test_the_form_in_english_explains_a_mistake_and_keeps_what_was_typed(intake, browser):
    browser.get(intake.url + "/?lang=en")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Submit a request"
    fill(browser, "full_name", "Tran Van Nam")
    fill(browser, "phone", "12345")
    fill(browser, "address", "45 Le Van Sy, Ward 13, District 3")
    Select(browser.find_element(By.ID, "category")).select_by_value("covid_support")
    fill(browser, "description", "Not received the support package yet.")
    browser.find_element(By.ID, "submit").click()

    errors = WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.ID, "errors"))[0]
    assert "phone: Not a valid phone number" in errors.text
    assert browser.find_element(By.ID, "address").get_attribute("value") == "45 Le Van Sy, Ward 13, District 3"
    assert "invalid" in browser.find_element(By.ID, "phone").get_attribute("class")
    browser.find_element(By.ID, "other-lang").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Gửi phản ánh, kiến nghị"
