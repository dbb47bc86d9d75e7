"""``torchtransfer init [DIR]``: start a project of one's own, the way project templates do.

It writes ``DIR/conf/experiment.yaml`` (a commented experiment: what a user usually changes, merged over the
packaged default at run time) and ``DIR/conf/deployments.yaml`` (a nightly schedule of that experiment), the
same layout as this repository, so that ``torchtransfer run -c conf/experiment.yaml`` and ``torchtransfer
serve`` work from DIR as written. The written files are loaded back as ``run`` and ``serve`` will load them;
an existing file is never overwritten unless ``--force``. Exit codes: 0 written, 2 a file exists (or DIR is a file).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from torchtransfer_cli.common import err_console, make_console

EXPERIMENT = """\
# torchtransfer experiment "{name}": merged over the packaged default.yaml, which documents every key.
# Only what differs from the default is needed here; delete what you keep as default.
#   see every key, resolved:   torchtransfer config -c conf/experiment.yaml
#   run it (from this folder): torchtransfer run -c conf/experiment.yaml --set tuning.n_trials=2
# An unknown or misspelt key is an error naming this file and the dotted key, before anything runs.

experiment: {name}                 # MLflow experiment name; also the prefix of the Optuna study name
seed: 0                              # the one seed: splits, initial weights, batches, augmentation, sampler

data:
  source:                            # the labelled domain the model learns from: a built-in set ({domains})
    name: mnist                      # or your images: `folder: /data/source` (class sub-folders <class>/<image>)
                                     # or `manifest: /data/source.csv` (path,label); sizes: counts or fractions
    train: 2000                      # training images
    val: 500                         # labelled validation images (selects the source model)
    test: 1000                       # held-out source test images
  target:                            # the domain the model must work on
    name: usps                       # or `folder: /data/target`: loose images unlabelled, class sub-folders labelled
    train: 1800                      # training images (their labels unused unless train_labelled > 0)
    val: 200                         # labelled validation images; 0: none, then pick a label-free tuning.objective
    test: 1800                       # held-out test images, read only by the final evaluation
    train_labelled: 0.0              # fraction of target training labels used (0.0: unsupervised adaptation)

model:
  backbone: lenet                    # {backbones}

adaptation:
  method: [fixmatch, shot]           # {methods}

search:                              # what Optuna searches
  method: [fixmatch+shot]            # adaptation methods to choose from (docs/benchmarks.md compares them)
  strategy: [feature_extraction, fine_tune]  # {strategies}
  epochs: {{low: 5, high: 15}}         # fine-tuning epochs

tuning:
  n_trials: 12                       # finished trials the study should hold; a re-run continues the same study
  objective: target_val_acc          # {objectives}
  storage: sqlite:///optuna.db       # Optuna storage, relative to the folder you run in (or postgresql://...)

tracking:
  uri: sqlite:///mlflow.db           # MLflow tracking + registry store (MLFLOW_TRACKING_URI overrides it)

registry:
  model_name: torchtransfer-{name}   # registered model; aliases challenger (newest) and champion (promoted)
  min_improvement: 0.0               # champion moves only if the target test accuracy beats it by more than this
  gate: target_test_acc              # promotion basis; no labelled target test image: manual or a validator (im…)
"""

DEPLOYMENTS = """\
# Scheduled runs of conf/experiment.yaml. They need a Prefect server: `torchtransfer ui` starts one (and MLflow),
# then `export PREFECT_API_URL=http://127.0.0.1:4200/api` and, from this folder, `torchtransfer serve` (one
# long-lived process runs the schedule). Config paths are relative to the folder you run the command in.
work_pool: torchtransfer               # process work pool for `torchtransfer deploy`

deployments:
  nightly-{name}:
    configs: [conf/experiment.yaml]    # merged left to right over the packaged default, as `torchtransfer run -c`
    overrides: []                      # dotted KEY=VALUE overrides, as with --set
    schedule:
      cron: "0 2 * * *"                # every night at 02:00 ...
      timezone: UTC                    # ... in this IANA time zone (e.g. Europe/Berlin)
    concurrency_limit: 1               # never two runs of this deployment at once
    collision_strategy: CANCEL_NEW     # a run that would overlap is cancelled (ENQUEUE: it waits)
    tags: [nightly]
"""


def slug(folder: Path) -> str:
    """A name for experiments and models from a folder name: lower case, ``-`` between words."""
    name = re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-")
    return name or "my-experiment"


def templates(name: str) -> dict[str, str]:
    """``{relative path: text}`` of the project files; the name lists: ``torchtransfer.names``, ``.methods``."""
    from torchtransfer import methods, names

    choices = {key: " | ".join(values) for key, values in (
        ("domains", names.DOMAINS), ("backbones", names.BACKBONES),
        ("methods", methods.METHODS),
        ("strategies", names.STRATEGIES), ("objectives", names.OBJECTIVES))}
    return {"conf/experiment.yaml": EXPERIMENT.format(name=name, **choices),
            "conf/deployments.yaml": DEPLOYMENTS.format(name=name)}


def validate(folder: Path) -> None:
    """Load the written experiment and deployments the way ``run`` and ``serve`` will (raises ConfigError)."""
    from torchtransfer.config import load_experiment
    from torchtransfer_flows.deployments import load_deployments, resolve

    load_experiment(folder / "conf/experiment.yaml")
    for spec in load_deployments(folder / "conf/deployments.yaml").deployments.values():
        resolve(spec, folder)


def init(directory: Annotated[Path, typer.Argument(help="Project folder (created if missing).")] = Path("."),
         name: Annotated[str, typer.Option(help="Experiment name (default: from the folder name).")] = "",
         force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False) -> None:
    """Write a commented experiment (conf/experiment.yaml) and a deployments file (conf/deployments.yaml) to edit.

    Example: torchtransfer init my-project && cd my-project && torchtransfer run -c conf/experiment.yaml
    """
    files = templates(name or slug(directory))
    existing = [rel for rel in files if (directory / rel).exists()]
    if directory.is_file() or (existing and not force):
        err_console.print(f"[bold red]not written:[/] {directory / existing[0] if existing else directory} exists "
                          "(--force overwrites)", highlight=False)
        raise typer.Exit(2)
    (directory / "conf").mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (directory / rel).write_text(text)
    validate(directory)  # a template that does not load is a bug here, not the user's to find
    console = make_console()
    for rel in files:
        console.print(f"wrote {directory / rel}", highlight=False)
    console.print(f"next: cd {directory} && torchtransfer run -c conf/experiment.yaml", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(init)
