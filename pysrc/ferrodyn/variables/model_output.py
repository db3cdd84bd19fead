"""transformers' `ModelOutput` dataclasses, modelled without running their code
(`rust/interp/model_output.rs`): which classes qualify, and their fields."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

# ModelOutput's own behaviour the model relies on: a subclass overriding any of these is not
# modelled (it is constructed natively, a graph break).
_OWN = (
    "__post_init__",
    "__getitem__",
    "__setitem__",
    "__setattr__",
    "__delitem__",
    "__getattribute__",
    "__getattr__",
    "__new__",
    "__iter__",
    "__len__",
    "__contains__",
    "keys",
    "values",
    "items",
    "get",
)


def _lookup(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


def _model_output_base() -> Any:
    """transformers' `ModelOutput` if transformers is imported (never imports it)."""
    generic = sys.modules.get("transformers.utils.generic")
    return getattr(generic, "ModelOutput", None) if generic is not None else None


def model_output_fields(cls: Any) -> list[str] | None:
    """The field names of a transformers `ModelOutput` dataclass that behaves exactly like
    `ModelOutput` (every field but the first defaults to None, no factories, no overrides
    of its mapping behaviour); None for anything else."""
    base = _model_output_base()
    if base is None or not isinstance(cls, type) or cls is base or not issubclass(cls, base):
        return None
    if not dataclasses.is_dataclass(cls) or "__dataclass_fields__" not in cls.__dict__:
        return None
    if any(_lookup(cls, n) is not _lookup(base, n) for n in _OWN):
        return None
    fields = dataclasses.fields(cls)
    if not fields or any(not f.init for f in fields):
        return None
    if any(f.default_factory is not dataclasses.MISSING for f in fields):
        return None
    if not all(f.default is None for f in fields[1:]):
        return None
    # The generated __init__ (possibly behind transformers' kwarg-renaming wrapper) only
    # assigns the fields; `__post_init__` is ModelOutput's.
    init = cls.__dict__.get("__init__")
    code = getattr(getattr(init, "__wrapped__", init), "__code__", None)
    if code is None or "__create_fn__" not in code.co_qualname:
        return None
    return [f.name for f in fields]


def model_output_own_to_tuple(cls: Any) -> bool:
    """Whether a modelled ModelOutput class overrides `to_tuple` (CLIP's flattens nested
    outputs): `out.to_tuple()` and `out[i]` then run that code, which is not modelled."""
    base = _model_output_base()
    return base is None or _lookup(cls, "to_tuple") is not _lookup(base, "to_tuple")


def model_output_renames(cls: Any) -> dict[str, str]:
    """Deprecated keyword names of the class's `__init__` and their new names: transformers'
    `deprecate_kwarg(old, version, new_name=new)` wrappers around the generated `__init__`
    (`past_key_values` -> `cache`), read off the wrappers' closures. A renamed keyword goes
    to its new field (no FutureWarning while compiling, as the wrapper itself decides)."""
    renames: dict[str, str] = {}
    fn = cls.__dict__.get("__init__")
    while fn is not None and getattr(fn, "__wrapped__", None) is not None:
        code = getattr(fn, "__code__", None)
        cells = getattr(fn, "__closure__", None) or ()
        if code is not None and len(code.co_freevars) == len(cells):
            try:
                env = {n: c.cell_contents for n, c in zip(code.co_freevars, cells)}
            except ValueError:  # an empty cell
                env = {}
            old, new = env.get("old_name"), env.get("new_name")
            if isinstance(old, str) and isinstance(new, str) and not env.get("raise_if_both_names"):
                renames[old] = new
        fn = fn.__wrapped__
    return renames
