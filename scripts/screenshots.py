"""Take the README screenshots: the MLflow UI comparing two runs and the Prefect UI's deployment schedule.

    .venv/bin/python scripts/screenshots.py            # writes docs/img/*.png

Runs two small real experiments (conf/smoke.yaml, seeds 0 and 1) into a temporary SQLite store, serves it
with `mlflow server` and a fresh `prefect server` on 127.0.0.1, and renders pages with headless Chromium.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torchtransfer_flows  # noqa: E402, F401  (offline-quiet environment)
from scripts.chromium import screenshot  # noqa: E402
from torchtransfer_cli.servers import start_mlflow, start_prefect, stop  # noqa: E402

OUT = ROOT / "docs" / "img"


def _runs(work: Path) -> tuple[str, str, list[str]]:
    uri = f"sqlite:///{work / 'mlflow.db'}"
    ids = []
    for seed in (0, 1):
        cmd = [sys.executable, "-c", "from torchtransfer_cli.app import main; main()", "run", "-c", "conf/default.yaml",
               "-c", "conf/smoke.yaml", "--set", f"seed={seed}", "--set", "tuning.n_trials=4", "--set",
               f"tracking.uri={uri}", "--set", f"tuning.storage=sqlite:///{work / 'optuna.db'}"]
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp_id = client.get_experiment_by_name("smoke").experiment_id
    parents = client.search_runs([exp_id], "tags.`prefect.flow_run_id` != ''")
    ids = [r.info.run_id for r in parents]
    return uri, exp_id, ids


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        uri, exp_id, ids = _runs(work)
        mlflow = start_mlflow(uri)
        try:
            screenshot(f"{mlflow.url}/#/experiments/{exp_id}/runs", OUT / "mlflow-runs.png")
            query = urllib.parse.urlencode({"runs": json.dumps(ids), "experiments": json.dumps([exp_id])})
            screenshot(f"{mlflow.url}/#/compare-runs?{query}", OUT / "mlflow-compare.png", size=(1600, 1400))
        finally:
            stop(mlflow.process)
        prefect = start_prefect(home=work / "prefect-home")
        try:
            env = {**os.environ, "PREFECT_API_URL": f"{prefect.url}/api"}
            out = subprocess.run([sys.executable, "-c", "from torchtransfer_cli.app import main; main()", "deploy"],
                                 cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
            first = out.split("(", 1)[1].split(")")[0]
            screenshot(f"{prefect.url}/deployments", OUT / "prefect-deployments.png", size=(1600, 700))
            screenshot(f"{prefect.url}/deployments/deployment/{first}", OUT / "prefect-deployment.png")
        finally:
            stop(prefect.process)
    print("\n".join(str(p.relative_to(ROOT)) for p in sorted(OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
