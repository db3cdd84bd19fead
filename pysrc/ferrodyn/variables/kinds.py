"""Object kinds and attribute locations shared with the Rust core.

The numbers are defined once, in Rust (`rust/interp/kinds.rs`), and exported by `_core`;
this module only re-exports them under readable names.
"""

from __future__ import annotations

from .. import _core

CONST: int = _core.KIND_CONST
TENSOR: int = _core.KIND_TENSOR
TUPLE: int = _core.KIND_TUPLE
LIST: int = _core.KIND_LIST
DICT: int = _core.KIND_DICT
NN_MODULE: int = _core.KIND_NN_MODULE
FUNCTION: int = _core.KIND_FUNCTION
METHOD: int = _core.KIND_METHOD
TORCH_OP: int = _core.KIND_TORCH_OP
PURE: int = _core.KIND_PURE
OPERATOR: int = _core.KIND_OPERATOR
PY_MODULE: int = _core.KIND_PY_MODULE
TORCH_MODULE: int = _core.KIND_TORCH_MODULE
CLASS: int = _core.KIND_CLASS
OBJECT: int = _core.KIND_OBJECT
UNSUPPORTED: int = _core.KIND_UNSUPPORTED
NAMEDTUPLE: int = _core.KIND_NAMEDTUPLE
MARKER: int = _core.KIND_MARKER
NDARRAY: int = _core.KIND_NDARRAY
NUMPY_FN: int = _core.KIND_NUMPY_FN

AT_INSTANCE: int = _core.AT_INSTANCE
AT_PARAMETER: int = _core.AT_PARAMETER
AT_BUFFER: int = _core.AT_BUFFER
AT_SUBMODULE: int = _core.AT_SUBMODULE
AT_CLASS: int = _core.AT_CLASS
AT_PROPERTY: int = _core.AT_PROPERTY
AT_GENERIC: int = _core.AT_GENERIC
AT_UNGUARDED: int = _core.AT_UNGUARDED
AT_GETATTRIBUTE: int = _core.AT_GETATTRIBUTE
AT_DICT_READ: int = _core.AT_DICT_READ
AT_DESCRIPTOR: int = _core.AT_DESCRIPTOR
AT_GETATTR: int = _core.AT_GETATTR

MARKER_BREAK: int = _core.MARKER_BREAK
MARKER_SKIP: int = _core.MARKER_SKIP
MARKER_CONST: int = _core.MARKER_CONST
MARKER_EOGB_CTOR: int = _core.MARKER_EOGB_CTOR
MARKER_EOGB_CTX: int = _core.MARKER_EOGB_CTX
MARKER_EOGB_EXIT: int = _core.MARKER_EOGB_EXIT
MARKER_INLINE: int = _core.MARKER_INLINE
MARKER_STEP_UNSUPPORTED: int = _core.MARKER_STEP_UNSUPPORTED
MARKER_ASSUME_CONSTANT: int = _core.MARKER_ASSUME_CONSTANT
MARKER_AUTOGRAD_APPLY: int = _core.MARKER_AUTOGRAD_APPLY
MARKER_COMPTIME: int = _core.MARKER_COMPTIME
MARKER_NAMEDTUPLE: int = _core.MARKER_NAMEDTUPLE
MARKER_TF_DISABLE: int = _core.MARKER_TF_DISABLE
MARKER_RANDOM: int = _core.MARKER_RANDOM
MARKER_VMAP: int = _core.MARKER_VMAP
