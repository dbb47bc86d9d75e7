from pathlib import Path

import pytest
import yaml

from tests.conftest import CONF, ROOT
from torchtransfer.config import ConfigError
from torchtransfer_flows.deployments import load_deployments, prefect_yaml, resolve


def test_the_shipped_deployments_validate_and_resolve():
    file = load_deployments(CONF / "deployments.yaml")
    assert file.deployments["nightly-mnist-usps"].schedule.cron == "0 2 * * *"
    assert all(spec.concurrency_limit == 1 for spec in file.deployments.values())
    assert resolve(file.deployments["weekly-usps-mnist"], ROOT).data.source.name == "usps"


def test_prefect_yaml_is_generated_from_conf():
    expected = prefect_yaml(CONF / "deployments.yaml")
    assert (ROOT / "prefect.yaml").read_text() == expected, (
        "prefect.yaml is stale: run `torchtransfer deploy --write-prefect-yaml prefect.yaml`")


@pytest.mark.parametrize(("schedule", "message"), [
    ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ({"cron": "0 2 * * *", "interval": 60}, "exactly one of cron or interval"),
    ({"cron": "every night"}, "deployments.nightly.schedule"),
    ({"cron": "0 2 * * *", "tz": "UTC"}, "deployments.nightly.schedule.tz"),
])
def test_bad_deployment_files_name_the_field(tmp_path: Path, schedule, message):
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"deployments": {"nightly": {"configs": ["conf/default.yaml"],
                                                                "schedule": schedule}}}))
    with pytest.raises(ConfigError, match=message) as err:
        load_deployments(path)
    assert str(path) in str(err.value)


def _drift_trigger_block() -> str:
    page = (ROOT / "docs" / "orchestration.md").read_text()
    return page.split("<!-- drift-trigger -->\n```yaml\n", 1)[1].split("```", 1)[0]


def test_the_documented_drift_trigger_is_a_prefect_trigger_on_the_event_the_check_emits(tmp_path: Path):
    from prefect.events import DeploymentEventTrigger

    from torchtransfer_flows.deployments import _options
    from torchtransfer_tasks.drift import EVENT

    path = tmp_path / "deployments.yaml"
    path.write_text(_drift_trigger_block())
    file = load_deployments(path)  # each trigger validated by Prefect's own deployment-trigger schema
    check, retrain = file.deployments["nightly-drift-check"], file.deployments["retrain-on-drift"]
    assert resolve(check, ROOT).drift.retrain is False and resolve(retrain, ROOT).drift.force is True
    (trigger,) = _options("retrain-on-drift", retrain, ROOT)["triggers"]
    assert isinstance(trigger, DeploymentEventTrigger) and trigger.name == "retrain-on-drift__automation_1"
    assert trigger.expect == {EVENT.format(decision="retrain")}
    assert trigger.match.root == {"prefect.resource.id": "torchtransfer.drift.nightly-drift-check"}
    assert "triggers" in prefect_yaml(path)


def test_a_trigger_prefect_would_refuse_is_refused_when_the_file_is_read(tmp_path: Path):
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"deployments": {"retrain": {"configs": ["conf/default.yaml"], "triggers": [
        {"type": "event", "expect": ["torchtransfer.drift.retrain"], "posture": "Sideways"}]}}}))
    with pytest.raises(ConfigError, match="deployments.retrain.triggers.*posture"):
        load_deployments(path)
