"""ONNX export with a parity check, and ONNX Runtime session helpers."""

from scaledl.export.config import ExportConfig

__all__ = ["ExportConfig"]
