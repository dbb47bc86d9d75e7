"""Folders and manifests as domains: layout, content-addressed inventory and cache, splits, config merging."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from tests.conftest import CONF
from tests.imagefolders import digit_folders
from torchtransfer.config import ConfigError, load_config
from torchtransfer.data.checks import scan_data
from torchtransfer.data.folders import cached_file, list_folder, scan
from torchtransfer.data.manifest import read_manifest
from torchtransfer.data.splits import build_pair

FRACTIONS = ["data.source.train=0.6", "data.source.val=0.2", "data.source.test=0.2", "data.target.train=1.0",
             "data.target.val=0.25", "data.target.test=0.75"]


def _cfg(source, target, *sets):
    return load_config(CONF / "default.yaml", overrides=[f"data.source.folder={source}",
                                                         f"data.target.folder={target}", *FRACTIONS, *sets])


def test_class_sub_folders_are_labelled_and_loose_images_are_not(tmp_path):
    _, target = digit_folders(tmp_path, per_class=3)
    (target / ".cache").mkdir()  # hidden folders and non-image files are not data
    (target / "notes.txt").write_text("x")
    found = list_folder(target)
    assert sum(label is None for _, label in found) == 30 and sum(label is not None for _, label in found) == 20
    inventory = scan(target, "folder", tmp_path / "cache", 1, 28)
    assert inventory.classes == tuple(str(i) for i in range(10))
    assert (inventory.n_labelled, inventory.n_unlabelled) == (20, 30)


def test_target_val_and_test_come_from_labelled_images_and_train_from_the_rest(tmp_path):
    source, target = digit_folders(tmp_path, per_class=6)  # target: 60 loose + 20 labelled
    pair = build_pair(_cfg(source, target).data, seed=0, cache_dir=tmp_path / "cache")
    assert pair.sizes() == {"source_train": 36, "source_val": 12, "source_test": 12, "target_train": 60,
                            "target_val": 5, "target_test": 15}  # val, test: shares of the 20 labelled images
    assert bool((pair.target_val.y >= 0).all()) and bool((pair.target_test.y >= 0).all())
    assert bool((pair.target_train.y == -1).all())  # train_labelled 0: no target label reaches training
    assert pair.target_train.x.shape[1:] == (1, 28, 28)  # RGB 32×32 JPEGs brought to lenet's input
    assert pair.classes == tuple(str(i) for i in range(10))


def test_the_fingerprint_follows_content_not_names(tmp_path):
    source, target = digit_folders(tmp_path, per_class=4)
    cache = tmp_path / "cache"
    first = build_pair(_cfg(source, target).data, 0, cache)
    renamed = tmp_path / "elsewhere"
    shutil.move(source, renamed)
    files = sorted(renamed.rglob("*.png"))
    for i, f in enumerate(files):  # rename every file too, reversing their order by name
        f.rename(f.with_name(f"img{len(files) - i:03d}.png"))
    cached = sorted((cache / "images").rglob("*.npy"))
    again = build_pair(_cfg(renamed, target).data, 0, cache)
    assert again.fingerprint == first.fingerprint
    assert sorted((cache / "images").rglob("*.npy")) == cached  # same content: nothing decoded anew
    shutil.copy(next(renamed.glob("3/*.png")), renamed / "3" / "extra.png")
    assert build_pair(_cfg(renamed, target).data, 0, cache).fingerprint != first.fingerprint  # an image added
    (renamed / "3" / "extra.png").unlink()
    shutil.move(next(renamed.glob("3/*.png")), renamed / "4" / "moved.png")  # relabelled
    assert build_pair(_cfg(renamed, target).data, 0, cache).fingerprint != first.fingerprint


def test_domains_are_read_from_the_content_cache(tmp_path):
    source, target = digit_folders(tmp_path, per_class=2)
    cache = tmp_path / "cache"
    data = _cfg(source, target).data
    scanned = scan_data(data, 1, 28, cache)
    entry = scanned.source.entries[0]
    np.save(cached_file(cache, entry.sha256, 1, 28), np.zeros((1, 28, 28), np.uint8))  # tamper with the cache
    pair = build_pair(data, 0, cache, scan=scanned)
    seen = torch.cat([pair.source_train.x, pair.source_val.x, pair.source_test.x])
    assert int((seen.flatten(1).amax(1) == 0).sum()) == 1  # that image's pixels came from the cache


def test_a_manifest_lists_paths_relative_to_itself_and_empty_labels_are_unlabelled(tmp_path):
    source, target = digit_folders(tmp_path, per_class=2)
    files = sorted(target.rglob("*.*"))
    rows = [f"{f.relative_to(tmp_path).as_posix()},{f.parent.name if f.parent != target else ''}" for f in files]
    manifest = tmp_path / "target.csv"
    manifest.write_text("path,label\n" + "\n".join(rows) + "\n")
    assert [label for _, label in read_manifest(manifest)].count(None) == 20
    cfg = load_config(CONF / "default.yaml", overrides=[f"data.source.folder={source}",
                                                        f"data.target.manifest={manifest}", *FRACTIONS])
    from_manifest = build_pair(cfg.data, 0, tmp_path / "cache")
    from_folder = build_pair(_cfg(source, target).data, 0, tmp_path / "cache")
    assert from_manifest.fingerprint == from_folder.fingerprint  # same files, same labels: same data


def test_a_file_that_sets_folder_drops_the_inherited_name(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("data:\n  source: {folder: /data/src, train: 0.8, val: 0.1, test: 0.1}\n"
                    "  target: {folder: /data/tgt}\n")
    cfg = load_config(CONF / "default.yaml", mine)
    assert (cfg.data.source.name, cfg.data.source.folder, cfg.data.source.train) == (None, "/data/src", 0.8)
    assert (cfg.data.target.name, cfg.data.target.test) == (None, 1800)  # sizes still inherited
    assert cfg.model.num_classes is None  # derived from the data's classes
    back = load_config(CONF / "default.yaml", mine, overrides=["data.target.name=usps"])
    assert (back.data.target.name, back.data.target.folder) == ("usps", None)
    with pytest.raises(ConfigError, match=r"data.target: .*set exactly one of name, folder, manifest"):
        load_config(CONF / "default.yaml", mine, overrides=["data.target={name: usps, folder: /x, train: 1, "
                                                            "val: 0, test: 1}"])
    with pytest.raises(ConfigError, match=r"data.source.train: .*neither a count .* nor a fraction"):
        load_config(CONF / "default.yaml", mine, overrides=["data.source.train=1.5"])


def test_num_classes_is_derived_or_must_agree(tmp_path):
    source, target = digit_folders(tmp_path, per_class=2)
    cfg = _cfg(source, target)
    scanned = scan_data(cfg.data, 1, 28, tmp_path / "cache")
    assert cfg.with_classes(scanned.classes).model.num_classes == 10
    with pytest.raises(ValueError, match=r"model.num_classes = 7, but the source .*mnist has 10 classes"):
        scan_data(cfg.data, 1, 28, tmp_path / "cache", num_classes=7)


def test_unreadable_images_are_skipped_and_counted_or_refused(tmp_path):
    _, target = digit_folders(tmp_path, per_class=2)
    cut = next(target.glob("*.jpg"))
    cut.write_bytes(cut.read_bytes()[:200])  # truncated
    (target / "3" / "notes.png").write_text("not an image")
    inventory = scan(target, "folder", tmp_path / "cache", 1, 28)
    assert sorted(inventory.skipped) == sorted([str(cut), str(target / "3" / "notes.png")])
    assert len(inventory.entries) == 20 + 20 - 1
    with pytest.raises(ValueError, match=r"not a readable image .*data.on_bad_image: skip would skip it"):
        scan(target, "folder", tmp_path / "cache", 1, 28, on_bad="error")


def test_a_target_without_labelled_images_cannot_be_tested(tmp_path):
    source, target = digit_folders(tmp_path, per_class=2)
    for sub in [d for d in target.iterdir() if d.is_dir()]:
        shutil.rmtree(sub)
    cfg = _cfg(source, target, "data.target.val=0", "data.target.test=1", "tuning.objective=im")
    with pytest.raises(ValueError, match=r"data.target.val \+ data.target.test = 0 \+ 1 labelled images, but .*"
                                         r"digits holds 0 labelled"):
        scan_data(cfg.data, 1, 28, tmp_path / "cache")
    fraction = _cfg(source, target, "data.target.val=0", "data.target.test=1.0", "tuning.objective=im")
    with pytest.raises(ValueError, match=r"data.target.test = 1.0 is 0 images of .*digits, which holds 0 labelled "
                                         r"and 20 unlabelled \(val and test are drawn from its labelled images"):
        scan_data(fraction.data, 1, 28, tmp_path / "cache")


def test_a_manifest_path_may_not_leave_its_folder(tmp_path):
    source, _ = digit_folders(tmp_path, per_class=1)
    inner = tmp_path / "meta"
    inner.mkdir()
    (inner / "link.png").symlink_to(next(source.glob("3/*.png")))
    for row in ("../mnist/3/3_0.png", "link.png"):
        (inner / "m.csv").write_text(f"path,label\n{row},3\n")
        with pytest.raises(ValueError, match=r"m.csv: 1 path\(s\) leave the manifest's folder"):
            read_manifest(inner / "m.csv")
