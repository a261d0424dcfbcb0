"""The shape of the code: imports run down the layers, entry points are leaves, and every default has one home.

Read from the source (no module is imported), so a violation names the file and line that makes it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pipeline.config import register_configs
from pipeline.study.config import StudyExperimentConfig

REPO = Path(__file__).resolve().parents[1]
ENTRY_MODULES = {f"pipeline.{name}" for name in ("prepare", "train", "evaluate", "register", "workflow", "predict")}
ENTRY_MODULES.add("pipeline.study.__main__")
# The sweeper plugin is imported by Hydra's plugin scan at every start: it imports the sweep (torch, MLflow)
# only when a sweep runs.
LIGHT_PLUGIN = Path("hydra_plugins/av_pino_sweeper/av_pino_sweeper.py")

# The layers of pipeline/, lowest first (docs/how-it-works.md draws them): a module may import its own package and
# the layers below it, never one above. A unit is a package of pipeline/ or one of its top-level modules.
LAYERS = (
    "pipeline.common",  # what every layer shares: config-section checks, atomic files, the digest
    "pipeline.data",  # kinematics, simulator, readers, splits, prepared datasets
    "pipeline.dsp",  # the one signal-processing module: envelope, band choice, orders, fault combs
    "pipeline.models",  # what a model returns, its sizes, the baselines WDCNN and the envelope rule
    "pipeline.physics",  # AGT-NO, its blocks, and the equations its residuals state
    "pipeline.training",  # the engine, losses, monitoring, checkpoints, devices, ranks, the model factory
    "pipeline.readout",  # what is read off a trained model: temperature, ood score, metrics, figures
    "pipeline.tracking",  # MLflow: stage contract, runs, datasets, model logging, registry, resume
    "pipeline.config",  # the experiment's config, composed of every layer's section
    "pipeline.stages",  # prepare, train, evaluate, register, predict, the workflow
    "pipeline.sweep",  # Optuna sweeps over training jobs
    "pipeline.study",  # the ablation study
    "entry",  # the entry shells and the sweeper plugin, imported by nothing
)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported module, at module level) for every import of a project module in `path`; `from a import b`
    counts as importing `a.b` when `b` is a module."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] in ("pipeline", "hydra_plugins") and module_path(name):
                found.append((node.lineno, name, id(node) in top))
    return found


def module_path(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules its module-level imports load (with their packages' __init__)."""
    graph = {}
    for path in python_files("pipeline"):
        targets = set()
        for _, name, at_top in imports(path):
            if at_top:
                parts = name.split(".")
                targets |= {".".join(parts[:i]) for i in range(2, len(parts) + 1) if module_path(".".join(parts[:i]))}
        graph[module_name(path)] = targets - {module_name(path)}
    return graph


def test_no_module_imports_an_entry_module():
    offenders = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in python_files("pipeline", "hydra_plugins", "tests", "bench")
        for line, name, _ in imports(path)
        if name in ENTRY_MODULES
    ]
    assert offenders == []


def layer(module: str) -> int:
    """The index in LAYERS of the unit `module` belongs to."""
    if module in ENTRY_MODULES or module.startswith("hydra_plugins"):
        return len(LAYERS) - 1
    unit = ".".join(module.split(".")[:2])
    assert unit in LAYERS, f"{module}: its unit {unit} is in no layer of LAYERS"
    return LAYERS.index(unit)


def test_imports_run_down_the_layers():
    """No import, at module level or in a function, reaches a layer above its own module's."""
    back_arrows = [
        f"{path.relative_to(REPO)}:{line} imports {name} ({LAYERS[layer(name)]} is above {LAYERS[layer(module)]})"
        for path in python_files("pipeline", "hydra_plugins")
        for module in [module_name(path)]
        for line, name, _ in imports(path)
        if layer(name) > layer(module)
    ]
    assert back_arrows == []


def test_the_top_level_holds_only_entry_shells_the_config_and_packages():
    modules = {path.stem for path in (REPO / "pipeline").glob("*.py")} - {"__init__"}
    shells = ENTRY_MODULES - {"pipeline.study.__main__"}
    assert {f"pipeline.{name}" for name in modules} == shells | {"pipeline.config"}


def test_imports_form_no_cycle():
    graph, state, cycles = import_graph(), {}, []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [module, target]))
            elif target not in state:
                visit(target, stack + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert cycles == []


def test_no_import_is_hidden_in_a_function():
    hidden = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in python_files("pipeline", "hydra_plugins")
        if path.relative_to(REPO) != LIGHT_PLUGIN
        for line, name, at_top in imports(path)
        if not at_top
    ]
    assert hidden == []


def test_config_registration_happens_where_hydra_starts():
    """Importing a module registers nothing with Hydra: only `run_hydra` (an entry point starting) does."""
    calls = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in python_files("pipeline")
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.Expr) and "register_configs()" in ast.unparse(node)
    ]
    assert calls == []


SECTIONS = ("data", "model", "loss", "training", "study")


@pytest.mark.parametrize(
    "option",
    sorted(p for section in SECTIONS for p in (REPO / "conf" / section).glob("*.yaml")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_a_group_option_records_only_its_choices(option):
    """A value in a group option that equals the schema's default would be a second home for that default."""
    text = option.read_text()
    values = yaml.safe_load(text) or {}
    if "@package _global_" in text:  # study=tiny sets several sections
        pairs = [
            (f"{section}.{key}", value, getattr(getattr(StudyExperimentConfig(), section), key))
            for section, keys in values.items()
            for key, value in keys.items()
        ]
    else:
        section = getattr(StudyExperimentConfig(), option.parent.name)
        pairs = [(key, value, getattr(section, key)) for key, value in values.items()]
    repeated = [key for key, value, default in pairs if value == default]
    assert repeated == [], f"{option.name} repeats the defaults of {repeated}"


def test_mlproject_parameters_default_to_the_config():
    """Every MLproject parameter forwarded to a config key defaults to what the config composes to when the
    entry's group choices take their defaults: running an entry without -P changes nothing."""
    project = yaml.safe_load((REPO / "MLproject").read_text())
    checked = 0
    register_configs(StudyExperimentConfig)  # the pipeline's schema and the study's section: every entry composes
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        for name, entry in project["entry_points"].items():
            command, parameters = entry["command"], entry["parameters"]
            forwarded = re.findall(r"([\w.]+)=\{(\w+)\}", command)
            choices = [f"{key}={parameters[param]['default']}" for key, param in forwarded if "." not in key]
            config_name = "study" if "pipeline.study" in command else "config"
            composed = compose(config_name, overrides=choices, return_hydra_config=True)
            for key, param in forwarded:
                if "." in key:
                    value = OmegaConf.select(composed, key)
                    assert str(parameters[param]["default"]).lower() == str(value).lower().replace("none", "null"), (
                        name,
                        param,
                        parameters[param]["default"],
                        key,
                        value,
                    )
                    checked += 1
    register_configs()
    assert checked >= 10
