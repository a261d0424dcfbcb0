"""What a label means: the task chooses which classes a model tells apart, and every recording's ten-class
name maps to one of them. The manifest's `class_names` is the task's list, so labels index it."""

from __future__ import annotations

from pipeline.data.classes import CLASS_NAMES, FAULT_LOCATIONS, fault_location

TASKS: tuple[str, ...] = ("fault_class", "fault_location")
"""fault_class: the ten CWRU classes; fault_location: normal, ball, inner or outer race, whatever the size."""


def class_names(task: str) -> tuple[str, ...]:
    """The task's classes, in label order."""
    _check(task)
    return CLASS_NAMES if task == "fault_class" else FAULT_LOCATIONS


def class_locations(task: str) -> list[str]:
    """Per class of the task, the fault location it stands for (normal, ball, inner or outer)."""
    return [fault_location(name) if task == "fault_class" else name for name in class_names(task)]


def task_label(task: str, label: str) -> int:
    """The label (index into `class_names(task)`) of a recording of ten-class name `label`."""
    names = class_names(task)
    return names.index(label if task == "fault_class" else fault_location(label))


def _check(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
