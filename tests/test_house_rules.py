"""Project-wide rules: a light `import scaledl`, --help on every verb, no unexplained flags."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_import_scaledl_is_light() -> None:
    code = (
        "import sys, scaledl, scaledl.errors, scaledl.package, scaledl.preprocess;"
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'matplotlib', 'sklearn')"
        " if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _commands() -> list[list[str]]:
    import typer.main

    from scaledl.cli import app

    group = typer.main.get_command(app)
    names: list[list[str]] = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        sub = getattr(command, "commands", None)
        if sub:
            names.extend([name, child] for child in sub)
        else:
            names.append([name])
    return names


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c))
def test_every_flag_is_explained(command: list[str]) -> None:
    import typer.main

    from scaledl.cli import app

    node = typer.main.get_command(app)
    for name in command:
        node = node.commands[name]  # type: ignore[attr-defined]
    assert node.help, f"{command} has no help text"
    for param in node.params:
        if param.param_type_name == "option":
            assert getattr(param, "help", None), f"{' '.join(command)} {param.opts} has no help"
