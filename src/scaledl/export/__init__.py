"""ONNX export with a parity check, and ONNX Runtime session helpers."""

from scaledl.config.export import ExportConfig

__all__ = ["ExportConfig"]
