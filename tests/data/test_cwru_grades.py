"""Every CWRU recording of the ten classes has a grade: does envelope analysis find its labelled fault (Y), partly
(P) or not (N)? The normal baselines count as Y."""

import pytest

from pipeline.data.cwru import FILE_TABLE
from pipeline.data.cwru_grades import GRADE_OF_FILE, recording_grade


def test_every_ten_class_file_has_one_grade():
    assert set(GRADE_OF_FILE) == set(FILE_TABLE)
    assert set(GRADE_OF_FILE.values()) == {"Y", "P", "N"}


@pytest.mark.parametrize(
    ("label", "load_hp", "grade"),
    [
        ("normal", 0, "Y"),  # 97
        ("inner_007", 2, "Y"),  # 107
        ("ball_007", 2, "N"),  # 120
        ("ball_007", 3, "Y"),  # 121
        ("ball_014", 0, "P"),  # 185
        ("outer_014", 0, "Y"),  # 197
        ("outer_014", 2, "P"),  # 199
        ("outer_014", 3, "N"),  # 200
        ("ball_021", 1, "Y"),  # 223
        ("ball_021", 2, "N"),  # 224
        ("outer_021", 3, "Y"),  # 237
    ],
)
def test_a_recordings_grade_is_its_files(label, load_hp, grade):
    assert recording_grade(label, load_hp) == grade


def test_the_ball_faults_are_the_hardest():
    ball = [GRADE_OF_FILE[n] for n, (label, _) in FILE_TABLE.items() if label.startswith("ball")]
    assert ball.count("Y") == 3 and ball.count("N") == 5 and ball.count("P") == 4
