"""Several ONNX graphs as one: shared inputs, each member's own graph, a weighted average out.

An ensemble is served, verified, quantized and monitored like any single model, so it is one
ONNX graph rather than a list of sessions: every member keeps its own nodes (their names
prefixed `m0/`, `m1/`, … so none collide) and reads the ensemble's inputs directly.

- **Classifiers** are averaged as probabilities, the usual soft vote: the graph returns
  log(Σ wᵢ · softmax(logitsᵢ)), which are logits again (their softmax is the averaged
  probabilities), so `/predict`, evaluation and the monitor read them like any model's. The
  probabilities are floored at 1e-30 before the log so that no output is −inf.
- **Regressors and forecasters** are averaged as values: Σ wᵢ · outputᵢ.
- **Forecasters with different look-backs** share the longest look-back as input; a member
  with a shorter one reads its newest steps (a Slice on the time axis), which is the window it
  was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from scaledl.errors import PackageError

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto, ValueInfoProto

Combine = Literal["probability", "value"]
PROBABILITY_FLOOR = 1e-30


@dataclass(frozen=True)
class Member:
    """One member graph and how it joins: its weight and, for forecasters, its look-back."""

    name: str
    model: bytes
    weight: float
    steps: int | None = None  # time steps it reads (axis 1), the newest ones; None: all


def merge_graphs(members: Sequence[Member], combine: Combine, steps: int | None = None) -> bytes:
    """One ONNX model computing the weighted average of the members' first outputs.

    `steps`: the ensemble's own time axis length (the longest member look-back) when members
    read fewer steps than that. Raises PackageError naming the member whose graph does not fit.
    """
    import onnx
    from onnx import TensorProto, compose, helper, numpy_helper

    if len(members) < 2:
        raise PackageError("an ensemble needs at least two member graphs")
    models = [_load(m) for m in members]
    first = models[0]
    _check_opsets(models, members)
    input_names = [value.name for value in first.graph.input if not _is_initializer(first, value)]
    output = first.graph.output[0]
    for model, member in zip(models[1:], members[1:], strict=True):
        names = [value.name for value in model.graph.input if not _is_initializer(model, value)]
        if names != input_names:
            raise PackageError(
                f"member {member.name}: its graph reads inputs {names}, the first member's "
                f"{input_names}; ensemble members must read the same inputs"
            )
        if model.graph.output[0].type.tensor_type.elem_type != output.type.tensor_type.elem_type:
            raise PackageError(
                f"member {member.name}: its output's element type differs from the first member's"
            )

    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    functions: list[onnx.FunctionProto] = []
    weighted: list[str] = []
    for i, (model, member) in enumerate(zip(models, members, strict=True)):
        prefix = f"m{i}/"
        renamed = compose.add_prefix(model, prefix)
        graph = renamed.graph
        for name in input_names:
            nodes.extend(_feed(name, prefix + name, member.steps, steps, prefix))
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        functions.extend(renamed.functions)
        result = graph.output[0].name
        if combine == "probability":
            probabilities = f"{prefix}ensemble/probabilities"
            nodes.append(helper.make_node("Softmax", [result], [probabilities], axis=-1))
            result = probabilities
        weight = f"{prefix}ensemble/weight"
        initializers.append(numpy_helper.from_array(np.array(member.weight, np.float32), weight))
        nodes.append(helper.make_node("Mul", [result, weight], [f"{prefix}ensemble/weighted"]))
        weighted.append(f"{prefix}ensemble/weighted")

    if combine == "probability":
        floor = "ensemble/floor"
        initializers.append(numpy_helper.from_array(np.array(PROBABILITY_FLOOR, np.float32), floor))
        nodes.append(helper.make_node("Sum", weighted, ["ensemble/average"]))
        nodes.append(helper.make_node("Max", ["ensemble/average", floor], ["ensemble/floored"]))
        nodes.append(helper.make_node("Log", ["ensemble/floored"], [output.name]))
    else:
        nodes.append(helper.make_node("Sum", weighted, [output.name]))

    inputs = [_widened(value, steps) for value in first.graph.input if value.name in input_names]
    out_value = onnx.ValueInfoProto()
    out_value.CopyFrom(output)
    if out_value.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise PackageError("ensemble members must return float32 outputs")
    graph = helper.make_graph(nodes, "ensemble", inputs, [out_value], initializer=initializers)
    merged = helper.make_model(
        graph,
        opset_imports=_union_opsets(models),
        producer_name="scaledl-ensemble",
        functions=functions,
    )
    merged.ir_version = max(model.ir_version for model in models)
    try:
        onnx.checker.check_model(merged)
    except onnx.checker.ValidationError as exc:
        raise PackageError(
            f"the merged ensemble graph is not valid ONNX ({str(exc)[:300]})"
        ) from None
    return merged.SerializeToString()


def _load(member: Member) -> ModelProto:
    import onnx

    try:
        return onnx.load_from_string(member.model)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise PackageError(f"member {member.name}: its ONNX graph does not parse ({exc})") from None


def _is_initializer(model: ModelProto, value: ValueInfoProto) -> bool:
    """Old exporters list initializers among the graph inputs; those are not fed."""
    return any(init.name == value.name for init in model.graph.initializer)


def _check_opsets(models: Sequence[ModelProto], members: Sequence[Member]) -> None:
    """Every member must use the same version of each operator domain it imports: an ONNX
    operator's meaning changes between opsets, so one graph cannot hold two versions."""
    seen: dict[str, tuple[int, str]] = {}
    for model, member in zip(models, members, strict=True):
        for opset in model.opset_import:
            domain = opset.domain or "ai.onnx"
            if domain in seen and seen[domain][0] != opset.version:
                version, owner = seen[domain]
                raise PackageError(
                    f"member {member.name} uses {domain} opset {opset.version}, member {owner} "
                    f"opset {version}; re-export one with `scaledl export PACKAGE --opset "
                    f"{version}` so that both use the same"
                )
            seen.setdefault(domain, (opset.version, member.name))


