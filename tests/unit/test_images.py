"""Any size and mode → the backbone's input, by one function shared by training and the served model."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from tests.imagefolders import write_labelled, write_loose
from torchtransfer.data import datasets
from torchtransfer.data.folders import scan, to_domain
from torchtransfer.data.images import ImageError, TooLarge, conform, decode
from torchtransfer.models import build_model
from torchtransfer.registry.serving import ServableModel, read_images, read_model_inputs


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def test_every_mode_decodes_to_grayscale_or_rgb_uint8():
    """Tiny hand-made images, one per PIL mode a user's files come in."""
    gray = Image.fromarray(np.array([[0, 128], [255, 64]], np.uint8))
    assert decode(_png(gray)).shape == (2, 2, 1)
    assert decode(_png(gray.convert("RGB"))).shape == (2, 2, 3)
    rgba = Image.new("RGBA", (2, 1), (200, 100, 50, 255))
    rgba.putpixel((1, 0), (200, 100, 50, 0))  # transparent → black (composited over black)
    assert decode(_png(rgba)).tolist() == [[[200, 100, 50], [0, 0, 0]]]
    assert decode(_png(Image.new("LA", (1, 1), (200, 128)))).tolist() == [[[100]]]
    palette = Image.new("RGB", (3, 1), (10, 20, 30)).quantize(4)
    assert decode(_png(palette)).tolist() == [[[10, 20, 30]] * 3]
    sixteen = Image.fromarray(np.array([[65535, 0]], np.uint16))
    assert decode(_png(sixteen)).tolist() == [[[255], [0]]]
    assert decode(_png(gray.convert("1"))).shape == (2, 2, 1)
    assert decode(_png(gray.convert("CMYK"), "JPEG")).shape == (2, 2, 3)


def test_truncated_undecodable_and_oversized_images_are_refused_by_name(tmp_path):
    data = _png(Image.fromarray(np.full((64, 64, 3), 90, np.uint8)), "JPEG")
    with pytest.raises(ImageError, match=r"cut\.jpg: not a readable image"):
        decode(data[: len(data) // 2], name=tmp_path / "cut.jpg")
    with pytest.raises(ImageError, match="notes.png: not a readable image"):
        decode(b"not an image", name="notes.png")
    with pytest.raises(TooLarge, match=r"big\.jpg: 64×64 = 4,096 pixels is over the limit of 4,000"):
        decode(data, name="big.jpg", max_pixels=4000)


def test_conform_matches_channels_and_size():
    rgb = torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]  # ITU-R 601
    assert torch.allclose(conform(rgb, 1, 28)[:, 0], luma, atol=1e-6)
    gray = rgb[:, :1]
    assert torch.equal(conform(gray, 3, 28), gray.expand(-1, 3, -1, -1))
    assert conform(torch.rand(2, 3, 40, 30), 1, 28).shape == (2, 1, 28, 28)  # non-square: stretched
    with pytest.raises(ValueError, match="2 channels"):
        conform(torch.rand(1, 2, 8, 8), 1, 8)


def test_training_and_the_served_model_see_the_same_pixels(tmp_path):
    """An RGB 32×32 JPEG folder (real digits) read as a domain for lenet (1, 28) and read by ``predict``'s
    reader then the servable's preprocessing: bit-identical inputs."""
    folder = tmp_path / "t"
    write_loose(folder, datasets.digits(), 2, size=32, rgb=True)
    write_labelled(folder, datasets.digits(), 1, size=32, rgb=True, skip=2)
    inventory = scan(folder, "folder", tmp_path / "cache", 1, 28)
    domain = to_domain(inventory, tuple(str(i) for i in range(10)), tmp_path / "cache", 1, 28)
    names, batch = read_images(folder, 1, 28)
    assert batch.shape == (30, 1, 28, 28) and batch.dtype == np.uint8
    served = ServableModel(build_model("lenet", 10, 0), "lenet", 10).preprocess(batch)  # (30, 1, 28, 28)
    by_path = {e.path: i for i, e in enumerate(inventory.entries)}
    order = [by_path[str(folder / n)] for n in names]
    assert torch.equal(served, domain.x[order])


def test_resize_center_crop_keeps_the_aspect_ratio_and_training_and_serving_agree(tmp_path):
    """A wide image (8×16: a bright centred 8×8 square between dark borders): ``stretch`` squeezes the borders
    in, ``center_crop`` keeps the square alone; the folder reader, ``predict``'s reader and the servable model
    (its spec round trip included) all apply the chosen mode."""
    wide = torch.zeros(1, 1, 8, 16)
    wide[..., 4:12] = 1.0  # (1, 1, 8, 16)
    assert torch.equal(conform(wide, 1, 8, "center_crop"), torch.ones(1, 1, 8, 8))
    stretched = conform(wide, 1, 8)
    assert stretched[..., 0].max() < 0.5 and torch.equal(stretched, conform(wide, 1, 8, "stretch"))
    with pytest.raises(ValueError, match="resize must be one of"):
        conform(wide, 1, 8, "fill")

    folder = tmp_path / "f"
    (folder / "3").mkdir(parents=True)
    Image.fromarray((wide[0, 0].numpy() * 255).astype(np.uint8)).save(folder / "3" / "a.png")
    pixels = {}
    for mode in ("stretch", "center_crop"):
        inventory = scan(folder, "folder", tmp_path / "cache", 1, 8, resize=mode)
        pixels[mode] = to_domain(inventory, ("3",), tmp_path / "cache", 1, 8, resize=mode).x  # (1, 1, 8, 8)
        _, batch, _ = read_model_inputs(folder, 1, 8, resize=mode)
        assert torch.equal(torch.from_numpy(batch).float() / 255.0, pixels[mode])
    assert torch.equal(pixels["center_crop"], torch.ones(1, 1, 8, 8)) and not torch.equal(*pixels.values())

    served = ServableModel(build_model("lenet", 10, 0), "lenet", 10, input_size=8, resize="center_crop")
    again = ServableModel.from_spec(served.spec())
    raw = (wide[0].numpy() * 255).astype(np.uint8)  # (1, 8, 16) uint8, as a user sends it
    assert again.resize == "center_crop" and torch.equal(again.preprocess(raw), torch.ones(1, 1, 8, 8))
