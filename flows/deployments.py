"""Scheduled deployments of ``transfer_learning``, declared in ``conf/deployments.yaml``.

Each named deployment is a list of config files plus dotted overrides (resolved and validated when it is
deployed, so the Prefect UI shows the typed config as the run form), a cron or interval schedule with a
time zone, and a concurrency limit with a collision strategy so a nightly retrain never overlaps itself.

- ``serve(...)``: every deployment from one long-lived process (``torchtransfer serve``).
- ``deploy(...)``: to a process work pool served by ``prefect worker start`` (``torchtransfer deploy``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from torchtransfer.config import ConfigError, ExperimentConfig, load_experiment

log = logging.getLogger(__name__)
ENTRYPOINT = "flows/transfer.py:transfer_learning"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleSpec(_Strict):
    cron: str | None = None
    interval: float | None = Field(None, gt=0, description="seconds between runs")
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as Europe/Berlin") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSpec:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of cron or interval")
        if self.cron is not None:
            from prefect.schedules import validate_cron_string

            validate_cron_string(self.cron)
        return self


class DeploymentSpec(_Strict):
    configs: list[str] = Field(min_length=1)
    overrides: list[str] = []
    schedule: ScheduleSpec | None = None
    concurrency_limit: int = Field(1, ge=1)
    collision_strategy: Literal["ENQUEUE", "CANCEL_NEW"] = "CANCEL_NEW"
    tags: list[str] = []
    description: str | None = None
    triggers: list[dict] = []  # Prefect deployment triggers, as in prefect.yaml (e.g. on torchtransfer.drift.retrain)

    @field_validator("triggers")
    @classmethod
    def _prefect_triggers(cls, value: list[dict]) -> list[dict]:
        """Each trigger must be one Prefect 3 accepts (``prefect deploy`` validates them the same way)."""
        from prefect.events import DeploymentTriggerTypes
        from pydantic import TypeAdapter

        adapter = TypeAdapter(DeploymentTriggerTypes)
        for trigger in value:
            adapter.validate_python(trigger)
        return value


class DeploymentsFile(_Strict):
    work_pool: str = "torchtransfer"
    deployments: dict[str, DeploymentSpec] = Field(min_length=1)


def load_deployments(path: Path) -> DeploymentsFile:
    """Read and validate a deployments file; errors name the file and the dotted field."""
    if not path.is_file():
        raise ConfigError(f"{path}: deployments file not found")
    try:
        return DeploymentsFile.model_validate(yaml.safe_load(path.read_text()) or {})
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def resolve(spec: DeploymentSpec, root: Path) -> ExperimentConfig:
    """The deployment's experiment: its configs over the packaged default (as ``torchtransfer run -c``);
    relative config paths are relative to ``root``."""
    return load_experiment(*(root / c for c in spec.configs), overrides=spec.overrides)


def _selected(file: DeploymentsFile, names: list[str] | None) -> dict[str, DeploymentSpec]:
    unknown = sorted(set(names or ()) - set(file.deployments))
    if unknown:
        raise ConfigError(f"unknown deployment(s) {unknown}; defined: {sorted(file.deployments)}")
    return {n: s for n, s in file.deployments.items() if not names or n in names}


def _options(name: str, spec: DeploymentSpec, root: Path) -> dict:
    """Keyword arguments shared by ``Flow.to_deployment`` and ``Flow.deploy``."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron, Interval

    schedules = []
    if spec.schedule is not None:
        s = spec.schedule
        schedules = [Cron(s.cron, timezone=s.timezone) if s.cron else Interval(s.interval, timezone=s.timezone)]
    cfg = resolve(spec, root)
    return {
        "name": name,
        "parameters": {"cfg": cfg.model_dump(mode="json")},
        "schedules": schedules,
        "concurrency_limit": ConcurrencyLimitConfig(
            limit=spec.concurrency_limit, collision_strategy=ConcurrencyLimitStrategy(spec.collision_strategy)),
        "tags": ["torchtransfer", *spec.tags],
        "description": spec.description or f"{cfg.experiment}: {' + '.join(spec.configs)}",
        "triggers": [_trigger(name, i, t) for i, t in enumerate(spec.triggers, start=1)],
    }


