"""Imports point one way: pipelines → models → metrics / preprocessing (→ nothing of ours).

Checked on the source text, so a violation anywhere in a module (a function-level import
too) is found without importing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "omicsgen"

#: package → omicsgen packages it must never import
FORBIDDEN = {
    "metrics": ("models", "pipelines", "datasets"),
    "preprocessing": ("models", "pipelines", "datasets", "metrics"),
    "plots": ("models", "pipelines"),
    "models": ("pipelines",),
    "datasets": ("models", "pipelines"),
    "clustering.py": ("models", "pipelines"),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(package):
    violations = [
        f"{path.relative_to(PACKAGE)}:{line} imports {module}"
        for path in ([PACKAGE / package] if package.endswith(".py") else sorted((PACKAGE / package).rglob("*.py")))
        for line, module in _imports(path)
        if any(module == f"omicsgen.{above}" or module.startswith(f"omicsgen.{above}.") for above in FORBIDDEN[package])
    ]
    assert not violations, "\n".join(violations)


def test_pipeline_modules_do_not_import_torch_at_the_top():
    """kedro's CLI and kedro-viz load every pipeline module: torch stays inside functions."""
    violations = []
    for path in sorted((PACKAGE / "pipelines").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            names = (
                [node.module or ""] if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            )  # fmt: skip
            if any(n == "torch" or n.startswith("torch.") or n.startswith("omicsgen.models") for n in names):
                violations.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not violations, violations
