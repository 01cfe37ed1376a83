"""The web console in a real browser (headless Debian chromium through selenium):
sign in, create a bucket, upload a file of several MiB into a folder (multipart,
straight to the S3 API on presigned part URLs), browse into the folder, download
it byte-exact, make a share link and open it, delete, then the admin pages (a new
key); a screenshot of each page is saved (BLEEPSTORE_SCREENSHOT_DIR, else the test's temp dir)."""
from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import pytest

from ..servers import ACCESS_KEY, SECRET_KEY
from .conftest import ADMIN_TOKEN

BIG = 20 * 1024 * 1024 + 12345  # three multipart parts of 8 MiB


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("BLEEPSTORE_SCREENSHOT_DIR")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _shot(browser, shots: Path, name: str) -> None:
    target = shots / f"{name}.png"
    assert browser.save_screenshot(str(target)) and target.stat().st_size > 1000, target


def _wait(predicate, timeout: float = 90, what: str = "condition"):
    from selenium.common.exceptions import StaleElementReferenceException
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except StaleElementReferenceException:  # the page changed under us: look again
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _by(browser, css):
    """The element, once the page (which a click may still be loading) has it."""
    from selenium.webdriver.common.by import By
    return _wait(lambda: (browser.find_elements(By.CSS_SELECTOR, css) or [None])[0], 30, css)


def _all(browser, css):
    from selenium.webdriver.common.by import By
    return browser.find_elements(By.CSS_SELECTOR, css)


def test_console_walkthrough(console_server, browser, s3, tmp_path, downloads, shots):
    base = console_server.endpoint + "/console"
    bucket = "console-" + uuid.uuid4().hex[:10]

    # sign in (a wrong secret first)
    browser.get(base + "/")
    assert browser.current_url.endswith("/console/login")
    _by(browser, "#access-key").send_keys(ACCESS_KEY)
    _by(browser, "#secret-key").send_keys("not-the-secret")
    _by(browser, "#sign-in").click()
    assert "Wrong access key or secret" in _by(browser, "#error").text
    _by(browser, "#access-key").clear()
    _by(browser, "#access-key").send_keys(ACCESS_KEY)
    _by(browser, "#secret-key").send_keys(SECRET_KEY)
    _shot(browser, shots, "01-sign-in")
    _by(browser, "#sign-in").click()
    assert ACCESS_KEY in _by(browser, "#who").text

    # create a bucket
    _by(browser, "#bucket-name").send_keys(bucket)
    _by(browser, "#create-bucket-button").click()
    _wait(lambda: f"/console/buckets/{bucket}/" in browser.current_url, 30, "the new bucket's page")
    s3.head_bucket(Bucket=bucket)

    # upload a file of several MiB into docs/ (the page at that prefix uploads there)
    data = os.urandom(BIG)
    source = tmp_path / "report.bin"
    source.write_bytes(data)
    small = tmp_path / "hello.txt"
    small.write_bytes(b"hello from the console\n")
    browser.get(f"{base}/buckets/{bucket}/?prefix=docs/")
    chooser = _by(browser, "#file-input")
    browser.execute_script("arguments[0].hidden = false;", chooser)
    chooser.send_keys(f"{source}\n{small}")
    _wait(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="docs/").get("KeyCount") == 2, what="both uploads")
    head = s3.head_object(Bucket=bucket, Key="docs/report.bin")
    assert head["ContentLength"] == BIG and head["ETag"].endswith('-3"')  # multipart, three parts
    assert hashlib.md5(s3.get_object(Bucket=bucket, Key="docs/report.bin")["Body"].read()).digest() == \
        hashlib.md5(data).digest()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    # the bucket list shows counts and sizes
    browser.get(base + "/")
    row = _by(browser, f'tr[data-bucket="{bucket}"]')
    assert row.find_element("css selector", ".count").text == "2"
    assert "MiB" in row.find_element("css selector", ".size").text
    _shot(browser, shots, "02-buckets")

    # browse into the folder
    browser.get(f"{base}/buckets/{bucket}/")
    folder = _by(browser, 'tr.folder[data-prefix="docs/"] a')
    _shot(browser, shots, "03-bucket-root")
    folder.click()
    _wait(lambda: "prefix=docs" in browser.current_url, 30, "the folder's page")
    keys = [r.get_attribute("data-key") for r in _all(browser, "tr.object")]
    assert keys == ["docs/hello.txt", "docs/report.bin"]
    _shot(browser, shots, "04-folder")

    # download it byte-exact
    _by(browser, 'tr.object[data-key="docs/report.bin"] a.download').click()
    saved = downloads / "report.bin"
    _wait(lambda: saved.exists() and saved.stat().st_size == BIG and
          not list(downloads.glob("*.crdownload")), what="the download")
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(data).digest()

    # a share link for a day, opened in the browser
    share_form = _by(browser, 'tr.object[data-key="docs/hello.txt"] form.share')
    share_form.find_element("css selector", 'select option[value="86400"]').click()
    share_form.find_element("css selector", ".share-button").click()
    url = _by(browser, "#share-url").get_attribute("value")
    assert "X-Amz-Expires=86400" in url and "X-Amz-Signature=" in url
    _shot(browser, shots, "05-share")
    browser.delete_all_cookies()  # the link works for anyone, signed in or not
    browser.get(url)
    assert "hello from the console" in browser.find_element("css selector", "body").text
    _shot(browser, shots, "06-shared-object")

    # sign in again and delete, confirming the dialog
    browser.get(base + "/login")
    _by(browser, "#access-key").send_keys(ACCESS_KEY)
    _by(browser, "#secret-key").send_keys(SECRET_KEY)
    _by(browser, "#sign-in").click()
    browser.get(f"{base}/buckets/{bucket}/?prefix=docs/")
    _by(browser, 'tr.object[data-key="docs/report.bin"] .delete-button').click()
    browser.switch_to.alert.dismiss()  # "no": nothing happens
    assert s3.head_object(Bucket=bucket, Key="docs/report.bin")["ContentLength"] == BIG
    _by(browser, 'tr.object[data-key="docs/report.bin"] .delete-button').click()
    browser.switch_to.alert.accept()
    _wait(lambda: [r.get_attribute("data-key") for r in _all(browser, "tr.object")] == ["docs/hello.txt"],
          what="the page after the delete")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["docs/hello.txt"]
    _shot(browser, shots, "07-after-delete")

    # settings: versioning on, shown
    browser.get(f"{base}/buckets/{bucket}/settings")
    _by(browser, "#enable-versioning").click()
    _wait(lambda: _by(browser, "#versioning-status").text == "Enabled", 30, "versioning shown enabled")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    _shot(browser, shots, "08-settings")

    # the admin pages: the admin token signs in; a new key's secret is shown once
    _by(browser, "#admin-link").click()
    _by(browser, "#admin-token").send_keys(ADMIN_TOKEN)
    _by(browser, "#admin-sign-in").click()
    _by(browser, "#new-display-name").send_keys("dave")
    _by(browser, "#create-key-button").click()
    new_key = _by(browser, "#shown-key").text
    assert _by(browser, f'tr[data-key="{new_key}"] .status').text == "active"
    _shot(browser, shots, "09-admin-keys")
    assert len(list(shots.glob("*.png"))) >= 9
