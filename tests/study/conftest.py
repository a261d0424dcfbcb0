"""Fixtures of the study tests (the config helper lives in tests/study/tiny_study.py)."""

import pytest

from tests.study.tiny_study import study_config


@pytest.fixture
def tiny_study_config(tmp_path):
    """study_config(*overrides) with its datasets under tmp_path."""
    return lambda *overrides: study_config(f"data.cache_dir={tmp_path / 'data'}", *overrides)
