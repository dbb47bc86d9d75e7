"""What `pip install .` (not editable) ships: every package of the project and the default experiment.

An editable install finds any folder with an ``__init__.py``, so a package left out of ``[tool.setuptools]
packages`` works here and fails for a user who installs the wheel (``torchtransfer.config`` was missing once)."""

from __future__ import annotations

import tomllib

from tests.conftest import ROOT


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed_for_the_wheel():
    setup = _setuptools()
    folders = {"torchtransfer": ROOT / "torchtransfer",
               **{name: ROOT / path for name, path in setup["package-dir"].items()}}
    found = set()
    for name, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            parts = init.parent.relative_to(folder).parts
            found.add(".".join((name, *parts)))
    assert sorted(found - set(setup["packages"])) == [], "packages missing from [tool.setuptools] packages"
    assert sorted(set(setup["packages"]) - found) == [], "listed packages that do not exist"


def test_the_packaged_default_experiment_is_package_data():
    patterns = _setuptools()["package-data"]["torchtransfer"]
    assert "conf/*.yaml" in patterns and (ROOT / "torchtransfer/conf/default.yaml").is_file()
