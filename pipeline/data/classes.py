"""The ten CWRU fault classes, in the one order used everywhere (manifest, model, registry, predictions)."""

CLASS_NAMES: tuple[str, ...] = (
    "normal",
    "ball_007",
    "ball_014",
    "ball_021",
    "inner_007",
    "inner_014",
    "inner_021",
    "outer_007",
    "outer_014",
    "outer_021",
)

FAULT_LOCATIONS: tuple[str, ...] = ("normal", "ball", "inner", "outer")
FAULT_SIZES_IN: tuple[float, ...] = (0.007, 0.014, 0.021)  # the seeded fault diameters (in) of the classes


def class_index(label: str) -> int:
    """Position of `label` in CLASS_NAMES, with an error that lists the valid names."""
    try:
        return CLASS_NAMES.index(label)
    except ValueError:
        raise ValueError(f"unknown class {label!r}; expected one of {', '.join(CLASS_NAMES)}") from None


def fault_location(label: str) -> str:
    """'normal', 'ball', 'inner' or 'outer' for a class name."""
    class_index(label)
    return label.split("_")[0]


def fault_size_in(label: str) -> float:
    """Fault diameter in inches (0.0 for normal)."""
    class_index(label)
    return 0.0 if label == "normal" else int(label.split("_")[1]) / 1000.0
