"""Whether each CWRU recording of the ten classes carries its labelled fault's signature at all: Y where
established envelope analysis finds the fault clearly, P where it finds it partly, N where it does not
(docs/study.md names the benchmark study that graded them). A model that misses a Y recording has a real
defect; one that misses an N recording may be right about the physics, so held-out sizes are reported per grade.
"""

from __future__ import annotations

from pipeline.data.cwru import FILE_TABLE

GRADES: tuple[str, ...] = ("Y", "P", "N")

_GRADED_RANGES = (  # (first file number, last file number, grade)
    (97, 100, "Y"),  # the normal baselines: no fault to find, and none found
    (105, 108, "Y"),
    (118, 120, "N"),
    (121, 121, "Y"),
    (130, 133, "Y"),
    (169, 172, "Y"),
    (185, 188, "P"),
    (197, 197, "Y"),
    (198, 199, "P"),
    (200, 200, "N"),
    (209, 212, "Y"),
    (222, 223, "Y"),
    (224, 225, "N"),
    (234, 237, "Y"),
)
GRADE_OF_FILE: dict[int, str] = {
    number: grade for first, last, grade in _GRADED_RANGES for number in range(first, last + 1)
}
_FILE_OF_RECORDING = {recording: number for number, recording in FILE_TABLE.items()}


def recording_grade(label: str, load_hp: int) -> str:
    """The grade of the CWRU recording of ten-class `label` at `load_hp` (one recording each, so one file)."""
    return GRADE_OF_FILE[_FILE_OF_RECORDING[(label, load_hp)]]
