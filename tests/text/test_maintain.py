"""`scaledl maintain` on a text package: new labelled sentences are checked, fine-tuned on with
the package's own tokenizer, and the new version is published or rejected with its reasons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scaledl.maintain.log import read_log
from tests.conftest import run_cli
from tests.maintain.conftest import FAST
from tests.text.conftest import SST2, require_sst2

NEW_ROWS = 400


def later_sentences(dest: Path, start: int = 2000) -> Path:
    """SST-2 training rows the package never saw (it trained on the first 600), as a TSV."""
    require_sst2()
    lines = (SST2 / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(lines[0] + "".join(lines[1 + start : 1 + start + NEW_ROWS]), encoding="utf-8")
    return dest


@pytest.mark.e2e
@pytest.mark.slow
def test_maintain_fine_tunes_a_text_model_on_new_sentences(
    text_package: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(text_package, repo / "sst2" / "1")
    new = later_sentences(tmp_path / "new" / "reviews.tsv")

    result = run_cli(
        "maintain", str(repo), "-m", "sst2", "--new-data", str(new), "--force", *FAST, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode in (0, 1), output  # 1: measured, and the rule rejected it
    assert "Traceback" not in output
    steps = {r["step"]: r for r in read_log(repo / "sst2" / ".maintain" / "log.jsonl")}
    assert steps["check"]["assessment"]["samples"] > 0
    assert steps["data"]["rows"]["test"] > 0
    outcome = steps["done"]["outcome"]
    folder = repo / "sst2" / ("2" if outcome == "promoted" else ".maintain/rejected/2")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["preprocessing"]["kind"] == "text"
    # the tokenizer travels unchanged: the same token ids, so old and new rows mean the same
    old = json.loads((repo / "sst2" / "1" / "manifest.json").read_text())
    assert manifest["preprocessing"]["tokenizer"] == old["preprocessing"]["tokenizer"]
    tokenizer = manifest["preprocessing"]["tokenizer"]["file"]
    assert (folder / tokenizer).read_bytes() == (repo / "sst2" / "1" / tokenizer).read_bytes()
    # both versions were measured on held-out new sentences (neither trained on them)
    (on_new,) = (m for m in steps["compare"]["measurements"] if m["set"] == "new")
    assert on_new["samples"] > 0 and 0.0 <= on_new["candidate_accuracy"] <= 1.0
    assert manifest["lineage"]["maintain"]["new_data"].endswith("reviews.tsv")
    assert run_cli("verify", str(folder)).returncode == 0


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"sentence\tlabel\nfine film \t1\n\xff\xfe broken bytes\t0\n", "line 3"),
        (b"sentence\tlabel\nfine film \t1\nno label at all\n", "line 3"),
        (b"review\tstars\ngreat\t5\n", "sentence"),
    ],
    ids=["not-utf8", "missing-field", "wrong-columns"],
)
def test_bad_new_sentences_are_named(
    text_package: Path, tmp_path: Path, content: bytes, named: str
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(text_package, repo / "sst2" / "1")
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(content)
    result = run_cli("maintain", str(repo), "-m", "sst2", "--new-data", str(bad), *FAST)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "bad.tsv" in output and named in output, output
    assert sorted(p.name for p in (repo / "sst2").iterdir() if not p.name.startswith(".")) == ["1"]
