"""The one tokenizer of a text model: Hugging Face `tokenizers`, trained on the training split,
saved inside the package (its sha256 in the spec) and used by every stage.

Training a tokenizer (`train_tokenizer`) gives a JSON file whose special tokens are [PAD]=0,
[UNK]=1, [CLS]=2, with every other id renumbered by frequency on the training split (id 3 is
the most frequent token): the monitor's frequency bands and vocabulary trimming read a token's
rank from its id. The file also records [CLS] insertion, truncation and padding, so the
tokenizer alone reproduces the graph's input.

Loaded tokenizers live in a small in-process store keyed by their sha256: `fit` registers the
one it trains, opening a package registers the one it holds (after checking its hash), and
`to_graph` looks the spec's hash up. Parsing is Rust code of the `tokenizers` library reading
data: a package's tokenizer never runs Python code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from scaledl.config.text import TextConfig
from scaledl.contract import TextSpec, TokenizerInfo
from scaledl.errors import DataError, PackageError
from scaledl.modalities.text import store

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIALS = (PAD, UNK, CLS)
MAX_TOKENIZER_BYTES = 64 << 20


class TextTokenizer:
    """A loaded tokenizer set up as its spec says: texts → int64 ids (N, longest).

    Its settings are fixed when it is made (changing them while another thread encodes would
    race), so each (file, max length, truncation, pad id) has its own instance.
    """

    def __init__(self, tokenizer: Any, sha256: str) -> None:
        self.tokenizer = tokenizer
        self.sha256 = sha256

    def encode(self, texts: Sequence[str] | np.ndarray) -> np.ndarray:
        """Texts → (N, L) int64 ids, L the longest in the batch (≥ 1: [CLS] always leads)."""
        items = [str(t) for t in texts]
        if not items:
            return np.zeros((0, 1), np.int64)
        encodings = self.tokenizer.encode_batch_fast(items, add_special_tokens=True)
        return np.asarray([e.ids for e in encodings], dtype=np.int64)

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())


# ---- training ----------------------------------------------------------------------------
def train_tokenizer(texts: Sequence[str], config: TextConfig) -> bytes:
    """A tokenizer trained on `texts` (the training split), as the JSON bytes to store."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers

    model, trainer = _model_and_trainer(config)
    tokenizer = Tokenizer(model)
    norms: list[Any] = [normalizers.NFKC()]
    if config.lowercase:
        norms.append(normalizers.Lowercase())
    tokenizer.normalizer = normalizers.Sequence(norms)
    splits: list[Any] = [pre_tokenizers.WhitespaceSplit()]
    if config.split_punctuation:
        splits.append(pre_tokenizers.Punctuation())
    if config.tokenizer == "unigram":  # SentencePiece-style: word starts marked with ▁
        splits.append(pre_tokenizers.Metaspace())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(splits)
    tokenizer.train_from_iterator(list(texts), trainer, length=len(texts))
    doc = json.loads(tokenizer.to_str())
    counts = _token_counts(tokenizer, texts)
    doc = renumber_by_frequency(doc, counts)
    doc["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": CLS, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
        ],
        "pair": [
            {"SpecialToken": {"id": CLS, "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {CLS: {"id": CLS, "ids": [2], "tokens": [CLS]}},
    }
    doc["truncation"] = {
        "direction": "Right" if config.truncation == "right" else "Left",
        "max_length": config.max_length,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    doc["padding"] = {
        "strategy": "BatchLongest",
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": PAD,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _model_and_trainer(config: TextConfig) -> tuple[Any, Any]:
    from tokenizers import models, trainers

    specials = list(SPECIALS)
    size, freq = config.vocab_size, config.min_frequency
    if config.tokenizer == "wordpiece":
        return models.WordPiece(unk_token=UNK), trainers.WordPieceTrainer(
            vocab_size=size, min_frequency=freq, special_tokens=specials, show_progress=False
        )
    if config.tokenizer == "bpe":
        return models.BPE(unk_token=UNK), trainers.BpeTrainer(
            vocab_size=size, min_frequency=freq, special_tokens=specials, show_progress=False
        )
    if config.tokenizer == "unigram":
        return models.Unigram(), trainers.UnigramTrainer(
            vocab_size=size, special_tokens=specials, unk_token=UNK, show_progress=False
        )
    return models.WordLevel(unk_token=UNK), trainers.WordLevelTrainer(
        vocab_size=size, min_frequency=freq, special_tokens=specials, show_progress=False
    )


def _token_counts(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    size = tokenizer.get_vocab_size()
    counts = np.zeros(size, np.int64)
    for start in range(0, len(texts), 8192):
        chunk = [str(t) for t in texts[start : start + 8192]]
        for encoding in tokenizer.encode_batch_fast(chunk, add_special_tokens=False):
            counts += np.bincount(np.asarray(encoding.ids, np.int64), minlength=size)
    return counts


def renumber_by_frequency(doc: dict[str, Any], counts: np.ndarray) -> dict[str, Any]:
    """The tokenizer JSON with ids 0–2 the special tokens and the others by descending count."""
    model = doc["model"]
    if model["type"] == "Unigram":
        entries = model["vocab"]
        old_ids = _frequency_order([str(entry[0]) for entry in entries], counts)
        model["vocab"] = [entries[i] for i in old_ids]
        model["unk_id"] = 1
    else:
        vocab: dict[str, int] = model["vocab"]
        by_id = {i: token for token, i in vocab.items()}
        old_ids = _frequency_order([by_id[i] for i in range(len(by_id))], counts)
        model["vocab"] = {by_id[old]: new for new, old in enumerate(old_ids)}
    return doc


def _frequency_order(tokens: Sequence[str], counts: np.ndarray) -> list[int]:
    """Old ids in their new order: the special tokens, then descending count, ties by the
    token's text. Not by the trainer's id: the trainers number tied tokens in hash-map order,
    which changes from process to process, and the same data must give the same tokenizer
    (its sha256 is what `scaledl ensemble` and a package's checks compare)."""
    rest = sorted(range(len(SPECIALS), len(tokens)), key=lambda i: (-int(counts[i]), tokens[i]))
    return [*range(len(SPECIALS)), *rest]


# ---- loading -----------------------------------------------------------------------------
def register_tokenizer(data: bytes, expected_sha256: str | None = None) -> str:
    """Check (parse) and keep a tokenizer file; returns its sha256."""
    if len(data) > MAX_TOKENIZER_BYTES:
        raise PackageError(
            f"tokenizer file is {len(data):,} bytes; at most {MAX_TOKENIZER_BYTES:,} are read"
        )
    digest = store.register(data, expected_sha256, "tokenizer file")
    store.parsed(digest, "check", _parse, "tokenizer")  # refuse an unreadable file now
    return digest


def tokenizer_for(spec: TextSpec) -> TextTokenizer:
    """The loaded tokenizer of `spec`, set up with its length, truncation and padding."""
    info = spec.tokenizer
    settings = (spec.max_length, spec.truncation, info.pad_id)

    def make(data: bytes) -> TextTokenizer:
        tokenizer = _parse(data)
        if tokenizer.get_vocab_size() != info.vocab_size:
            raise PackageError(
                f"tokenizer has {tokenizer.get_vocab_size()} tokens, the spec says "
                f"{info.vocab_size}"
            )
        tokenizer.enable_truncation(spec.max_length, direction=spec.truncation)
        tokenizer.enable_padding(pad_id=info.pad_id, pad_token=PAD)
        return TextTokenizer(tokenizer, info.sha256)

    found: TextTokenizer = store.parsed(info.sha256, settings, make, "tokenizer")
    return found


def tokenizer_info(data: bytes, config: TextConfig) -> TokenizerInfo:
    digest = register_tokenizer(data)
    tokenizer = _parse(data)
    vocab = tokenizer.get_vocab()
    ids = {token: vocab.get(token) for token in SPECIALS}
    if ids != {PAD: 0, UNK: 1, CLS: 2}:
        raise DataError(f"the trained tokenizer's special tokens have ids {ids}; expected 0, 1, 2")
    return TokenizerInfo(
        sha256=digest,
        algorithm=config.tokenizer,
        vocab_size=int(tokenizer.get_vocab_size()),
        lowercase=config.lowercase,
    )


def shared_tokenizer(source: str) -> TokenizerInfo:
    """The tokenizer of the text package at `source` (`data.text.tokenizer_from`), checked and
    kept for this run: the package is opened like any other (every checksum verified), and
    only its listed tokenizer file is read."""
    from scaledl.package import open_package

    where = f"data.text.tokenizer_from {source!r}"
    try:
        pkg = open_package(source)
    except PackageError as exc:
        raise DataError(f"{where}: {exc.message}") from None
    spec = pkg.manifest.preprocessing
    if not isinstance(spec, TextSpec):
        kind = spec.kind if spec is not None else "none"
        raise DataError(
            f"{where}: the package is not a text model (its preprocessing is {kind}); name a "
            "package trained on text, whose tokenizer the new model will share"
        )
    path = pkg.file(spec.tokenizer.file)
    if path.stat().st_size > MAX_TOKENIZER_BYTES:
        raise DataError(f"{where}: its tokenizer file is over {MAX_TOKENIZER_BYTES:,} bytes")
    register_tokenizer(path.read_bytes(), spec.tokenizer.sha256)
    return spec.tokenizer


def _parse(data: bytes) -> Any:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_str(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, Exception) as exc:  # tokenizers raises Exception
        raise PackageError(f"tokenizer file is not a readable tokenizer ({exc})") from None