def _trigger(deployment: str, index: int, spec: dict):
    """A Prefect deployment trigger from its YAML form, named as ``prefect deploy`` names them."""
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    return TypeAdapter(DeploymentTriggerTypes).validate_python({"name": f"{deployment}__automation_{index}", **spec})


class ServeConflict(ValueError):
    """A deployment of that name already belongs to a work pool (made by ``deploy``)."""


def check_not_in_a_pool(flow_name: str, names: list[str]) -> None:
    """Refuse to serve a name that ``deploy`` gave to a work pool: Prefect would keep that record's pull
    steps, and every run the served process picked up would crash looking for flow code "at None"."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in names:
            try:
                existing = client.read_deployment_by_name(f"{flow_name}/{name}")
            except ObjectNotFound:
                continue
            if existing.work_pool_name or existing.pull_steps:
                raise ServeConflict(
                    f"deployment {flow_name}/{name} already exists in work pool {existing.work_pool_name!r} "
                    f"(made by `torchtransfer deploy`); run it with `prefect worker start --pool "
                    f"{existing.work_pool_name}`, or remove it first: prefect deployment delete {flow_name}/{name}")


def serve(path: Path, names: list[str] | None = None, root: Path = PROJECT_ROOT,
          config_root: Path | None = None) -> None:
    """Run the deployments from this process until it is stopped (SIGTERM pauses their schedules); relative
    config paths are relative to ``config_root`` (the CLI: the current folder), else ``root``."""
    from prefect import serve as prefect_serve

    from torchtransfer_flows.transfer import transfer_learning

    selected = _selected(load_deployments(path), names)
    check_not_in_a_pool(transfer_learning.name, list(selected))
    prefect_serve(*[transfer_learning.to_deployment(**_options(n, s, config_root or root))
                    for n, s in selected.items()])


def ensure_process_pool(name: str) -> None:
    """Create the process work pool ``name`` unless it exists."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            log.info("created process work pool %s", name)


def deploy(path: Path, names: list[str] | None = None, pool: str | None = None,
           root: Path = PROJECT_ROOT, config_root: Path | None = None) -> dict[str, str]:
    """Create or update the deployments on the Prefect server at ``PREFECT_API_URL``, in a process work pool
    whose workers run the flow from ``root``; relative config paths are relative to ``config_root`` (the CLI:
    the current folder), else ``root``. Returns {name: deployment id}."""
    from torchtransfer_flows.transfer import transfer_learning

    file = load_deployments(path)
    pool_name = pool or file.work_pool
    ensure_process_pool(pool_name)
    remote = transfer_learning.from_source(source=str(root), entrypoint=ENTRYPOINT)
    return {name: str(remote.deploy(work_pool_name=pool_name, build=False, push=False, print_next_steps=False,
                                    **_options(name, spec, config_root or root)))
            for name, spec in _selected(file, names).items()}


def prefect_yaml(path: Path, root: Path = PROJECT_ROOT) -> str:
    """The same deployments as a ``prefect.yaml`` for ``prefect deploy --all`` (run from the project folder).

    The resolved configs are written out in full, so the file is generated: regenerate it with
    ``torchtransfer deploy --write-prefect-yaml prefect.yaml`` after changing conf/ (a test checks it is current).
    """
    file = load_deployments(path)
    entries = []
    for name, spec in file.deployments.items():
        entry = {"name": name, "entrypoint": ENTRYPOINT, "work_pool": {"name": file.work_pool},
                 "tags": ["torchtransfer", *spec.tags],
                 "concurrency_limit": {"limit": spec.concurrency_limit,
                                       "collision_strategy": spec.collision_strategy},
                 "parameters": {"cfg": resolve(spec, root).model_dump(mode="json")}}
        if spec.schedule is not None:
            kind = {"cron": spec.schedule.cron} if spec.schedule.cron else {"interval": spec.schedule.interval}
            entry["schedules"] = [{**kind, "timezone": spec.schedule.timezone}]
        if spec.triggers:
            entry["triggers"] = spec.triggers
        entries.append(entry)
    document = {
        "name": "torchtransfer",
        "prefect-version": "3.9.1",
        "build": None,
        "push": None,
        # the worker runs each flow in the folder `prefect deploy` was run from (the project)
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PWD }}"}}],
        "deployments": entries,
    }
    header = "# Generated from conf/deployments.yaml by `torchtransfer deploy --write-prefect-yaml prefect.yaml`.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=110)
