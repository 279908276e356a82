"""The tokenizer: trained on the training split only, frequency-ordered ids, stored in the
package with its hash, the same ids in every stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scaledl.config.data import DataConfig
from scaledl.config.text import TextConfig
from scaledl.errors import DataError, PackageError
from scaledl.modalities import modality, to_graph
from scaledl.modalities.text.tokenizer import train_tokenizer
from scaledl.package import open_package
from scaledl.verify import verify_package

TEXTS = ["the film is good", "the film is bad", "a good , good film", "bad acting"] * 5


def test_ids_are_frequency_ranks_after_the_special_tokens() -> None:
    data = train_tokenizer(TEXTS, TextConfig(tokenizer="word", vocab_size=50))
    vocab = json.loads(data)["model"]["vocab"]
    assert [vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]")] == [0, 1, 2]
    ranked = sorted((i, t) for t, i in vocab.items() if i > 2)
    counts = [sum(text.split().count(t) for text in TEXTS) for _, t in ranked]
    assert counts == sorted(counts, reverse=True)  # id 3 is the most frequent word


def test_tied_tokens_are_numbered_by_their_text_not_the_trainers_order() -> None:
    from scaledl.modalities.text.tokenizer import renumber_by_frequency

    counts = np.array([0, 0, 0, 5, 5, 9])
    for order in (["b", "a", "c"], ["a", "b", "c"]):  # the trainer's ids differ per process
        vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, **{t: 3 + i for i, t in enumerate(order)}}
        doc = renumber_by_frequency({"model": {"type": "WordLevel", "vocab": vocab}}, counts)
        assert doc["model"]["vocab"] == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "c": 3, "a": 4, "b": 5}


@pytest.mark.parametrize("algorithm", ["wordpiece", "word"])
def test_the_same_texts_give_the_same_tokenizer_in_another_process(algorithm: str) -> None:
    """The trainers number tied tokens in a per-process hash order; the stored tokenizer (and
    its sha256, which `scaledl ensemble` compares) must not depend on it. (The unigram trainer
    is not reproducible across processes at all; docs/text.md says so.)"""
    import subprocess
    import sys

    texts = [f"film {i % 17} is {'good' if i % 3 else 'bad'} , {i % 11} stars" for i in range(400)]
    script = (
        "import sys, json, hashlib\n"
        "from scaledl.config.text import TextConfig\n"
        "from scaledl.modalities.text.tokenizer import train_tokenizer\n"
        "texts = json.loads(sys.stdin.read())\n"
        f"data = train_tokenizer(texts, TextConfig(tokenizer={algorithm!r}, vocab_size=1000))\n"
        "print(hashlib.sha256(data).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], input=json.dumps(texts), capture_output=True,
            text=True, check=True,
        ).stdout.strip()
        for _ in range(3)
    }  # fmt: skip
    assert len(digests) == 1, digests


@pytest.mark.parametrize("algorithm", ["wordpiece", "bpe", "unigram", "word"])
def test_every_algorithm_encodes_with_cls_padding_and_truncation(algorithm: str) -> None:
    from scaledl.data.dataset import ArraySet, DataSplits

    texts = np.array(TEXTS, dtype=object)
    splits = DataSplits(
        train=ArraySet(texts, np.zeros(len(texts), np.int64)),
        val=ArraySet(texts[:2], np.zeros(2, np.int64)),
        test=ArraySet(texts[:2], np.zeros(2, np.int64)),
        kind="text",
        labels=["a"],
        scale=1.0,
        fingerprint="x",
        source="memory",
        config=DataConfig(
            source="memory", text=TextConfig(tokenizer=algorithm, vocab_size=60, max_length=4)
        ),
    )
    spec = modality("text").fit(splits)
    ids = to_graph(spec, np.array(["good", "the film is good and bad", "zzz"], dtype=object))
    assert ids.dtype == np.int64 and ids.shape == (3, 4)  # truncated to max_length
    assert (ids[:, 0] == 2).all()  # [CLS] first
    assert ids[0, 2:].tolist() == [0, 0] or algorithm == "unigram"  # padded to the longest
    with pytest.raises(DataError, match="sample 1 is int"):
        to_graph(spec, np.array(["ok", 3], dtype=object))


def test_tokenizer_round_trips_inside_the_package(text_package: Path, tmp_path: Path) -> None:
    from scaledl.modalities.text import store

    pkg = open_package(text_package)
    spec = pkg.preprocessing
    assert pkg.has_file("tokenizer.json")
    assert pkg.manifest.files["tokenizer.json"] == spec.tokenizer.sha256  # type: ignore[attr-defined]
    texts = np.array(["a gripping , funny film", "dull"], dtype=object)
    before = to_graph(spec, texts)
    store._FILES.clear()  # a fresh process: only the package has the tokenizer
    store._PARSED.clear()
    with pytest.raises(DataError, match="not loaded"):
        to_graph(spec, texts)
    spec = open_package(text_package).preprocessing
    assert np.array_equal(to_graph(spec, texts), before)
    report = verify_package(text_package)
    assert any("raw sample" in check for check in report.checks)


def test_a_changed_tokenizer_is_refused(text_package: Path, tmp_path: Path) -> None:
    copy = tmp_path / "pkg"
    shutil.copytree(text_package, copy)
    path = copy / "tokenizer.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["model"]["vocab"]["[UNK]"], doc["model"]["vocab"]["[PAD]"] = 0, 1
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PackageError, match=r"tokenizer\.json fails its checksum"):
        open_package(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    from scaledl.fsio import sha256_file

    manifest["files"]["tokenizer.json"] = sha256_file(path)  # re-listed, but not the spec's
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match=r"preprocessing\.tokenizer names .* another sha256"):
        open_package(copy)
    del manifest["files"]["tokenizer.json"]  # and a tokenizer the manifest does not list at all
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="which is not listed in files"):
        open_package(copy)
