"""CORS as a real browser sees it: headless Debian chromium, driven by selenium
through /usr/bin/chromedriver, opens a page served from another origin (another
port) that uploads with ``fetch(presignedPutUrl, {method: 'PUT', body})`` and reads
the ETag. The browser sends the preflight itself and enforces every answer
(Access-Control-Allow-Origin, -Allow-Methods, -Expose-Headers), so this proves
what the header-level tests in test_cors.py can only assert.

Runs on the sqlite server only: it tests the browser protocol, not the engine.
A missing chromium or chromedriver is a failure, never a skip (CI installs the
chromium and chromium-driver packages).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE = b"<!doctype html><html><head><title>uploader</title></head><body>uploader</body></html>"
UPLOAD = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {method: 'PUT', body: arguments[1]})
  .then(r => done({status: r.status, etag: r.headers.get('ETag')}))
  .catch(e => done({error: String(e)}));
"""

pytestmark = pytest.mark.parametrize("server", ["sqlite"], indirect=True)


class _Page(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page_origin():
    """http://127.0.0.1:<another port>: the web application's origin."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(page_origin):
    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), f"{path} missing: apt-get install chromium chromium-driver"
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="cors-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_script_timeout(60)
        driver.get(page_origin + "/")
        assert driver.title == "uploader"
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _upload(browser, s3, bucket: str, key: str, body: str) -> dict:
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    return browser.execute_async_script(UPLOAD, url, body)


def _stored(s3, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        assert err.response["Error"]["Code"] == "NoSuchKey", err
        return None


def test_browser_presigned_put_reads_etag(server, s3, bucket, browser, page_origin):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": [page_origin], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"],
         "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 0}]})
    body = f"uploaded from a browser {uuid.uuid4()}"
    result = _upload(browser, s3, bucket, "from-browser.txt", body)
    assert result == {"status": 200, "etag": f'"{hashlib.md5(body.encode()).hexdigest()}"'}, result
    assert _stored(s3, bucket, "from-browser.txt") == body.encode()


def test_browser_without_expose_header_cannot_read_etag(server, s3, bucket, browser, page_origin):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": [page_origin], "AllowedMethods": ["PUT"], "MaxAgeSeconds": 0}]})
    result = _upload(browser, s3, bucket, "hidden-etag.txt", "body")
    assert result == {"status": 200, "etag": None}, result  # stored, but the ETag is not exposed
    assert _stored(s3, bucket, "hidden-etag.txt") == b"body"


@pytest.mark.parametrize("rules", [
    None,                                                                          # no CORS configuration
    [{"AllowedOrigins": ["https://elsewhere.example"], "AllowedMethods": ["PUT"]}],  # another origin
    [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}],                         # not PUT
], ids=["no-configuration", "other-origin", "other-method"])
def test_browser_refused_without_matching_rule(server, s3, bucket, browser, rules):
    if rules is not None:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    result = _upload(browser, s3, bucket, "refused.txt", "never stored")
    assert "error" in result and "Failed to fetch" in result["error"], result
    assert _stored(s3, bucket, "refused.txt") is None  # the preflight failed: the PUT was never sent
