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
