"""The servable model takes raw images in every documented form and gives the same answer for the same picture."""

import numpy as np
import pytest
import torch
from PIL import Image

from torchtransfer.data.images import ImageError
from torchtransfer.models import build_model
from torchtransfer.registry.serving import ServableModel, as_unit_float, read_images, read_model_inputs, servable_for


@pytest.fixture(scope="module")
def servable() -> ServableModel:
    return servable_for(build_model("lenet", 10, seed=0), "lenet", 10, (1, 28, 28))


@pytest.fixture(scope="module")
def raw() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(6, 16, 16), dtype=np.uint8)  # (N, H, W) uint8


def test_uint8_float_nhw_nchw_and_rgb_give_the_same_probabilities(servable, raw):
    probs, labels = servable.predict(raw)
    assert probs.shape == (6, 10) and probs.dtype == np.float32 and labels.dtype == np.int64
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5) and (labels == probs.argmax(1)).all()
    as_float = raw.astype(np.float32) / 255.0
    rgb = np.repeat(raw[:, None], 3, axis=1)  # (N, 3, H, W): gray in RGB gives the same luma
    for variant in (as_float, raw[:, None], as_float[:, None], rgb, raw.astype(np.int64), torch.from_numpy(raw)):
        assert np.allclose(servable.predict(variant)[0], probs, atol=1e-5)


def test_resize_matches_the_training_pipeline(servable, raw):
    x = torch.from_numpy(raw).float().div(255).unsqueeze(1)
    resized = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    expected = torch.softmax(servable.backbone(resized), 1)
    assert torch.allclose(servable(raw), expected, atol=1e-6)
    assert servable.preprocess(np.zeros((2, 28, 28), np.uint8)).shape == (2, 1, 28, 28)


@pytest.mark.parametrize(("images", "message"), [
    (np.full((2, 8, 8), 3.0, np.float32), r"float images must be in \[0, 1\]"),
    (np.full((2, 8, 8), 300), "integer images must hold 0..255"),
    (np.zeros((8, 8), np.uint8), r"must be \(N, H, W\) or \(N, C, H, W\)"),
    (np.zeros((2, 2, 8, 8), np.uint8), "2 channels"),
    (np.full((1, 4, 4), np.nan, np.float32), r"float images must be in \[0, 1\]"),
])
def test_bad_input_is_a_clear_error(servable, images, message):
    with pytest.raises(ValueError, match=message):
        servable.predict(images)


def test_save_load_roundtrip_is_exact(servable, raw, tmp_path):
    loaded = ServableModel.load(servable.save(tmp_path / "s.pt"))
    assert np.array_equal(loaded.predict(raw)[0], servable.predict(raw)[0])
    assert (loaded.input_size, loaded.in_channels, loaded.class_names) == (28, 1, [str(i) for i in range(10)])


def test_as_unit_float_scales_integers_only():
    assert float(as_unit_float(np.array([[[255]]], np.uint8)).max()) == 1.0
    assert float(as_unit_float(np.array([[[1.0]]], np.float64)).max()) == 1.0


def test_read_images_from_folder_npy_npz(tmp_path, raw):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(raw[:3]):
        Image.fromarray(img).save(folder / f"{i:02d}.png")
    (folder / "notes.txt").write_text("ignored")
    names, batch = read_images(folder)
    assert names == ["00.png", "01.png", "02.png"] and np.array_equal(batch, raw[:3])
    np.save(tmp_path / "a.npy", raw)
    np.savez(tmp_path / "b.npz", x=raw, y=np.arange(6))
    assert np.array_equal(read_images(tmp_path / "a.npy")[1], raw)
    assert np.array_equal(read_images(tmp_path / "b.npz")[1], raw)
    with pytest.raises(ValueError, match="expected a folder of images"):
        read_images(folder / "notes.txt")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_images(tmp_path / "missing.npy")


def test_a_bad_image_in_a_prediction_folder_is_skipped_and_named_or_refused(tmp_path, raw):
    folder = tmp_path / "imgs"
    (folder / "7").mkdir(parents=True)
    Image.fromarray(raw[0]).save(folder / "a.png")
    Image.fromarray(raw[1]).save(folder / "7" / "b.png")
    good = (folder / "a.png").read_bytes()
    (folder / "c.png").write_bytes(good[: len(good) // 2])  # truncated
    (folder / "d.jpg").write_bytes(b"not an image")
    names, batch, skipped = read_model_inputs(folder, 1, 28)
    assert names == ["7/b.png", "a.png"] and batch.shape == (2, 1, 28, 28) and batch.dtype == np.uint8
    assert skipped == ["c.png", "d.jpg"]
    with pytest.raises(ImageError, match="c.png"):
        read_model_inputs(folder, 1, 28, on_bad="error")
    with pytest.raises(ImageError, match="c.png"):
        read_images(folder, 1, 28)  # the library default refuses, as before
    (folder / "a.png").unlink()
    (folder / "7" / "b.png").unlink()
    (folder / "7").rmdir()
    with pytest.raises(ValueError, match="none of its 2 image"):
        read_model_inputs(folder, 1, 28)


def test_the_pyfunc_takes_a_folder_file_paths_a_path_dataframe_or_an_array(tmp_path, servable):
    """The logged model's predict takes what a user has: real MNIST digits written as RGB PNGs of another size
    (a loose one and one in a class sub-folder), given as the folder, as file paths, as a numpy array of path
    strings, as a DataFrame ``path`` column, or as the array: the same probabilities for the same pictures."""
    import pandas as pd

    from torchtransfer.data.datasets import mnist
    from torchtransfer.registry.serving import model_inputs
    from torchtransfer.registry.store import ServablePyfunc

    digits = (mnist().x[:2, 0].numpy() * 255).round().astype(np.uint8)  # (2, 28, 28)
    folder = tmp_path / "mine"
    (folder / "7").mkdir(parents=True)
    files = [folder / "7" / "b.png", folder / "a.png"]  # sorted as the folder reader sorts: "7/b.png" < "a.png"
    for f, d in zip(files, digits[[1, 0]], strict=True):
        Image.fromarray(d).convert("RGB").resize((40, 40)).save(f)
    pyfunc = ServablePyfunc()
    pyfunc.module = servable
    by_folder = pyfunc.predict(None, str(folder))
    assert by_folder["path"].tolist() == [str(f) for f in files]
    for given in ([str(f) for f in files], np.array([str(f) for f in files]), pd.DataFrame({"path": files})):
        out = pyfunc.predict(None, given)
        pd.testing.assert_frame_equal(out, by_folder)
    _, batch = model_inputs(servable, [files[0]])
    assert batch.shape == (1, 1, 28, 28) and batch.dtype == np.uint8
    by_array = pyfunc.predict(None, batch)
    assert "path" not in by_array and np.allclose(by_array["prob_0"], by_folder["prob_0"][:1])
    with pytest.raises(FileNotFoundError, match="absent.png"):
        pyfunc.predict(None, [str(tmp_path / "absent.png")])
    with pytest.raises(TypeError, match="'path' column"):
        pyfunc.predict(None, pd.DataFrame({"file": files}))
