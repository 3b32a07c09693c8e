"""The YAML training config: every mistake is one clear error naming the key."""

import pytest
import yaml

from tfgen.training import config as config_lib
from training_fixtures import BASE_CONFIG, make_config


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def test_valid_config_fills_defaults_from_the_file_name(tmp_path):
    data = make_config(tmp_path)
    del data["run_dir"], data["export"]
    config = config_lib.load_config(write_yaml(tmp_path / "moons_affine.yaml", data))
    assert config.run_dir == "runs/moons_affine"
    assert config.export.base_path == "saved_models/moons_affine"
    assert config.checkpoint_dir == "runs/moons_affine/checkpoints"
    assert config.training.batch_size == 64 and config.training.optimizer == "adam"
    assert config.data.to_load_dict() == {"name": "two_moons", "num_samples": 800, "seed": 0}


def test_resolved_yaml_round_trips(tmp_path):
    config = config_lib.parse_config(make_config(tmp_path, training={"schedule": {"name": "cosine"}}))
    again = config_lib.load_config(write_yaml(tmp_path / "c.yaml", config.to_yaml()))
    assert again == config


@pytest.mark.parametrize("section, key, path", [
    ("training", "lerning_rate", "training.lerning_rate"),
    ("checkpoint", "kep", "checkpoint.kep"),
    (None, "modle", "modle"),
])
def test_unknown_key_names_the_full_key_path(tmp_path, section, key, path):
    data = make_config(tmp_path)
    (data[section] if section else data)[key] = 1
    with pytest.raises(ValueError, match=f"unknown key '{path}'"):
        config_lib.parse_config(data)


def test_unknown_nested_key(tmp_path):
    data = make_config(tmp_path, training={"schedule": {"nmae": "cosine"}})
    with pytest.raises(ValueError, match="unknown key 'training.schedule.nmae'"):
        config_lib.parse_config(data)


@pytest.mark.parametrize("section, key, value, expected", [
    ("training", "batch_size", "64", "training.batch_size' must be an integer"),
    ("training", "epochs", True, "training.epochs' must be an integer"),
    ("training", "learning_rate", "fast", "training.learning_rate' must be a number"),
    ("training", "learning_rate", "nan", "training.learning_rate' must be a number"),
    ("training", "jit_compile", "yes", "training.jit_compile' must be true/false"),
    ("training", "schedule", "cosine", "training.schedule' must be a mapping"),
    ("model", "config", [1], "model.config' must be a mapping"),
    ("training", "optimizer", "adamm", "training.optimizer' must be one of"),
    ("strategy", "name", "parameter_server", "strategy.name' must be one of"),
    ("checkpoint", "keep", 1, "checkpoint.keep' must be >= 2"),
    ("training", "steps_per_execution", 0, "training.steps_per_execution' must be >= 1"),
])
def test_wrong_type_or_value_names_key_and_expectation(tmp_path, section, key, value, expected):
    data = make_config(tmp_path)
    data.setdefault(section, {})[key] = value
    with pytest.raises(ValueError, match=expected):
        config_lib.parse_config(data)


def test_integers_are_accepted_as_numbers(tmp_path):
    config = config_lib.parse_config(make_config(tmp_path, training={"learning_rate": 1}))
    assert config.training.learning_rate == 1.0 and isinstance(config.training.learning_rate, float)


def test_an_unquoted_yaml_boolean_for_a_word_says_to_quote_it(tmp_path):
    text = yaml.safe_dump(make_config(tmp_path, faults={"nonfinite": "OFF_PLACEHOLDER"}))
    path = write_yaml(tmp_path / "c.yaml", text.replace("OFF_PLACEHOLDER", "off"))
    with pytest.raises(ValueError, match=r"'faults.nonfinite' must be a string, got bool False \(YAML reads an "
                                         r"unquoted yes, no, on, off, true or false as true/false: quote"):
        config_lib.load_config(path)


def test_exponent_without_a_dot_is_a_number(tmp_path):
    text = yaml.safe_dump(make_config(tmp_path)).replace("learning_rate: 0.05", "learning_rate: 1e-3")
    assert "1e-3" in text
    assert config_lib.load_config(write_yaml(tmp_path / "c.yaml", text)).training.learning_rate == 0.001


def test_unknown_model_class_lists_known_ones(tmp_path):
    data = make_config(tmp_path, model={"class_name": "NoSuchFlow"})
    with pytest.raises(ValueError, match="unknown model class 'NoSuchFlow'.*RealNVP"):
        config_lib.parse_config(data)


def test_required_sections(tmp_path):
    with pytest.raises(ValueError, match="'model.class_name' is required"):
        config_lib.parse_config({"data": BASE_CONFIG["data"]})
    with pytest.raises(ValueError, match="'data.name' is required"):
        config_lib.parse_config({"model": BASE_CONFIG["model"]})


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="training config not found"):
        config_lib.load_config(str(tmp_path / "nope.yaml"))


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_not_a_mapping(tmp_path, text):
    with pytest.raises(ValueError, match="must be a mapping of sections"):
        config_lib.load_config(write_yaml(tmp_path / "c.yaml", text))


def test_invalid_yaml_and_unsafe_tags_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="not valid YAML"):
        config_lib.load_config(write_yaml(tmp_path / "bad.yaml", "model: [unclosed\n"))
    with pytest.raises(ValueError, match="not valid YAML"):
        config_lib.load_config(write_yaml(tmp_path / "evil.yaml", "model: !!python/object/apply:os.system ['true']\n"))


def test_overrides(tmp_path):
    config = config_lib.parse_config(make_config(tmp_path))
    changed = config_lib.override(config, run_dir=str(tmp_path / "other"), epochs=7, export=False)
    assert changed.run_dir == str(tmp_path / "other") and changed.checkpoint_dir == str(tmp_path / "other" / "checkpoints")
    assert changed.training.epochs == 7 and not changed.export.enabled
    assert config.training.epochs == 2  # the original is untouched
    with pytest.raises(ValueError, match="--epochs must be >= 1"):
        config_lib.override(config, epochs=0)


def test_shipped_configs_are_valid():
    import glob
    import os

    root = os.path.join(os.path.dirname(__file__), "..", "..", "tf_configs")
    paths = sorted(glob.glob(os.path.join(root, "*.yaml")) + glob.glob(os.path.join(root, "cluster", "*.yaml")))
    assert paths
    for path in paths:
        config_lib.load_config(path)


def test_unknown_model_config_key_names_it_and_the_valid_ones(tmp_path):
    """A typo in model.config gave Keras' 38-line "Keyword argument not understood"."""
    data = make_config(tmp_path)
    data["model"].setdefault("config", {})["init_log_scael"] = 8
    with pytest.raises(ValueError, match=r"unknown key 'model.config.init_log_scael' for "
                                         r"toy_models:DiagonalAffineFlow; its constructor takes: "
                                         r".*init_log_scale, init_shift_stddev"):
        config_lib.parse_config(data)
    # A registered flow: its own arguments and those its **kwargs pass to its bases.
    data = make_config(tmp_path, model={"class_name": "RealNVP", "config": {"hiden_units": 8}})
    with pytest.raises(ValueError, match=r"unknown key 'model.config.hiden_units' for RealNVP; "
                                         r"its constructor takes: .*hidden_units"):
        config_lib.parse_config(data)
