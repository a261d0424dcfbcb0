"""The study's settings are checked when composed: a set scored on another rig needs that rig's manifest."""

import pytest

from pipeline.common.config_section import ConfigError
from tests.study.tiny_study import study_config


@pytest.mark.parametrize("training_set", ["other_rig", "sim_to_other_rig"])
def test_a_set_scored_on_another_rig_needs_its_manifest(training_set, tmp_path):
    scored_on_another_rig = (f"study.training_sets=[{training_set}]", "study.snr_db=[]")
    with pytest.raises(ConfigError, match="study.other_rig_manifest"):
        study_config(*scored_on_another_rig)
    with pytest.raises(ConfigError, match="must be an existing data=files manifest"):
        study_config(*scored_on_another_rig, f"study.other_rig_manifest={tmp_path / 'no.csv'}")
    manifest = tmp_path / "other-rig.csv"
    manifest.write_text("path,label,rpm,sample_rate\n")
    config = study_config(*scored_on_another_rig, f"study.other_rig_manifest={manifest}")
    assert config.study.other_rig_manifest == str(manifest)
