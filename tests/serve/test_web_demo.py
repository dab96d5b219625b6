"""The web demo in real headless Chromium against ``panollava serve --run`` on 127.0.0.1
(a tiny trained PanoLLaVA run).

Upload a real panorama, ask a query, wait for the answer, save a screenshot as a test artifact
(``outputs/test-artifacts/web_demo.png``). Chromium + ChromeDriver come from Debian's packages
(``make test`` installs them when it can); in CI a missing browser is a failure, not a skip.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "outputs" / "test-artifacts"


def _browser() -> tuple[str, str]:
    chrome, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chrome and driver):
        if os.environ.get("CI"):
            pytest.fail(
                "chromium/chromedriver missing in CI: apt-get install chromium chromium-driver"
            )
        pytest.skip(
            "chromium + chromedriver not installed (apt-get install chromium chromium-driver)"
        )
    return chrome, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(panollava_run):
    """``panollava serve --run RUN`` on a tiny trained PanoLLaVA run."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "panollava.cli",
        "serve",
        "--run",
        str(panollava_run),
        "--port",
        str(port),
        "--max-new-tokens",
        "4",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stdout.read()[-2000:]}")
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("server did not come up within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.mark.e2e
def test_upload_query_answer_in_chromium(server, sample_images, panollava_run):
    chrome, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.get(server)
        browser.find_element(By.ID, "file").send_keys(str(sample_images[2]))
        browser.find_element(By.ID, "send").click()
        wait = WebDriverWait(browser, 90)
        wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#views img")) == 9
        browser.find_element(By.ID, "query").send_keys("what objects are there?")
        browser.find_element(By.ID, "go").click()
        wait.until(lambda b: b.find_element(By.ID, "answer").get_attribute("data-done") == "1")
        answer = browser.find_element(By.ID, "answer").text.strip()
        from panollava.inference import Predictor

        predictor = Predictor.from_run(panollava_run, max_new_tokens=4)
        _, viewset = predictor.load(sample_images[2])
        assert answer == predictor.answer(viewset, "what objects are there?")  # = `infer`
        assert len(browser.find_elements(By.CSS_SELECTOR, "#views figure.used")) == 9
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "web_demo.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
    finally:
        browser.quit()
