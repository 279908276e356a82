"""The recipe's `augment` section: an ordered policy of ops, each `{op: name, ...params}`.

    augment:
      policy:
        - {op: crop, padding: 4}
        - {op: hflip}
        - {op: randaugment, n: 2, magnitude: 9}
        - {op: cutmix, alpha: 1.0, p: 0.5}

Every parameter is filled in when the recipe is resolved, so the saved recipe and the package
lineage hold the whole policy. The older shorthand `crop_padding: N` / `hflip: true` is read
as the matching ops.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# importing the op modules registers them
from scaledl.data.augment import (  # noqa: F401
    audio,
    color,
    geometry,
    mixing,
    policies,
    series,
    text,
)
from scaledl.data.augment.base import OPS, AugmentOp


def valid_ops() -> str:
    return ", ".join(sorted(OPS))


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("augment_policy", message)


def parse_op(entry: Any, position: int) -> AugmentOp:
    """One policy entry → its typed op; errors name the entry and list what is valid."""
    if isinstance(entry, AugmentOp):
        return entry
    if isinstance(entry, str):
        entry = {"op": entry}
    if not isinstance(entry, dict) or "op" not in entry:
        raise _fail(
            f"policy entry {position} must be a mapping like {{op: hflip, p: 0.5}}; got "
            f"{entry!r} (ops: {valid_ops()})"
        )
    name = entry["op"]
    cls = OPS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _fail(
            f"unknown augmentation {name!r} in policy entry {position}; valid: {valid_ops()}"
        )
    try:
        return cls.model_validate(entry)
    except ValidationError as exc:
        params = ", ".join(k for k in cls.model_fields if k != "op")
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise _fail(
            f"augmentation {name!r} (policy entry {position}): {problems} "
            f"(parameters of {name}: {params})"
        ) from None


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown parameter {where!r}"
    return f"{where}: {error['msg']}" if where else error["msg"].removeprefix("Value error, ")


class AugmentConfig(BaseModel):
    """The recipe's `augment` section (applied to training batches only)."""

    model_config = ConfigDict(extra="forbid")

    policy: list[SerializeAsAny[AugmentOp]] = Field(
        default_factory=list, description="ops applied in order, e.g. [{op: hflip}]"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not ({"crop_padding", "hflip"} & set(data)):
            return data
        data = dict(data)
        policy = list(data.get("policy") or [])
        pad = data.pop("crop_padding", 0)
        if data.pop("hflip", False):
            policy.insert(0, {"op": "hflip"})
        if pad:
            policy.insert(0, {"op": "crop", "padding": pad})
        data["policy"] = policy
        return data

    @field_validator("policy", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> list[AugmentOp]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _fail(f"policy must be a list of ops; got {value!r} (ops: {valid_ops()})")
        ops = [parse_op(entry, i + 1) for i, entry in enumerate(value)]
        seen_mixing = False
        for op in ops:
            if seen_mixing and not op.mixing and op.stage == "input":
                raise _fail(
                    f"{op.op!r} comes after a mixing op; mixup and cutmix must be the last "
                    "ops of the policy (valid order: per-sample ops first, then mixing ops; "
                    "feature ops such as spec_freq_mask may follow)"
                )
            seen_mixing = seen_mixing or op.mixing
        return ops

    def describe(self) -> list[str]:
        """Compact lineage strings, e.g. ["crop(padding=4)", "hflip(p=0.5)"]."""
        out = []
        for op in self.policy:
            params = op.model_dump(mode="json", exclude={"op"})
            out.append(f"{op.op}(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")")
        return out
