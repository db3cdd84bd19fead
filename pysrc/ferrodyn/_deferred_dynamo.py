"""Fake tensors without running `torch._dynamo`'s package `__init__` (cold start).

torch's fake-tensor machinery reaches into a few `torch._dynamo` submodules:
`FakeTensorMode.__init__` reads `torch._dynamo.config`, `ShapeEnv` imports
`torch.fx.experimental.validator` (which imports `torch._dynamo.exc`, and with it
`torch._dynamo.utils`), and fakeifying a tensor imports `torch._dynamo.source`. Importing any
of them the ordinary way first runs the package's `__init__`, which loads the whole tracer
(about 0.9 s, most of a cold first call with `backend="eager"`).

`prepare()` loads just those submodules, under their real names, beneath a stand-in for the
package, and leaves the package itself *deferred*:

* the stand-in is the very module object that becomes `torch._dynamo`: it is created from the
  package's real spec and is `torch._dynamo` (the attribute) from the start, so anything
  holding it sees the real package once that has run;
* it is not in `sys.modules`, so `"torch._dynamo" in sys.modules` keeps meaning "the package
  has run", and `import torch._dynamo` (or a submodule not yet loaded) goes to the import
  system, where a finder of ours hands the stand-in back as the module to execute the
  package's `__init__` in. The submodules loaded early are reused (same objects, so
  `torch._dynamo.config` is the config torch.compile later reads and patches);
* reading any attribute it does not have yet (anything but `config` and the module's own
  dunders), setting or deleting one, or `dir()` completes the import first, as torch's lazy
  `torch._dynamo` attribute would have.

The first fake-tensor op would still import the package through `torch._disable_dynamo`
(see the section at the end), so wrappers that exist at that point are given a pass-through
that stands down once the package is loaded.

Set `FERRODYN_DEFER_DYNAMO_IMPORT=0` to import `torch._dynamo` normally instead.
"""

from __future__ import annotations

import copy
import gc
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

import torch

_PKG = "torch._dynamo"
# What the fake-tensor machinery imports on a plain eager-backend trace; `config` is also
# read as an attribute of the package (`torch._dynamo.config.fake_tensor_cache_enabled`).
_EARLY = ("config", "exc", "source")
_KEPT = frozenset({"config"})

_lock = threading.Lock()
# `preloader`: the thread loading the early submodules (the stand-in is in sys.modules then).
_state: dict[str, Any] = {"done": False, "preloader": None}


def prepare() -> None:
    """Load the submodules fake tensors need, deferring the package (once per process)."""
    if _state["done"]:
        return
    with _lock:
        if _state["done"]:
            return
        _state["done"] = True
        if _PKG in sys.modules or "_dynamo" in vars(torch):
            return  # already imported
        if os.environ.get("FERRODYN_DEFER_DYNAMO_IMPORT", "1") == "0":
            return
        code = _disable_wrapper_code()
        if code is None:
            return  # torch's lazy disable wrapper is not the one known here: nothing to gain
        failed = _defer()
        if failed is None:
            _seed(code)
    if failed is not None:
        # An early submodule failed to load: import the package (in the stand-in, reusing
        # whatever did load), which raises that error again if it is real.
        _complete(failed)


def deferred() -> bool:
    """Whether `torch._dynamo` is the stand-in whose package `__init__` has not run yet."""
    return type(getattr(torch, "__dict__", {}).get("_dynamo")) is _Deferred


class _Deferred(types.ModuleType):
    """`torch._dynamo` before its `__init__` ran. The class is swapped back to ModuleType
    when the import completes, so none of this stays on the real package."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_complete(self), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if _state["preloader"] == threading.get_ident():
            types.ModuleType.__setattr__(self, name, value)  # the import system's own doing
        else:
            setattr(_complete(self), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(_complete(self), name)

    def __dir__(self) -> list[str]:
        return dir(_complete(self))


def _complete(stand_in: types.ModuleType) -> types.ModuleType:
    """Run the package's `__init__` (in `stand_in`); the module to ask from then on."""
    if _state["preloader"] == threading.get_ident():
        # A module loaded early asked the package for something at import time: what a
        # half-initialised package answers.
        raise AttributeError(f"partially initialized module {_PKG!r}")
    with _lock:  # another thread may be loading the early submodules
        pass
    module = importlib.import_module(_PKG)
    if type(stand_in) is _Deferred and module is not stand_in:
        return module  # the package was imported without the stand-in
    return stand_in


