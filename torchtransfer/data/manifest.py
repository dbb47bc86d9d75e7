"""CSV manifests, the form data teams export: columns ``path,label``; paths relative to the CSV file, an empty
label marks an unlabelled image. Every path must stay inside the manifest's folder."""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ("path", "label")


class DataError(ValueError):
    """Bad input data (a folder, manifest or image); the message names the path and what was expected."""


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symlinks and ``..`` resolved) lies in ``root``."""
    return path.resolve().is_relative_to(root.resolve())


def read_manifest(manifest: Path) -> list[tuple[Path, str | None]]:
    """The manifest's rows as ``(file, label or None)``, in file order; every problem raises ``DataError``.

    Example:
        >>> import tempfile; folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.png").write_bytes(b""); _ = (folder / "m.csv").write_text("path,label\\na.png,cat\\n")
        >>> [(p.name, label) for p, label in read_manifest(folder / "m.csv")]
        [('a.png', 'cat')]
    """
    manifest = Path(manifest).expanduser()
    if not manifest.is_file():
        raise DataError(f"{manifest}: manifest not found; expected a CSV file with columns path,label")
    with manifest.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [c.strip() for c in reader.fieldnames or []]
        unknown = [c for c in header if c not in COLUMNS]
        if unknown or "path" not in header:
            raise DataError(f"{manifest}: columns {header}; expected path,label (unknown: {unknown or 'none'}, "
                            f"path {'present' if 'path' in header else 'missing'})")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    root, found, missing, outside = manifest.parent, [], [], []
    for line, row in enumerate(rows, start=2):
        if not row.get("path"):
            raise DataError(f"{manifest}: line {line} has an empty path")
        file = root / row["path"]
        if not inside(file, root):
            outside.append(row["path"])
        elif not file.is_file():
            missing.append(row["path"])
        else:
            found.append((file, row.get("label") or None))
    if outside:
        raise DataError(f"{manifest}: {len(outside)} path(s) leave the manifest's folder {root} (via .. or a "
                        f"symlink): {outside[:5]}")
    if missing:
        raise DataError(f"{manifest}: {len(missing)} file(s) listed but missing under {root}: {missing[:5]}")
    if not found:
        raise DataError(f"{manifest}: lists no images")
    return found
