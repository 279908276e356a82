"""The text modality: raw strings → a packaged tokenizer → token ids (see `unit`)."""

from __future__ import annotations

from scaledl.modalities.text.unit import TextModality

__all__ = ["TextModality"]