class _Loader(importlib.abc.Loader):
    """Executes the package's real `__init__` in the stand-in."""

    def __init__(self, stand_in: types.ModuleType, real: importlib.machinery.ModuleSpec) -> None:
        self.stand_in = stand_in
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        # (not through _Deferred.__setattr__, which would start this import again)
        types.ModuleType.__setattr__(self.stand_in, "__class__", types.ModuleType)
        return self.stand_in

    def exec_module(self, module: types.ModuleType) -> None:
        loader = self.real.loader
        assert loader is not None
        # The spec and module end up with the package's own loader, as after a plain import.
        if module.__spec__ is not None:
            module.__spec__.loader = loader
        module.__loader__ = loader
        _uninstall()
        _unseed()
        torch._dynamo = module  # type: ignore[attr-defined]
        # Submodules loaded early are attributes of the package, as if its __init__ had
        # imported them.
        prefix = _PKG + "."
        for name, sub in list(sys.modules.items()):
            child = name[len(prefix) :]
            if name.startswith(prefix) and "." not in child and sub is not None:
                vars(module).setdefault(child, sub)
        try:
            loader.exec_module(module)
        except BaseException:
            # The import system drops the failed module; a retry imports afresh.
            if vars(torch).get("_dynamo") is module:
                del torch._dynamo  # type: ignore[attr-defined]
            raise

    def __getattr__(self, name: str) -> Any:
        # get_source, get_filename, is_package, ... as the package's own loader answers
        return getattr(self.real.loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds `torch._dynamo` (and nothing else) while it is deferred."""

    def __init__(self, stand_in: types.ModuleType) -> None:
        self.stand_in = stand_in

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _PKG:
            return None
        real = _real_spec(fullname, path, target, skip=self)
        if real is None or real.loader is None:
            return None
        spec = copy.copy(real)
        spec.loader = _Loader(self.stand_in, real)
        return spec


_finders: list[_Finder] = []


def _real_spec(
    fullname: str,
    path: Sequence[str] | None,
    target: types.ModuleType | None,
    skip: object = None,
) -> importlib.machinery.ModuleSpec | None:
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        if finder is skip or find is None:
            continue
        spec = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _uninstall() -> None:
    while _finders:
        finder = _finders.pop()
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)


def _defer() -> types.ModuleType | None:
    """Load the early submodules beneath the stand-in and make it `torch._dynamo`. Returns
    the stand-in if loading them failed (it is then not installed), else None."""
    real = _real_spec(_PKG, list(torch.__path__), None)
    if real is None or real.loader is None or real.submodule_search_locations is None:
        return None
    stand_in = importlib.util.module_from_spec(real)
    stand_in.__class__ = _Deferred
    finder = _Finder(stand_in)
    sys.meta_path.insert(0, finder)
    _finders.append(finder)
    _state["preloader"] = threading.get_ident()
    sys.modules[_PKG] = stand_in
    try:
        for name in _EARLY:
            importlib.import_module(f"{_PKG}.{name}")
    except Exception:  # noqa: BLE001 - the package import in prepare() raises it again
        return stand_in
    finally:
        if sys.modules.get(_PKG) is stand_in:
            del sys.modules[_PKG]
        _state["preloader"] = None
    # The early submodules stay in sys.modules; on the stand-in only `config` stays visible,
    # so `torch._dynamo.<anything else>` completes the import as it would have started it.
    for child, value in list(vars(stand_in).items()):
        if isinstance(value, types.ModuleType) and child not in _KEPT:
            types.ModuleType.__delattr__(stand_in, child)
    torch._dynamo = stand_in  # type: ignore[attr-defined]
    return None


# -- torch._disable_dynamo ----------------------------------------------------------------
# torch wraps many of its own functions with `torch._disable_dynamo(fn)` (every dispatch
# mode's `__torch_dispatch__`, FakeTensorMode's included, and the python references fake
# tensors run as decompositions). Its wrapper imports torch._dynamo on the first call, to
# build `torch._dynamo.disable(fn)` and cache it on `fn` as `fn.__dynamo_disable`. Until
# torch._dynamo is imported no frame can be under Dynamo, so that disable wrapper would
# just call `fn`: the functions wrapped so far get a pass-through in that cache, which
# stands down as soon as torch._dynamo is loaded (all at once when the deferred import
# completes, or each on its next call if the package got loaded another way). Wrappers
# created later are left alone: their first call imports torch._dynamo, as it always did.

_CACHE = "__dynamo_disable"
_seeded: list[Any] = []


def _disable_wrapper_code() -> types.CodeType | None:
    """The code of the wrapper `torch._disable_dynamo(fn)` returns, if it caches the
    disable wrapper on `fn` under `_CACHE` as this module expects."""
    compile_mod = sys.modules.get("torch._compile")
    outer = getattr(compile_mod, "_disable_dynamo", None)
    for const in getattr(getattr(outer, "__code__", None), "co_consts", ()):
        if (
            isinstance(const, types.CodeType)
            and "fn" in const.co_freevars
            and _CACHE in const.co_names
            and _CACHE in const.co_consts
        ):
            return const
    return None


def _dynamo_loaded() -> bool:
    module = sys.modules.get(_PKG)
    return module is not None and "disable" in vars(module)


def _pass_through(fn: Any, wrapper: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        if _dynamo_loaded():
            _unseed_one(fn)
            return wrapper(*args, **kwargs)
        return fn(*args, **kwargs)

    call.ferrodyn_pass_through = True  # type: ignore[attr-defined]
    return call


def _seed(code: types.CodeType) -> None:
    index = code.co_freevars.index("fn")
    for obj in gc.get_objects():
        if type(obj) is not types.FunctionType or obj.__code__ is not code:
            continue
        closure = obj.__closure__
        if closure is None:
            continue
        try:
            fn = closure[index].cell_contents
            if _CACHE in vars(fn):
                continue
            setattr(fn, _CACHE, _pass_through(fn, obj))
        except (ValueError, TypeError, AttributeError):
            continue  # an empty cell, or an object without a __dict__
        _seeded.append(fn)


def _unseed_one(fn: Any) -> None:
    cached = vars(fn).get(_CACHE)
    if getattr(cached, "ferrodyn_pass_through", False):
        try:
            delattr(fn, _CACHE)
        except AttributeError:
            pass  # another thread got there first


def _unseed() -> None:
    while _seeded:
        _unseed_one(_seeded.pop())
