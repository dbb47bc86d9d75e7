"""Every Python snippet in README.md and docs/ that needs no network runs as written (those marked
``<!-- snippet: needs network -->`` need data or weights that cannot be fetched here)."""

from __future__ import annotations

import re

import pytest

from benchmarks.doctables import pages
from tests.conftest import ROOT

BLOCK = re.compile(r"(<!-- snippet: needs network -->\s*)?```python\n(.*?)```", re.S)


def _snippets() -> list[tuple[bool, str]]:
    return [(bool(marker), code) for page in pages(ROOT) for marker, code in BLOCK.findall(page.read_text())]


def test_readme_has_runnable_snippets_and_marks_the_others():
    snippets = _snippets()
    assert len(snippets) >= 3 and any(not needs for needs, _ in snippets)
    for needs, code in snippets:
        if needs:
            assert re.search(r"cifar10|weights=|~/data", code), "a snippet marked as needing network needs none"


@pytest.mark.parametrize("index", [i for i, (needs, _) in enumerate(_snippets()) if not needs])
def test_readme_snippet_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCHTRANSFER_CACHE", str(tmp_path / "cache"))
    code = _snippets()[index][1]
    exec(compile(code, f"docs snippet {index}", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.strip()  # it printed its result
