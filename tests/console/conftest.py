"""A server for the console tests (SQLite: it has a master key of its own, from
which the console's session key is derived) and a headless browser."""
from __future__ import annotations

import os
import tempfile

import pytest

from ..conftest import make_client
from ..servers import Server, write_config

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ADMIN_TOKEN = "console-admin-token-0123456789abcdef"


@pytest.fixture(scope="package")
def console_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("console")
    env = dict(os.environ, BLEEPSTORE_CONFIG=str(write_config(workdir, None)), BLEEPSTORE_ADMIN_TOKEN=ADMIN_TOKEN,
               BLEEPSTORE_AUTH_CACHE_SECONDS="0")
    server = Server(workdir, env).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def s3(console_server):
    return make_client(console_server.endpoint)


@pytest.fixture(scope="package")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="package")
def browser(downloads):
    """Debian's chromium, headless, through its chromedriver; nothing is downloaded
    (a missing browser fails the test: CI installs chromium and chromium-driver)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), f"{path} missing: apt-get install chromium chromium-driver"
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--window-size=1280,900", f"--user-data-dir={tempfile.mkdtemp(prefix='console-chromium-')}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
