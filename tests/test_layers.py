"""The package's layers point one way: cli -> api -> features -> core -> data -> base.

A module may import its own package, anything in a lower layer, and, inside the core and
feature layers, the packages ranked below it there (so no two packages import each other).
Imports inside functions count too: a lazy import is still a dependency.
"""

import ast
from pathlib import Path

import crackal

PACKAGE = Path(crackal.__file__).parent

# (layer, rank within the layer): a module may import (layer, rank) pairs lower than its own.
RANKS = {
    "errors": (0, 0), "progress": (0, 1), "options": (0, 1),
    "data": (1, 0), "interop": (1, 1),
    "models": (2, 0), "losses": (2, 1), "metrics": (2, 1), "runs": (2, 1), "uncertainty": (2, 2), "acquisition": (2, 3),
    "training": (2, 4),
    "inference": (3, 0), "change": (3, 1), "scale": (3, 1), "classify": (3, 2), "active": (3, 3), "app": (3, 4),
    "api": (4, 0), "demo": (4, 1),
    "cli": (5, 0), "__main__": (5, 1),
}


def unit_of(module: str) -> str:
    """``crackal.active.loop`` -> ``active``; ``crackal.errors`` -> ``errors``."""
    return module.split(".")[1]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every ``crackal.*`` module a file imports, with the line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crackal.") and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.module == "crackal":
            found += [(node.lineno, f"crackal.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("crackal.")]
    return found


def test_every_package_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()}
    assert units == set(RANKS), "give every new package a place in RANKS"


def test_git_ignores_no_file_of_the_package():
    """A file under crackal/ that git ignores exists here but not in CI's clean checkout."""
    from tests.test_docs import git_ignored

    ignored = git_ignored([p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts])
    assert not ignored, f"git ignores {sorted(map(str, ignored))}: fix .gitignore"


def test_no_module_imports_a_layer_above_it():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if module == "crackal.__init__":
            continue
        own = unit_of(module)
        for line, target in imports_of(path):
            other = unit_of(target)
            if other != own and RANKS[other] >= RANKS[own]:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line} {own} {RANKS[own]} imports {target} {RANKS[other]}")
    assert not violations, "\n".join(violations)


# packages that must not import another one although the ranks would allow it
APART = {"inference": {"training"}}  # predicting, exporting, serving a model: the run's files (runs/), never the training code


def test_inference_never_imports_the_training_code():
    violations = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
                  for unit, forbidden in APART.items() for path in sorted((PACKAGE / unit).rglob("*.py"))
                  for line, target in imports_of(path) if unit_of(target) in forbidden]
    assert not violations, "\n".join(violations)


def test_the_layer_check_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from crackal.api import train\n")
    assert imports_of(bad) == [(2, "crackal.api")]
    assert RANKS[unit_of("crackal.api")] > RANKS[unit_of("crackal.data.io")]


def test_every_option_table_has_exactly_the_names_the_configs_check():
    from crackal import options
    from crackal.acquisition.heuristics import HEURISTICS
    from crackal.acquisition.reduce import REDUCTIONS
    from crackal.losses import LOSS_TERMS
    from crackal.models.factory import _SMP_CLASSES

    assert tuple(HEURISTICS) + ("random",) == options.STRATEGIES
    assert tuple(REDUCTIONS) == options.REDUCTION_NAMES
    assert tuple(LOSS_TERMS) == options.LOSS_TERM_NAMES and set(options.FLOW_TERMS) <= set(LOSS_TERMS)
    assert set(_SMP_CLASSES) | {"unet", "siamese_unet"} == set(options.ARCHS)


def test_configs_and_projects_open_without_torch():
    import subprocess
    import sys

    code = ("import sys; import crackal.active.store, crackal.active.config, crackal.runs.config, crackal.cli, crackal.api; "
            "crackal.api.al_status, crackal.api.al_config; "  # what 'crackal al status / config' load
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('crackal'))")
    subprocess.run([sys.executable, "-c", code], check=True)
