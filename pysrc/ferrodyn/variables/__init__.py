"""Object semantics for the Rust core: classification and attribute lookup.

This package is the Python half of the tracker boundary: the Rust interpreter calls
`classify`, `lookup_attr` and the `GraphBuilder` methods, and nothing else of Python."""

from __future__ import annotations

from .attrs import lookup_attr, module_item_key, super_lookup
from .classify import classify, describe, namedtuple_info

__all__ = ["classify", "describe", "lookup_attr", "module_item_key", "namedtuple_info", "super_lookup"]
