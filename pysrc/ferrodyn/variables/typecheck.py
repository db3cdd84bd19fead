"""`is_a(obj, cls)`: an isinstance that asks only the object's real type.

`isinstance` falls back to `obj.__class__` when the real type does not match, which runs a
user `__getattribute__` or `__class__` property. Code that classifies user objects while
tracing must never run user code, so it uses this instead."""

from __future__ import annotations

from typing import Any


def is_a(obj: object, cls: Any) -> bool:
    return issubclass(type(obj), cls)
