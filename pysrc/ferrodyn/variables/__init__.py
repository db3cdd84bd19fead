"""Object semantics for the Rust core: classification and attribute lookup.

This package is the Python half of the tracker boundary: the Rust interpreter calls
`classify`, `lookup_attr` and the `GraphBuilder` methods, and nothing else of Python."""

from __future__ import annotations

from .attrs import (
    dict_read_method,
    lookup_attr,
    module_item_key,
    module_slice_keys,
    super_lookup,
)
from .classify import classify, describe, namedtuple_info
from .model_output import model_output_fields, model_output_own_to_tuple, model_output_renames
from .mutation import fill_container_object, new_object_shell, setattr_plain

__all__ = [
    "classify",
    "describe",
    "dict_read_method",
    "fill_container_object",
    "lookup_attr",
    "model_output_fields",
    "model_output_own_to_tuple",
    "model_output_renames",
    "module_item_key",
    "module_slice_keys",
    "namedtuple_info",
    "new_object_shell",
    "setattr_plain",
    "super_lookup",
]
