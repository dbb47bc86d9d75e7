"""An image folder with a corrupt file and a non-image file: skipped and counted, or rejected by name."""

import numpy as np
import pytest
from PIL import Image

from torchtransfer.data import datasets


def _folder(tmp_path):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.fromarray((np.random.default_rng(i).random((8, 8)) * 255).astype("uint8")).save(
                tmp_path / label / f"{i}.png")
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # corrupt PNG
    (tmp_path / "b" / "notes.jpg").write_text("not an image")  # wrong content behind an image name
    return tmp_path


def test_bad_files_are_skipped_and_counted(tmp_path):
    data = datasets.image_folder(_folder(tmp_path))
    assert len(data) == 6
    assert sorted(p.rsplit("/", 1)[1] for p in data.skipped) == ["broken.png", "notes.jpg"]
    assert datasets.as_domain(data, "folder").x.shape == (6, 3, 8, 8)  # ImageFolder loads RGB


def test_or_rejected_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"(broken\.png|notes\.jpg) is not a readable image"):
        datasets.image_folder(_folder(tmp_path), on_bad="error")
