"""The one config file across packages: fastpack carries the trainer's sections through untouched,
`RunConfig` types them and rejects unknown ones."""
import json

import pytest

from fastpack.config import Config
from fastpack.config import load_config as load_packer_config
from fastpack.config import save_config
from fastpack.errors import UserError
from trainer.config import ModelConfig, RunConfig, load_config


def test_fastpack_keeps_the_trainer_sections_it_does_not_know(tmp_path):
    path = tmp_path / "config" / "training_config.json"
    save_config(RunConfig().replace("model", preset="tiny").replace("training", lr=1e-3, min_lr=1e-4), path)
    packer_view = load_packer_config(path, ["packing.seq_len=256", "model.dropout=0.5"])
    assert not hasattr(packer_view, "model") and packer_view.others["model"]["preset"] == "tiny"
    save_config(packer_view.replace("paths", output_dir="elsewhere"), path)  # as the corpus CLI and bundle do
    trainer_view = load_config(path)
    assert isinstance(trainer_view.model, ModelConfig)
    assert (trainer_view.model.preset, trainer_view.model.dropout, trainer_view.training.lr) == ("tiny", 0.5, 1e-3)
    assert (trainer_view.packing.seq_len, trainer_view.paths.output_dir) == (256, "elsewhere")
    assert load_config(path).to_dict() == json.loads(path.read_text())


def test_the_trainer_checks_its_sections_and_rejects_unknown_ones(tmp_path):
    path = tmp_path / "training_config.json"
    path.write_text(json.dumps({"trainig": {"lr": 1.0}}))
    assert load_packer_config(path).others == {"trainig": {"lr": 1.0}}  # not fastpack's to judge
    with pytest.raises(UserError, match="unknown key trainig"):
        load_config(path)
    path.write_text(json.dumps({"model": {"dropout": 2.0}}))
    with pytest.raises(UserError, match=r"model.dropout must be in \[0, 1\)"):
        load_config(path)
    with pytest.raises(UserError, match="model must be an object"):
        Config.from_dict({"model": 3})
    with pytest.raises(UserError, match="--set training.lrr: unknown key"):
        load_config(None, ["training.lrr=1"])
    assert RunConfig().packing.seq_len is None and RunConfig().model.context_len is None  # both: the data's
