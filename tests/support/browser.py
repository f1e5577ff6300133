"""Headless Debian Chromium driven through its matching ChromeDriver, for tests that use a page
the way a person does. Nothing is downloaded: both come from Debian's packages."""

import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def headless_chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1600", f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
