"""README commands are real: every `scaledl …` line names existing verbs and flags."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

README = Path(__file__).resolve().parents[1] / "README.md"
DOCS = sorted((README.parent / "docs").glob("*.md"))


def readme_commands() -> list[str]:
    """Every `scaledl …` line in a shell block of the README or a page under docs/."""
    lines: list[str] = []
    text = "\n".join(page.read_text() for page in (README, *DOCS))
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, re.S):
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


def _readme_recipe_names() -> set[str]:
    """Names of the recipes the README writes out in full (`name: …` in a yaml block)."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    return {m for block in blocks for m in re.findall(r"^name: ([\w.-]+)", block, re.M)}


def _builtin_name() -> str:
    from scaledl.recipe import load_recipe

    return load_recipe(None).name


def _demo_out() -> str:
    """Where `make demo` writes: its `scaledl run` line's --out, else run's default."""
    makefile = (README.parent / "Makefile").read_text()
    match = re.search(r"^demo:.*\n\t(.*scaledl run.*)$", makefile, re.M)
    assert match, "Makefile: no demo target running `scaledl run`"
    words = shlex.split(match.group(1).split("#")[0])
    if "--out" in words:
        return words[words.index("--out") + 1].rstrip("/")
    return f"runs/{_builtin_name()}"  # `scaledl run`'s default: runs/<recipe name>


def test_readme_paths_are_where_the_tool_writes() -> None:
    """Every `runs/…/package` is what `make demo`/`scaledl run` writes (or what a README command
    wrote with `--out`); every `runs/…-optimized` is `scaledl optimize`'s default output for that
    package."""
    text = README.read_text()
    demo = _demo_out()
    assert demo == f"runs/{_builtin_name()}", "make demo and `scaledl run` disagree"
    written = {demo} | set(re.findall(r"--out (runs/[\w.-]+)", text))
    packages = set(re.findall(r"(runs/[\w.-]+)/package(?!s)", text))
    assert demo in packages and packages <= written, (
        f"README package paths {packages}; the tool writes {demo}/package (or --out's)"
    )
    optimized = set(re.findall(r"runs/([\w.-]+)-optimized", text))
    assert optimized <= {_builtin_name()} | _readme_recipe_names(), optimized


def test_readme_model_names_are_what_the_tool_serves() -> None:
    """The models the README talks to are the ones its packages are served as: the demo's, or an
    example recipe's name."""
    text = README.read_text()
    name = _builtin_name()
    examples = {
        str(yaml.safe_load(p.read_text()).get("name"))
        for p in (README.parent / "examples").glob("*.yaml")
    }
    used = set(
        re.findall(
            r"scaledl models (?:load|policy|canary|shadow|status|promote|rollback) "
            r"([\w.-]+)",
            text,
        )
    )
    used |= set(re.findall(r"--model ([\w.-]+)", text))
    used |= set(re.findall(r'client\.infer\("([\w.-]+)"', text))
    used |= set(re.findall(r"`\{([\w.-]+): \{max_batch_size", text))
    used |= set(re.findall(r'"model": "([\w.-]+)", "step"', text))
    examples |= _readme_recipe_names()
    assert name in used and used <= {name} | examples, (
        f"README uses model name(s) {used}; `scaledl run` packages {name!r}, the examples "
        f"{sorted(examples)}"
    )


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings (lower case, punctuation dropped, spaces → -)."""
    anchors, in_code = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower())
            anchors.add(title.replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_links_between_the_guides_resolve(page: Path) -> None:
    """Every relative link of the README and docs/ names a page that exists and, with a
    `#fragment`, a heading on it."""
    for target, fragment in re.findall(r"\]\(([^)#\s:]*)(?:#([^)\s]+))?\)", page.read_text()):
        linked = (page.parent / target).resolve() if target else page
        assert linked.exists(), f"{page.name}: link to missing {target}"
        if fragment and linked.suffix == ".md":
            assert fragment in _anchors(linked), f"{page.name}: no heading #{fragment} in {target}"
