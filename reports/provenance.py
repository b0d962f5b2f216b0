"""Where a report's numbers come from: measured, published or modelled.

The simulator stamps each result with the provenance of its inputs; a device profile
stamps every number. These helpers read both as plain data.

>>> kinds_label({"latency": "measured", "power": "published"})
'latency: measured; power: published'
>>> profile_kind({"sources": {"x": {"kind": "published", "source": "paper"}}}, "x")
'published'
"""

from __future__ import annotations

from typing import Any

KINDS = ("measured", "published", "modelled")


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("kind")
    if isinstance(value, str):
        v = value.strip().lower()
        for k in KINDS:
            if v.startswith(k):
                return k
        return v or None
    return None


def profile_kind(profile: dict[str, Any], ref: Any) -> str | None:
    """The kind of a provenance reference of a raw profile (inline record or source key)."""
    if isinstance(ref, str) and ref in (profile.get("sources") or {}):
        return _kind(profile["sources"][ref])
    return _kind(ref)


def result_kinds(record: dict[str, Any]) -> dict[str, str]:
    """A result's provenance as ``{quantity: kind}``, e.g. ``{"latency": "modelled"}``."""
    prov = record.get("provenance") or {}
    if not isinstance(prov, dict):
        return {}
    out: dict[str, str] = {}
    for key, value in prov.items():
        kind = _kind(value)
        if kind is not None:
            out[str(key)] = kind
    return out


def merge_kinds(records: list[dict[str, Any]]) -> dict[str, str]:
    """Provenance over several results; a quantity with mixed kinds lists them all."""
    seen: dict[str, set[str]] = {}
    for r in records:
        for key, kind in result_kinds(r).items():
            seen.setdefault(key, set()).add(kind)
    return {k: "/".join(sorted(v)) for k, v in sorted(seen.items())}


def kinds_label(kinds: dict[str, str]) -> str:
    """``{"latency": "measured"}`` as ``"latency: measured"``; empty as ``"not stated"``."""
    if not kinds:
        return "not stated"
    return "; ".join(f"{k}: {v}" for k, v in kinds.items())


def _collect(profile: dict[str, Any], refs: list[Any]) -> str | None:
    kinds = sorted({k for k in (profile_kind(profile, r) for r in refs) if k})
    return "/".join(kinds) if kinds else None


def profile_kinds(profile: dict[str, Any]) -> dict[str, str]:
    """Provenance of a raw profile's latency, power, battery and switch-cost numbers."""
    out: dict[str, str] = {}
    lat_refs: list[Any] = []
    for v in profile.get("variants") or []:
        lat_refs.extend(row.get("provenance") for row in v.get("latency") or [])
    if not lat_refs and profile.get("latency_model"):
        lat_refs.append(profile["latency_model"].get("provenance"))
    power_refs: list[Any] = []
    for entry in profile.get("power") or []:
        if entry.get("model"):
            power_refs.append(entry["model"].get("provenance"))
        power_refs.extend(lp.get("provenance") for lp in entry.get("levels") or [])
    for name, refs in (
        ("latency", lat_refs),
        ("power", power_refs),
        ("battery", [(profile.get("battery") or {}).get("provenance")]),
        ("switch_cost", [(profile.get("switch_cost") or {}).get("provenance")]),
    ):
        kind = _collect(profile, refs)
        if kind:
            out[name] = kind
    return out
