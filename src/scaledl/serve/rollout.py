"""Rollout decisions as pure functions: current `RouteState` + an operation → the next state.

The manager applies the result (loads what is new, swaps the route, drains what is gone), so
these rules are the whole meaning of load / canary / shadow / promote / roll back:

- load:     a version becomes primary; with no version given, the policy decides (`latest`:
            the newest in the repository; `pinned`: the pinned one). The old primary is kept
            as `previous` for roll back.
- canary:   a second version gets `weight` of the traffic (0 < weight ≤ 1).
- shadow:   a version gets a copy of every request; its answers are compared, never returned.
- promote:  the canary (else the shadow, else the named version) becomes primary, pinned.
- rollback: drop an active canary/shadow; with none, return to the previous primary (pinned).
"""

from __future__ import annotations

from dataclasses import replace

from scaledl.errors import ScaledlError, UsageError
from scaledl.serve.state import RouteState

POLICIES = ("latest", "pinned")


class ConflictError(ScaledlError):
    """The operation does not fit the model's current rollout state."""

    http_status = 409


def plan_load(current: RouteState | None, version: str, policy: str) -> RouteState:
    if current is None:
        return RouteState(primary=version, policy=policy)
    previous = current.primary if current.primary != version else current.previous
    return replace(
        current,
        primary=version,
        policy=policy,
        previous=previous,
        canary=None if current.canary == version else current.canary,
        canary_weight=0.0 if current.canary == version else current.canary_weight,
        shadow=None if current.shadow == version else current.shadow,
    )


def plan_unload_version(current: RouteState, version: str) -> RouteState:
    if version == current.primary:
        raise ConflictError(
            f"version {version} is the primary; load or promote another version first, "
            "or unload the whole model"
        )
    if version == current.canary:
        return replace(current, canary=None, canary_weight=0.0)
    if version == current.shadow:
        return replace(current, shadow=None)
    raise ConflictError(f"version {version} is not loaded (primary is {current.primary})")


def plan_canary(current: RouteState, version: str, weight: float) -> RouteState:
    if not 0.0 < weight <= 1.0:
        raise UsageError(f"canary weight {weight}: expected a share in (0, 1], e.g. 0.1")
    if version == current.primary:
        raise ConflictError(f"version {version} is already the primary")
    shadow = None if current.shadow == version else current.shadow
    return replace(current, canary=version, canary_weight=float(weight), shadow=shadow)


def plan_clear_canary(current: RouteState) -> RouteState:
    return replace(current, canary=None, canary_weight=0.0)


def plan_shadow(current: RouteState, version: str) -> RouteState:
    if version == current.primary:
        raise ConflictError(f"version {version} is the primary; a shadow must be another one")
    if version == current.canary:
        raise ConflictError(f"version {version} is the canary; clear it first")
    return replace(current, shadow=version)


def plan_clear_shadow(current: RouteState) -> RouteState:
    return replace(current, shadow=None)


def plan_promote(current: RouteState, version: str | None) -> RouteState:
    target = version or current.canary or current.shadow
    if target is None:
        raise ConflictError("nothing to promote: no canary or shadow; name a version")
    if target == current.primary:
        raise ConflictError(f"version {target} is already the primary")
    return plan_load(current, target, "pinned")


def plan_rollback(current: RouteState) -> RouteState:
    if current.canary or current.shadow:
        return replace(current, canary=None, canary_weight=0.0, shadow=None)
    if current.previous is None:
        raise ConflictError("nothing to roll back: no canary, shadow or previous version")
    return replace(current, primary=current.previous, policy="pinned", previous=None)


def plan_policy(current: RouteState, policy: str, version: str | None, latest: str) -> RouteState:
    if policy not in POLICIES:
        raise UsageError(f"policy {policy!r}: valid policies are {', '.join(POLICIES)}")
    if policy == "latest":
        return plan_load(current, latest, "latest")
    if version is None:
        raise UsageError("policy 'pinned' needs a version")
    return plan_load(current, version, "pinned")
