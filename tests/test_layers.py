"""Layers only point down: no module imports one from a higher layer (see tests/layers.py)."""

from __future__ import annotations

from pathlib import Path

from tests.layers import LAYERS, upward_imports

SRC = Path(__file__).resolve().parents[1] / "src"


def test_no_module_imports_a_higher_layer() -> None:
    violations = upward_imports(SRC)
    assert not violations, "upward imports:\n" + "\n".join(str(v) for v in violations)


def test_every_module_has_a_layer() -> None:
    from tests.layers import layer_of, module_name

    for path in (SRC / "scaledl").rglob("*.py"):
        layer_of(module_name(path, SRC), LAYERS)  # raises for a module in no layer


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """A fixture tree where the package layer reaches up into the server, late and relative."""
    pkg = tmp_path / "scaledl"
    (pkg / "serve").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "serve" / "__init__.py").write_text("")
    (pkg / "serve" / "app.py").write_text("from scaledl.package import open_package\n")
    (pkg / "package.py").write_text(
        "def open_package():\n    from .serve.app import ModelServer\n    return ModelServer\n"
    )
    violations = upward_imports(tmp_path)
    assert [(v.module, v.imported, v.to_layer) for v in violations] == [
        ("scaledl.package", "scaledl.serve.app.ModelServer", "serve")
    ]
