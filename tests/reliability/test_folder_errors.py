"""Bad folders, manifests and images → exit 2 from ``torchtransfer run``, the path named, and no MLflow store,
Optuna study or run created (the preflight reads every file before anything exists)."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import CONF
from tests.imagefolders import digit_folders
from torchtransfer_cli.app import app

SIZES = "data:\n  source: {%s, train: 0.6, val: 0.2, test: 0.2}\n  target: {%s, train: 1.0, val: 0.5, test: 0.5}\n"


def _bomb(path: Path) -> Path:
    """A 40 kB-wide PNG header claiming 40,000 × 40,000 pixels (1.6 G): a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _manifest(tmp: Path, header: str, rows: list[str]) -> Path:
    path = tmp / "target.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _case(name: str, tmp: Path) -> tuple[str, str, list[str], str]:
    """(source spec, target spec, extra --set, the path the message must name) for one bad input."""
    source, target = digit_folders(tmp, per_class=3)
    src, tgt = f"folder: {source}", f"folder: {target}"
    if name == "missing folder":
        return src, f"folder: {tmp / 'nope'}", [], str(tmp / "nope")
    if name == "empty folder":
        (tmp / "empty").mkdir()
        return src, f"folder: {tmp / 'empty'}", [], str(tmp / "empty")
    if name == "source without class sub-folders":
        loose = tmp / "loose"
        loose.mkdir()
        for f in sorted(target.glob("*.jpg")):
            shutil.copy(f, loose / f.name)
        return f"folder: {loose}", tgt, [], str(loose)
    if name == "class sets differ":
        shutil.copytree(target / "9", target / "cat")
        return src, tgt, [], str(target)
    if name == "manifest with an unknown column":
        return src, f"manifest: {_manifest(tmp, 'path,label,split', ['digits/u0000.jpg,,train'])}", [], "target.csv"
    if name == "manifest with a missing file":
        return src, f"manifest: {_manifest(tmp, 'path,label', ['digits/u0000.jpg,', 'digits/gone.jpg,3'])}", [], \
            "gone.jpg"
    if name == "truncated image refused":
        bad = _truncated(next(target.glob("*.jpg")))
        return src, tgt, ["data.on_bad_image=error"], str(bad)
    if name == "undecodable image refused":
        (target / "3" / "notes.png").write_text("not an image")
        return src, tgt, ["data.on_bad_image=error"], str(target / "3" / "notes.png")
    if name == "image over the pixel limit":
        return src, tgt, [], str(_bomb(target / "bomb.png"))
    if name == "symlink leaving the folder":
        outside = tmp / "outside.png"
        shutil.copy(next(source.glob("3/*.png")), outside)
        (source / "3" / "link.png").symlink_to(outside)
        return src, tgt, [], str(source / "3" / "link.png")
    raise AssertionError(name)


CASES = ["missing folder", "empty folder", "source without class sub-folders", "class sets differ",
         "manifest with an unknown column", "manifest with a missing file", "truncated image refused",
         "undecodable image refused", "image over the pixel limit", "symlink leaving the folder"]


@pytest.mark.parametrize("case", CASES)
def test_bad_data_exits_2_names_the_path_and_creates_nothing(case, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    source, target, sets, named = _case(case, data)
    mine = data / "mine.yaml"
    mine.write_text(SIZES % (source, target))
    args = ["run", "-c", str(CONF / "default.yaml"), "-c", str(mine), "--set", f"cache_dir={data / 'cache'}",
            "--set", f"tracking.uri=sqlite:///{work / 'mlflow.db'}",
            "--set", f"tuning.storage=sqlite:///{work / 'optuna.db'}"]
    for s in sets:
        args += ["--set", s]
    result = CliRunner().invoke(app, args, terminal_width=400)
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert "preflight: nothing was started" in output and named in output, output
    assert list(work.iterdir()) == []  # no mlflow.db, optuna.db or mlruns
