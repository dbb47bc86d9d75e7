from pathlib import Path

import pytest

from tests.conftest import CONF
from torchtransfer.config import ConfigError, deep_merge, load_config


@pytest.mark.parametrize("path", sorted(p for p in CONF.glob("**/*.yaml") if p.name != "deployments.yaml"),
                         ids=lambda p: p.name)
def test_every_conf_file_validates_on_top_of_default(path):
    cfg = load_config(CONF / "default.yaml", path)
    assert cfg.experiment


def test_default_is_mnist_to_usps_adda_protocol():
    cfg = load_config(CONF / "default.yaml")
    assert (cfg.data.source.name, cfg.data.source.train) == ("mnist", 2000)
    assert (cfg.data.target.name, cfg.data.target.train, cfg.data.target.train_labelled) == ("usps", 1800, 0.0)
    assert cfg.tracking.uri == "sqlite:///mlflow.db" and cfg.tuning.storage.startswith("sqlite:///")


def test_files_merge_left_to_right_and_overrides_win():
    cfg = load_config(CONF / "default.yaml", CONF / "smoke.yaml", overrides=["tuning.n_trials=5", "seed=7"])
    assert cfg.experiment == "smoke"  # from smoke.yaml
    assert cfg.data.source.name == "mnist"  # kept from default.yaml, not replaced by the nested mapping
    assert cfg.data.source.train == 200
    assert (cfg.tuning.n_trials, cfg.seed) == (5, 7)


def test_shift_test_is_median_by_default_and_aggregated_on_request():
    assert load_config(CONF / "default.yaml").shift.test == "median"
    assert load_config(CONF / "default.yaml", overrides=["shift.test=aggregated"]).shift.test == "aggregated"


def test_deep_merge_replaces_non_mappings():
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 3}, "d": [2]}) == {"a": {"b": 3, "c": 2},
                                                                                     "d": [2]}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_the_file_and_dotted_path(tmp_path):
    bad = _write(tmp_path, "train:\n  batchsize: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(CONF / "default.yaml", bad)
    assert str(bad) in str(err.value) and "train.batchsize" in str(err.value)
    assert "Extra inputs are not permitted" in str(err.value)


@pytest.mark.parametrize(("override", "field"), [
    ("train.batch_size=0", "train.batch_size"),
    ("tuning.n_trials=many", "tuning.n_trials"),
    ("data.target.train_labelled=1.5", "data.target.train_labelled"),
    ("search.lr.low=-1", "search.lr"),
    ("data.target.name=mnist", "data"),
    ("shift.test=mean", "shift.test"),
])
def test_bad_values_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(CONF / "default.yaml", overrides=[override])


@pytest.mark.parametrize(("text", "message"), [
    ("", "file is empty"),
    ("train: [unclosed\n", "invalid YAML"),
    ("- a list\n", "expected a mapping"),
])
def test_broken_files_are_named(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_missing_file_and_malformed_override():
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config("nope.yaml")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(CONF / "default.yaml", overrides=["train.lr"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(CONF / "default.yaml", overrides=["train..lr=1"])


def test_hash_tracks_content():
    a = load_config(CONF / "default.yaml")
    b = load_config(CONF / "default.yaml", overrides=["seed=1"])
    assert a.sha256() == load_config(CONF / "default.yaml").sha256() != b.sha256()
    assert a.flat()["data.source.name"] == "mnist"


def test_auto_objective_is_the_oracle_with_target_labels_and_im_without():
    from torchtransfer.config import load_experiment

    assert load_experiment().tuning.objective == "target_val_acc"
    assert load_experiment(overrides=["data.target.val=0"]).tuning.objective == "im"
    assert load_experiment(overrides=["data.target.val=0", "tuning.objective=bnm"]).tuning.objective == "bnm"
    with pytest.raises(ConfigError, match="registry.gate"):
        load_experiment(overrides=["data.target.test=0"])
    assert load_experiment(overrides=["data.target.test=0", "registry.gate=manual"]).registry.gate == "manual"


def test_shipped_experiments_pretrained_and_folders_resolve_as_their_comments_say():
    from torchtransfer.train.recipe import pretrain_strategy

    exp = CONF / "experiments"
    cfg = load_config(CONF / "default.yaml", exp / "pretrained_digits.yaml")
    assert (cfg.model.backbone, cfg.model.pretrained, cfg.model.input_shape) == ("efficientnet_lite0", True, (3, 32))
    assert pretrain_strategy(cfg.model, cfg.pretrain) == "feature_extraction" and not cfg.pretrain.augment
    assert (cfg.data.source.name, cfg.data.target.name) == ("mnist", "usps")  # no data keys: it stacks
    folders = load_config(CONF / "default.yaml", exp / "folders.yaml")
    assert (folders.data.source.folder, folders.data.target.folder) == ("data/source", "data/target")
    assert folders.data.source.name is None and folders.registry.model_name == "torchtransfer-my-folders"
    both = load_config(CONF / "default.yaml", exp / "pretrained_digits.yaml", exp / "folders.yaml")
    assert (both.model.backbone, both.data.source.folder, both.experiment) == ("efficientnet_lite0", "data/source",
                                                                            "my-folders")


def test_data_resize_defaults_to_stretch_and_names_the_key_when_wrong():
    assert load_config(CONF / "default.yaml").data.resize == "stretch"
    assert load_config(CONF / "default.yaml", overrides=["data.resize=center_crop"]).data.resize == "center_crop"
    with pytest.raises(ConfigError, match="data.resize"):
        load_config(CONF / "default.yaml", overrides=["data.resize=fill"])
