"""The standard on-disk readers on tiny files written here in the real formats."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from torchtransfer import models, transfer_learner
from torchtransfer.data import datasets


def _write_cifar(root, n=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in datasets.CIFAR10_FILES[:-1]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(range(n))}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": [f"c{i}" for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return batch


def test_cifar10_reads_python_batches_through_torchvision(tmp_path):
    last = _write_cifar(tmp_path)
    train = datasets.cifar10(tmp_path, train=True, transform=datasets.cifar_transform(), verify=False)
    test = datasets.cifar10(tmp_path, train=False, transform=datasets.cifar_transform(train=True), verify=False)
    assert len(train) == 30 and len(test) == 6
    x, y = test[2]
    assert x.shape == (3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1 and y == 2
    raw, _ = datasets.cifar10(tmp_path, train=False, verify=False)[0]
    assert np.array_equal(np.asarray(raw).transpose(2, 0, 1).reshape(-1), last["data"][0])


def test_cifar10_offline_error_names_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_batch_1.*test_batch.*cifar-10-batches-py"):
        datasets.cifar10(tmp_path / "nothing", train=True)


def test_svhn_reads_mat_and_maps_label_10_to_0(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, 4), dtype=np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": x, "y": np.array([[10], [1], [2], [10]])})
    data = datasets.svhn(tmp_path, split="test", transform=datasets.cifar_transform(), verify=False)
    assert [data[i][1] for i in range(4)] == [0, 1, 2, 0]
    assert torch.allclose(data[1][0], torch.from_numpy(x[..., 1]).permute(2, 0, 1).float() / 255)
    with pytest.raises(FileNotFoundError, match="train_32x32.mat"):
        datasets.svhn(tmp_path, split="train")


def test_image_folder_of_pngs_trains_and_evaluates(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(4):
            value = 10 * i + (0 if label == "cat" else 200)
            Image.fromarray(np.full((28, 28), value, dtype=np.uint8)).save(tmp_path / label / f"{i}.png")
    data = datasets.image_folder(tmp_path)
    assert data.classes == ["cat", "dog"] and len(data) == 8 and data[0][0].shape == (3, 28, 28)
    learner = transfer_learner(models.build_model("lenet", 2, seed=0), lr=0.05, device="cpu")
    learner.model.trunk[0] = torch.nn.Conv2d(3, 20, 5)  # RGB PNGs into the digits LeNet
    learner.fit(data, epochs=2, batch_size=4)
    assert set(learner.evaluate(data)) == {"acc", "macro_f1"}
    assert datasets.as_domain(data, "pets").x.shape == (8, 3, 28, 28)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        datasets.image_folder(tmp_path / "missing")


def test_fit_on_a_dataset_with_random_transforms_is_seeded(tmp_path):
    _write_cifar(tmp_path)
    data = datasets.cifar10(tmp_path, train=False, transform=datasets.cifar_transform(train=True), verify=False)
    weights = []
    for _ in range(2):
        model = models.build_model("resnet18", 10, seed=0)
        transfer_learner(model, lr=0.01, device="cpu").fit(data, epochs=1, batch_size=3, seed=4)
        weights.append(model.head.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
