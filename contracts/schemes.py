"""Reconfiguration schemes: how a bundle's run-time-switchable variants differ.

One bundle holds one scheme's variants, one per DVFS level, and says which scheme in
``bundle.json``'s top-level ``scheme`` (a bundle written before schemes existed has none
and is RT3's):

| scheme | a variant is | anchor |
|---|---|---|
| ``rt3`` | a pattern set: block-column masks on BP's backbone, searched per level | RT3 |
| ``width`` | the top-ranked heads and FFN neurons of every layer, nested | DynaBERT |
| ``depth`` | the first k encoder layers and a decoder | DynaBERT depth, LayerDrop |
| ``early-exit`` | exit heads after layers and a confidence threshold | DeeBERT, PABEE, EdgeBERT |

>>> check_scheme("width")
'width'
>>> bundle_scheme({"format": "rt3lab-bundle"})
'rt3'
>>> try:
...     expect_scheme({"scheme": "depth"}, "width", "b/bundle.json")
... except SchemeError as e:
...     print(e)
b/bundle.json: bundle of scheme 'depth', loaded as 'width'
"""

from __future__ import annotations

from typing import Any

SCHEMES: tuple[str, ...] = ("rt3", "width", "depth", "early-exit")
DEFAULT_SCHEME = "rt3"


class SchemeError(ValueError):
    """An unknown scheme, or a bundle of one scheme used as another (one line, exit 2)."""


def check_scheme(name: object, where: str = "--scheme") -> str:
    """``name`` if it is a known scheme, else :class:`SchemeError` naming ``where``."""
    if not isinstance(name, str) or name not in SCHEMES:
        raise SchemeError(f"{where}: unknown scheme {name!r}; expected one of {list(SCHEMES)}")
    return name


def bundle_scheme(manifest: dict[str, Any], where: str = "bundle.json") -> str:
    """The scheme a parsed ``bundle.json`` records (``rt3`` when it records none)."""
    return check_scheme(manifest.get("scheme", DEFAULT_SCHEME), f"{where}: field scheme")


def expect_scheme(manifest: dict[str, Any], wanted: str, where: str = "bundle.json") -> str:
    """The bundle's scheme, refused unless it is ``wanted``."""
    got = bundle_scheme(manifest, where)
    if got != check_scheme(wanted):
        raise SchemeError(f"{where}: bundle of scheme {got!r}, loaded as {wanted!r}")
    return got
