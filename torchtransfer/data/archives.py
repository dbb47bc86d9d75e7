"""The one archive we unpack (CIFAR-10's tar.gz, with ``download=True``) never writes outside its folder.

USPS is read from its verified sdist in memory and nothing of it is extracted. CIFAR-10 comes as a tar.gz;
torchvision would ``extractall`` it unchecked, so :func:`safe_extract` checks every member first and refuses
the whole archive, before writing anything, when one would land outside the destination: an absolute name, a
``..`` that climbs out, a symbolic or hard link that points out, a device file or a FIFO. Python's ``data``
extraction filter then guards the extraction itself as a second line.
"""

from __future__ import annotations

import tarfile
from pathlib import Path


class UnsafeArchive(ValueError):
    """An archive member would be written, or would point, outside the destination folder."""


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_member(member: tarfile.TarInfo, dest: Path) -> None:
    """Raise ``UnsafeArchive`` naming ``member`` when extracting it into ``dest`` (resolved) is unsafe."""
    target = (dest / member.name).resolve()
    if not _inside(target, dest):
        raise UnsafeArchive(f"archive member {member.name!r} would be written outside {dest}")
    if member.issym():
        pointee = (target.parent / member.linkname).resolve()
        if not _inside(pointee, dest):
            raise UnsafeArchive(f"archive member {member.name!r} is a link to {member.linkname!r}, outside {dest}")
    if member.islnk() and not _inside((dest / member.linkname).resolve(), dest):
        raise UnsafeArchive(f"archive member {member.name!r} is a hard link to {member.linkname!r}, outside {dest}")
    if member.isdev() or member.isfifo():
        raise UnsafeArchive(f"archive member {member.name!r} is a device or FIFO; refusing to create it")


def safe_extract(archive: str | Path, dest: str | Path) -> list[str]:
    """Extract the tar ``archive`` into ``dest`` once every member has passed :func:`check_member`.

    Returns the member names. An unsafe member raises ``UnsafeArchive`` and nothing is written.
    """
    dest = Path(dest).expanduser().resolve()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            check_member(member, dest)
        dest.mkdir(parents=True, exist_ok=True)
        tar.extractall(dest, members=members, filter="data")
    return [m.name for m in members]
