"""Model families behind one factory: `create_model("cnn", input_shape=(1, 8, 8), num_outputs=10)`.

Every family takes the normalized input batch (N, *input_shape) and returns (N, num_outputs)
logits (or values for regression). Knobs are validated per family; a model is rebuilt from its
`model.json` spec (family + input shape + outputs + knobs), never from a pickle.
"""

from __future__ import annotations

from scaledl.models.registry import (
    ModelSpec,
    create_model,
    family_names,
    has_own_form,
    knobs_class,
    register_family,
    validate_knobs,
)

__all__ = [
    "ModelSpec",
    "create_model",
    "family_names",
    "has_own_form",
    "knobs_class",
    "register_family",
    "validate_knobs",
]
