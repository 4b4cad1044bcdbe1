"""Screenshot of the MLflow UI's compare view for two runs (headless Chromium).

    python benchmarks/mlflow_compare_screenshot.py mlflow.db reports/figures/mlflow/compare_default_vs_tuned.png \
        "train_gan.conditional (dvc exp default-e1)" "train_gan.conditional (dvc exp tuned-e1)"

Starts `mlflow ui` on the store, opens the compare page of the newest run of each name, turns
on "Show diff only" and saves a full-page PNG (Debian's chromium, driven by Playwright).
"""

import contextlib
import json
import shutil
import subprocess
import sys
import time
import urllib.request

import mlflow
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

db, out, *names = sys.argv[1:]
client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
exp = client.get_experiment_by_name("fashiongan")
runs = []
for name in names:
    found = client.search_runs(
        [exp.experiment_id],
        f"attributes.run_name = '{name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    assert found, name
    runs.append(found[0].info.run_id)
port = 5077
server = subprocess.Popen(
    [
        shutil.which("mlflow", path=sys.prefix + "/bin"),
        "ui",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
try:
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            break
        except Exception:
            time.sleep(1)
    url = (
        f"http://127.0.0.1:{port}/#/compare-runs?runs={json.dumps(runs)}"
        f"&experiments={json.dumps([exp.experiment_id])}"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.goto(url)
        page.wait_for_timeout(8000)
        with contextlib.suppress(PlaywrightError):  # the assistant panel, when MLflow shows it
            page.locator('button[aria-label="Close"]').first.click(timeout=2000)
        for toggle in page.get_by_text("Show diff only").all():  # parameters, metrics, tags
            toggle.click(timeout=2000)
        page.wait_for_timeout(1500)
        page.locator("text=Run details").first.scroll_into_view_if_needed()
        page.screenshot(path=out, full_page=True)
        browser.close()
    print(url)
finally:
    server.terminate()
