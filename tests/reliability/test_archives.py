"""Archive extraction: members that would land, or point, outside the folder refuse the whole archive."""

from __future__ import annotations

import ast
import io
import re
import tarfile

import pytest

from tests.conftest import ROOT
from tests.reliability.test_security import PROJECT_CODE
from torchtransfer.data.archives import UnsafeArchive, safe_extract


def _tar(path, *members: tarfile.TarInfo) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            data = b"x" * member.size
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _fifo(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.FIFOTYPE
    return info


@pytest.mark.parametrize("bad", [
    _file("../escaped.txt"),
    _file("sub/../../escaped.txt"),
    _file("/tmp/torchtransfer-absolute.txt"),
    _link("sub/out", "../../escaped.txt"),
    _link("etc", "/etc"),
    _link("hard", "../escaped.txt", tarfile.LNKTYPE),
    _fifo("pipe"),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out", "fifo"])
def test_an_unsafe_member_refuses_the_archive_and_nothing_is_written(tmp_path, bad):
    archive, dest = tmp_path / "a.tar.gz", tmp_path / "dest"
    _tar(archive, _file("ok/first.txt"), bad, _file("ok/last.txt"))
    with pytest.raises(UnsafeArchive, match=re.escape(bad.name)):
        safe_extract(archive, dest)
    assert not dest.exists()  # not even the safe member before the bad one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]


def test_a_safe_archive_with_an_inner_link_extracts(tmp_path):
    archive = tmp_path / "a.tar.gz"
    _tar(archive, _file("batches/data_1"), _link("batches/latest", "data_1"))
    assert safe_extract(archive, tmp_path / "dest") == ["batches/data_1", "batches/latest"]
    assert (tmp_path / "dest/batches/latest").read_bytes() == b"x"


def test_no_code_extracts_an_archive_except_safe_extract():
    """``extract``/``extractall`` are called only in torchtransfer/archives.py, and torchvision's CIFAR10
    (whose own download option would extract unchecked) is always built with that option off."""
    offenders = []
    for path in PROJECT_CODE:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            if getattr(node.func, "attr", "") in ("extractall", "extract") and path.name != "archives.py":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} extracts")
            download = {k.arg: k.value for k in node.keywords}.get("download")
            if path.name == "datasets.py" and getattr(node.func, "id", "") == "cls" and download is not None \
                    and "train" in {k.arg for k in node.keywords}:  # the CIFAR10 call (SVHN has no extraction)
                if not (isinstance(download, ast.Constant) and download.value is False):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} passes download on to torchvision")
    assert offenders == []
