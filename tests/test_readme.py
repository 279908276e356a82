"""README commands are real: every `scaledl …` line names existing verbs and flags."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    lines: list[str] = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("scaledl "):
                lines.append(line)
    return lines


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_uses_real_verbs_and_flags(line: str) -> None:
    import typer.main

    from scaledl.cli import app

    words = shlex.split(line.replace("\\|", "|"))[1:]
    node = typer.main.get_command(app)
    while hasattr(node, "commands") and words and not words[0].startswith("-"):
        assert words[0] in node.commands, f"README: unknown verb {words[0]!r} in {line!r}"
        node = node.commands[words.pop(0)]
    known = {opt for p in node.params for opt in (*p.opts, *p.secondary_opts)}
    known |= {"--help", "-h"}
    for word in words:
        flag = word.split("=")[0]
        if flag.startswith("-") and not re.fullmatch(r"-\d.*", flag):
            assert flag in known, f"README: {flag} is not an option of {line!r}"


def test_readme_shows_the_two_setup_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
