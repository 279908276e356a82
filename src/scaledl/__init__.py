"""scaledl: data → model → training at scale → optimization → export → serving → monitoring.

Importing the package stays light (no torch, no onnxruntime); each stage imports its heavy
dependencies when it is first used.
"""

from scaledl.errors import ScaledlError

__version__ = "0.1.0"
__all__ = ["ScaledlError", "__version__"]
