"""Take the front page's screenshots from the runs of ``benchmarks/flow_results.py``.

    .venv/bin/pip install -e '.[screenshots]'                       # playwright (drives Debian's chromium)
    .venv/bin/python benchmarks/flow_results.py --work /tmp/flows    # the default experiment and its reverse pair
    .venv/bin/python scripts/screenshots.py --work /tmp/flows        # writes docs/img/*.png, names the runs

It serves that folder's ``mlflow.db`` with ``mlflow server`` and its Prefect database with ``prefect server``
(both on 127.0.0.1), and renders with headless Chromium driven by Playwright (no browser download: the system
``chromium``), closing MLflow's assistant panel first. Pictures: the runs page of the MNIST → USPS experiment
with the trial runs nested under their parent; the chart of ``val/acc`` across the trials; the two directions
compared; the registered model with its aliases; the Prefect flow-run graph of the cached re-run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torchtransfer_flows  # noqa: E402, F401  (offline-quiet environment)
from scripts.chromium import chromium  # noqa: E402
from torchtransfer.keys import UI_TRAINING_VIEW  # noqa: E402
from torchtransfer_cli.servers import start_mlflow, start_prefect, stop  # noqa: E402

OUT = ROOT / "docs" / "img"
RESULTS = ROOT / "benchmarks/results/flow.jsonl"
CLOSE_ASSISTANT = '[data-component-id="mlflow.assistant.chat_panel.close"]'
EXPAND_CHILDREN = '[data-component-id$="runnamecellrenderer.tsx_46"]'  # the +/- before a parent run's name


def pictured_runs(results: Path) -> list[dict]:
    """The newest commit's rows of the flow result file: fresh MNIST→USPS, fresh USPS→MNIST, cached re-run."""
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    rows = [r for r in rows if r["commit"] == rows[-1]["commit"]]
    if len(rows) < 3:
        raise SystemExit(f"{results}: expected the 3 runs of benchmarks/flow_results.py for one commit")
    return rows[-3:]


def _settle(page, wait_ms: int = 7000) -> None:
    """Let the page render (the MLflow UI polls, so the network never idles), then close the assistant."""
    page.wait_for_load_state("load")
    page.wait_for_timeout(wait_ms)
    close = page.locator(CLOSE_ASSISTANT)
    if close.count() and close.first.is_visible():
        close.first.click()
        page.wait_for_timeout(500)


def mlflow_pictures(page, url: str, client, rows: list[dict]) -> list[Path]:
    fresh, reverse, _ = rows
    exp = client.get_run(fresh["run_id"]).info.experiment_id
    exp_reverse = client.get_run(reverse["run_id"]).info.experiment_id
    shots = []
    page.goto(f"{url}/#/experiments/{exp}/runs?{UI_TRAINING_VIEW}")
    _settle(page)
    for button in page.locator(EXPAND_CHILDREN).all():
        button.click()
    page.wait_for_timeout(1500)
    shots.append(_shot(page, "mlflow-runs.png"))
    page.goto(f"{url}/#/experiments/{exp}/runs?{UI_TRAINING_VIEW}&compareRunsMode=CHART")
    _settle(page)
    search = page.get_by_placeholder("Search metric charts")
    if search.count():
        search.first.fill("val/acc")
        page.wait_for_timeout(1500)
    shots.append(_shot(page, "mlflow-chart.png"))
    query = urllib.parse.urlencode({"runs": json.dumps([fresh["run_id"], reverse["run_id"]]),
                                    "experiments": json.dumps([exp, exp_reverse])})
    page.goto(f"{url}/#/compare-runs?{query}&{UI_TRAINING_VIEW}")
    _settle(page)
    _scroll_to(page, "Metrics")
    shots.append(_shot(page, "mlflow-compare.png"))
    model = fresh["config"]["registry"]["model_name"]
    page.goto(f"{url}/#/models/{model}?{UI_TRAINING_VIEW}")
    _settle(page)
    _scroll_to(page, "Versions")
    shots.append(_shot(page, "mlflow-model.png"))
    return shots


def prefect_pictures(page, url: str, flow_run_id: str) -> list[Path]:
    """The flow-run graph of the cached re-run above its task runs (data and source model: Cached)."""
    page.goto(f"{url}/runs/flow-run/{flow_run_id}")
    _settle(page, 4000)
    page.get_by_text("Task Runs", exact=True).first.click()
    page.wait_for_timeout(2000)
    page.get_by_placeholder("Search by run name").fill("pre")  # preflight, prepare_data, pretrain_source
    page.wait_for_timeout(3000)
    return [_shot(page, "prefect-flow-run.png")]


def _scroll_to(page, heading: str) -> None:
    """Bring the first element whose whole text is ``heading`` to the top of the viewport."""
    target = page.get_by_text(heading, exact=True).first
    if target.count():
        target.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(800)


def _shot(page, name: str, full: bool = False) -> Path:
    path = OUT / name
    page.screenshot(path=str(path), full_page=full)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="the --work folder of benchmarks/flow_results.py")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    from mlflow import MlflowClient
    from playwright.sync_api import sync_playwright

    rows = pictured_runs(args.results)
    uri = f"sqlite:///{args.work / 'mlflow.db'}"
    client = MlflowClient(uri)
    cached = client.get_run(rows[2]["run_id"]).data.tags["prefect.flow_run_id"]
    OUT.mkdir(parents=True, exist_ok=True)
    os.chdir(args.work)  # the runs' artifacts (mlruns/) are relative to the folder they ran in
    mlflow, prefect = start_mlflow(uri), start_prefect(home=args.work / "prefect")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            shots = mlflow_pictures(page, mlflow.url, client, rows) + prefect_pictures(page, prefect.url, cached)
            browser.close()
    finally:
        stop(mlflow.process)
        stop(prefect.process)
    for row in rows:
        print(f"pictured: {row['direction']} ({row['cache']}): MLflow run {row['run_id']} "
              f"'{row['run_name']}', Prefect flow run {row['flow_run']}")
    print("\n".join(str(p.relative_to(ROOT)) for p in shots))


if __name__ == "__main__":
    main()
