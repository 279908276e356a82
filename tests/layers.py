"""The layer order of scaledl's modules, and a checker that finds imports pointing upward.

Every `import scaledl.…` (at module level or inside a function: a late import is still a
dependency) must point at a module in the same layer or a lower one. docs/architecture.md shows
the same table as a picture; keep the two in step.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

# Bottom to top. A module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "base",
        (
            "scaledl",
            "scaledl.errors",
            "scaledl.fsio",
            "scaledl.ui",
            "scaledl.validation",
            "scaledl.client",
        ),
    ),
    ("contract", ("scaledl.contract",)),
    ("data", ("scaledl.data", "scaledl.metrics")),
    (
        "modalities",
        (
            "scaledl.modalities",
            "scaledl.preprocess",
            "scaledl.package",
            "scaledl.package_manifest",
            "scaledl.package_zip",
            "scaledl.package_files",
            "scaledl.repository",
        ),
    ),
    ("models", ("scaledl.models",)),
    ("engines", ("scaledl.export", "scaledl.train")),
    (
        "measure",
        ("scaledl.evaluate", "scaledl.verify", "scaledl.bench", "scaledl.report", "scaledl.recipe"),
    ),
    ("monitor", ("scaledl.monitor",)),
    ("optimize", ("scaledl.optimize", "scaledl.publish")),
    ("serve", ("scaledl.serve",)),
    (
        "server-extensions",
        ("scaledl.monitor.extension", "scaledl.monitor.routes", "scaledl.monitor.dashboard"),
    ),
    ("maintain", ("scaledl.maintain",)),
    ("pipeline", ("scaledl.pipeline",)),
    ("cli", ("scaledl.cli", "scaledl.__main__")),
]


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    from_layer: str
    to_layer: str

    def __str__(self) -> str:
        return (
            f"{self.module}:{self.line} imports {self.imported} "
            f"({self.from_layer} → {self.to_layer}, an upward import)"
        )


def layer_of(module: str, layers: list[tuple[str, tuple[str, ...]]]) -> tuple[int, str]:
    best: tuple[int, int, str] = (-1, -1, "?")  # (prefix length, index, name)
    for index, (name, prefixes) in enumerate(layers):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best[0]:
                best = (len(prefix), index, name)
    if best[1] < 0:
        raise ValueError(f"module {module} is in no layer; add it to LAYERS")
    return best[1], best[2]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, module) of every scaledl import, absolute or relative, anywhere in the file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("scaledl")]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = module.split(".")[: -node.level] if node.level else []
                target = ".".join([*base, target] if target else base)
            if not target.startswith("scaledl"):
                continue
            # `from scaledl.x import y` may name a submodule y: judge the deepest real module.
            found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
    return found


def upward_imports(
    src: Path, layers: list[tuple[str, tuple[str, ...]]] = LAYERS
) -> list[Violation]:
    """Every import in the package under `src` (e.g. src/) that points to a higher layer."""
    violations: list[Violation] = []
    for path in sorted(src.rglob("*.py")):
        module = module_name(path, src)
        if not module.startswith("scaledl"):
            continue
        own, own_name = layer_of(module, layers)
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, imported in imported_modules(tree, module):
            level, name = layer_of(imported, layers)
            if level > own:
                violations.append(Violation(module, line, imported, own_name, name))
    return violations