def _union_opsets(models: Sequence[ModelProto]) -> list[object]:
    from onnx import helper

    versions: dict[str, int] = {}
    for model in models:
        for opset in model.opset_import:
            # "" and "ai.onnx" name the same domain; importing both would be two versions of it
            versions[opset.domain if opset.domain != "ai.onnx" else ""] = opset.version
    return [helper.make_opsetid(domain, version) for domain, version in sorted(versions.items())]


def _feed(
    source: str, target: str, member_steps: int | None, steps: int | None, prefix: str
) -> list[NodeProto]:
    """Nodes giving a member its input: the whole tensor, or its newest `member_steps` steps."""
    from onnx import helper, numpy_helper

    if member_steps is None or steps is None or member_steps == steps:
        return [helper.make_node("Identity", [source], [target])]
    constants = {
        "starts": np.array([-member_steps], np.int64),
        "ends": np.array([np.iinfo(np.int64).max], np.int64),
        "axes": np.array([1], np.int64),
    }
    nodes = [
        helper.make_node(
            "Constant", [], [f"{prefix}ensemble/{key}"], value=numpy_helper.from_array(value)
        )
        for key, value in constants.items()
    ]
    names = [f"{prefix}ensemble/{key}" for key in constants]
    nodes.append(helper.make_node("Slice", [source, *names], [target]))
    return nodes


def _widened(value: ValueInfoProto, steps: int | None) -> ValueInfoProto:
    """The ensemble's input: the first member's, with the time axis `steps` long."""
    import onnx

    widened = onnx.ValueInfoProto()
    widened.CopyFrom(value)
    dims = widened.type.tensor_type.shape.dim
    if steps is not None and len(dims) >= 2:
        dims[1].ClearField("dim_param")
        dims[1].dim_value = steps
    return widened
