"""docs/reliability.md's "What we test against": every row names tests that exist (a renamed test must update the
table)."""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

REFERENCE = re.compile(r"`((?:[\w/]+\.py)?)::([\w…]+)`")


def _rows() -> list[str]:
    page = ROOT.joinpath("docs/reliability.md").read_text()
    section = page.split("## What we test against", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| case")
            and not line.startswith("| ---")]


def _tests_in(path) -> set[str]:
    return {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)
            and n.name.startswith("test_")}


def test_every_row_names_tests_that_exist():
    rows, missing = _rows(), []
    assert len(rows) >= 20
    for row in rows:
        file, references = None, REFERENCE.findall(row)
        assert references, f"row names no test: {row[:80]}"
        for named_file, name in references:
            file = named_file or file  # `::other_test` continues the file named before it in the row
            path = ROOT / (file if "/" in file else f"tests/reliability/{file}")
            pattern = re.compile("^" + re.escape(name).replace("…", ".*") + "$")
            if not path.is_file() or not any(pattern.match(t) for t in _tests_in(path)):
                missing.append(f"{file}::{name}")
    assert missing == []

