"""``provenance.code_record``: the commit, the dirty flag and the diff a run logs as ``code/git.diff``."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from torchtransfer import provenance

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(repo, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("lr = 0.01\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_a_clean_checkout_is_not_dirty_and_has_no_diff(repo):
    tags, diff = provenance.code_record(cwd=repo)
    assert tags == {"git.commit": _git(repo, "rev-parse", "HEAD").strip(), "git.dirty": "false"}
    assert diff is None
    (repo / "notes.txt").write_text("untracked files do not make it dirty\n")
    assert provenance.code_record(cwd=repo) == (tags, None)


def test_a_dirty_checkout_records_the_diff_against_head(repo):
    (repo / "train.py").write_text("lr = 0.1\n")
    tags, diff = provenance.code_record(cwd=repo)
    assert tags["git.dirty"] == "true" and tags["git.commit"] == _git(repo, "rev-parse", "HEAD").strip()
    assert "-lr = 0.01" in diff and "+lr = 0.1" in diff and "train.py" in diff
    _git(repo, "add", "train.py")  # staged changes are in the diff against HEAD too
    assert provenance.code_record(cwd=repo)[1] == diff


def test_outside_a_checkout_the_commit_is_unknown(tmp_path):
    assert provenance.code_record(cwd=tmp_path) == ({"git.commit": "unknown", "git.dirty": "false"}, None)


def test_the_default_is_the_project_checkout():
    tags, diff = provenance.code_record()
    assert tags["git.commit"] == (provenance.git("rev-parse", "HEAD") or "unknown").strip()
    assert (diff is not None) == (tags["git.dirty"] == "true")
