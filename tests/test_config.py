"""ferrodyn.config: names and values are checked when set, and patch() changes them for a
block or a function call."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import ferrodyn
import pytest
import torch

# ferrodyn's own settings API; the torch.compile stand-in has only recompile_limit.
pytestmark = pytest.mark.ferrodyn_contract

PYSRC = str(Path(__file__).resolve().parents[1] / "pysrc")

DEFAULTS = {
    "recompile_limit": 8,
    "strict": False,
    "max_inline_depth": 64,
    "suppress_errors": False,
    "capture_scalar_outputs": False,
}


@pytest.fixture(autouse=True)
def _restore_settings() -> Any:
    saved = {name: getattr(ferrodyn.config, name) for name in DEFAULTS}
    yield
    for name, value in saved.items():
        setattr(ferrodyn.config, name, value)


def settings() -> dict[str, Any]:
    return {name: getattr(ferrodyn.config, name) for name in DEFAULTS}


# --------------------------------------------------------------------------- names


def test_defaults() -> None:
    assert settings() == DEFAULTS


def test_dir_lists_every_setting() -> None:
    assert set(DEFAULTS) <= set(dir(ferrodyn.config))


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("recompile_limt", "recompile_limit"),
        ("supress_errors", "suppress_errors"),
        ("max_inline_dept", "max_inline_depth"),
        ("capture_scalar_output", "capture_scalar_outputs"),
        ("strcit", "strict"),
    ],
)
def test_unknown_name_on_set_suggests_the_closest(typo: str, meant: str) -> None:
    with pytest.raises(AttributeError) as info:
        setattr(ferrodyn.config, typo, 4)
    msg = str(info.value)
    assert repr(typo) in msg and repr(meant) in msg, msg
    assert typo not in vars(ferrodyn.config)
    assert settings() == DEFAULTS


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("recompile_limt", "recompile_limit"), ("suppres_errors", "suppress_errors")],
)
def test_unknown_name_on_get_suggests_the_closest(typo: str, meant: str) -> None:
    with pytest.raises(AttributeError) as info:
        getattr(ferrodyn.config, typo)
    msg = str(info.value)
    assert repr(typo) in msg and repr(meant) in msg, msg
    assert not hasattr(ferrodyn.config, typo)


def test_unknown_name_without_close_match_lists_the_settings() -> None:
    with pytest.raises(AttributeError) as info:
        ferrodyn.config.zzz_nothing_like_it = 1
    msg = str(info.value)
    assert "zzz_nothing_like_it" in msg
    assert all(name in msg for name in DEFAULTS), msg


def test_import_of_unknown_name_is_import_error() -> None:
    with pytest.raises(ImportError, match="recompile_limt"):
        from ferrodyn.config import recompile_limt  # type: ignore[attr-defined]  # noqa: F401


def test_functions_of_the_module_are_not_settings() -> None:
    with pytest.raises(AttributeError, match="patch"):
        ferrodyn.config.patch = None  # type: ignore[assignment]
    assert callable(ferrodyn.config.patch)


def test_settings_cannot_be_deleted() -> None:
    with pytest.raises(AttributeError, match="strict"):
        del ferrodyn.config.strict
    assert ferrodyn.config.strict is False


def test_monkeypatch_setattr_is_validated_and_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ferrodyn.config, "suppress_errors", True)
    assert ferrodyn.config.suppress_errors is True
    with pytest.raises(TypeError):
        monkeypatch.setattr(ferrodyn.config, "strict", "yes")
    monkeypatch.undo()
    assert settings() == DEFAULTS


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("name", ["recompile_limit", "max_inline_depth"])
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (-1, ValueError),
        (0, ValueError),
        (2**64, ValueError),
        (None, TypeError),
        (True, TypeError),
        (False, TypeError),
        (2.0, TypeError),
        ("8", TypeError),
    ],
    ids=["negative", "zero", "huge", "None", "True", "False", "float", "str"],
)
def test_positive_int_settings_reject_bad_values(name: str, bad: object, error: type) -> None:
    with pytest.raises(error) as info:
        setattr(ferrodyn.config, name, bad)
    msg = str(info.value)
    assert name in msg and repr(bad) in msg and "int >= 1" in msg, msg
    assert settings() == DEFAULTS


@pytest.mark.parametrize("name", ["strict", "suppress_errors", "capture_scalar_outputs"])
@pytest.mark.parametrize("bad", [1, 0, "yes", None, 1.0], ids=["1", "0", "str", "None", "float"])
def test_bool_settings_reject_non_bools(name: str, bad: object) -> None:
    with pytest.raises(TypeError) as info:
        setattr(ferrodyn.config, name, bad)
    msg = str(info.value)
    assert name in msg and repr(bad) in msg and "bool" in msg, msg
    assert settings() == DEFAULTS


def test_valid_values_are_accepted() -> None:
    ferrodyn.config.recompile_limit = 1
    ferrodyn.config.max_inline_depth = 1000
    ferrodyn.config.strict = True
    ferrodyn.config.suppress_errors = True
    ferrodyn.config.capture_scalar_outputs = True
    assert settings() == {
        "recompile_limit": 1,
        "strict": True,
        "max_inline_depth": 1000,
        "suppress_errors": True,
        "capture_scalar_outputs": True,
    }


# --------------------------------------------------------------------------- patch


def test_patch_as_context_manager_restores() -> None:
    with ferrodyn.config.patch(suppress_errors=True, recompile_limit=2):
        assert ferrodyn.config.suppress_errors is True
        assert ferrodyn.config.recompile_limit == 2
    assert settings() == DEFAULTS


def test_patch_name_value_and_dict_forms() -> None:
    with ferrodyn.config.patch("recompile_limit", 3):
        assert ferrodyn.config.recompile_limit == 3
    with ferrodyn.config.patch({"strict": True, "max_inline_depth": 5}):
        assert ferrodyn.config.strict is True
        assert ferrodyn.config.max_inline_depth == 5
    assert settings() == DEFAULTS


def test_patch_restores_values_set_before_it() -> None:
    ferrodyn.config.recompile_limit = 5
    with ferrodyn.config.patch(recompile_limit=2):
        pass
    assert ferrodyn.config.recompile_limit == 5


def test_patch_restores_on_exception() -> None:
    with pytest.raises(KeyError), ferrodyn.config.patch(strict=True, recompile_limit=2):
        raise KeyError("inside")
    assert settings() == DEFAULTS


def test_patch_nests() -> None:
    with ferrodyn.config.patch(recompile_limit=2):
        with ferrodyn.config.patch(recompile_limit=3, strict=True):
            assert ferrodyn.config.recompile_limit == 3
            assert ferrodyn.config.strict is True
        assert ferrodyn.config.recompile_limit == 2
        assert ferrodyn.config.strict is False
    assert settings() == DEFAULTS


def test_patch_as_decorator() -> None:
    seen = []

    @ferrodyn.config.patch(suppress_errors=True)
    def probe(a: int, *, b: int) -> int:
        """Doc."""
        seen.append(ferrodyn.config.suppress_errors)
        return a + b

    assert ferrodyn.config.suppress_errors is False  # decorating changes nothing yet
    assert probe(1, b=2) == 3
    assert probe(3, b=4) == 7
    assert seen == [True, True]
    assert probe.__name__ == "probe" and probe.__doc__ == "Doc."
    assert ferrodyn.config.suppress_errors is False


def test_patch_decorator_restores_on_exception_and_is_reentrant() -> None:
    @ferrodyn.config.patch(recompile_limit=2)
    def recurse(n: int) -> int:
        assert ferrodyn.config.recompile_limit == 2
        if n == 0:
            raise ValueError("bottom")
        return recurse(n - 1)

    ferrodyn.config.recompile_limit = 6
    with pytest.raises(ValueError, match="bottom"):
        recurse(3)
    assert ferrodyn.config.recompile_limit == 6


def test_same_patch_object_used_twice() -> None:
    p = ferrodyn.config.patch(strict=True)
    with p:
        assert ferrodyn.config.strict is True
    assert ferrodyn.config.strict is False
    with p:
        assert ferrodyn.config.strict is True
    assert ferrodyn.config.strict is False


def test_patch_checks_names_up_front() -> None:
    with pytest.raises(AttributeError, match="'recompile_limt'.*'recompile_limit'"):
        ferrodyn.config.patch(recompile_limit=2, recompile_limt=3)
    assert settings() == DEFAULTS
    ran = []
    with pytest.raises(AttributeError, match="'supress_errors'.*'suppress_errors'"):

        @ferrodyn.config.patch("supress_errors", True)
        def never() -> None:
            ran.append(1)

    assert not ran


@pytest.mark.parametrize(
    "changes",
    [
        {"recompile_limit": 0},
        {"strict": "yes"},
        {"suppress_errors": True, "max_inline_depth": None},
    ],
)
def test_patch_checks_values_up_front(changes: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        ferrodyn.config.patch(**changes)
    assert settings() == DEFAULTS


def test_patch_rejects_classes_and_generators() -> None:
    with pytest.raises(TypeError):

        @ferrodyn.config.patch(strict=True)
        class C:
            pass

    with pytest.raises(TypeError):

        @ferrodyn.config.patch(strict=True)
        def gen() -> Any:
            yield ferrodyn.config.strict


def test_patch_with_no_changes_is_a_no_op() -> None:
    with ferrodyn.config.patch():
        assert settings() == DEFAULTS


# --------------------------------------------------------------------------- settings in use


def test_recompile_limit_assignment_applies_to_later_compiles() -> None:
    ferrodyn.config.recompile_limit = 3

    def fn(x: torch.Tensor, n: int) -> torch.Tensor:
        return x * n + n

    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, dynamic=False)
    x = torch.randn(4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(6):
            torch.testing.assert_close(compiled(x, n), fn(x, n))
    assert cnt.frame_count == 3
    assert sum(issubclass(w.category, ferrodyn.exc.RecompileLimitWarning) for w in caught) == 1


@ferrodyn.config.patch(recompile_limit=2)
def test_recompile_limit_from_patch_decorator() -> None:
    def fn(x: torch.Tensor, n: int) -> torch.Tensor:
        return x + n

    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, dynamic=False)
    x = torch.randn(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ferrodyn.exc.RecompileLimitWarning)
        for n in range(5):
            torch.testing.assert_close(compiled(x, n), fn(x, n))
    assert cnt.frame_count == 2


def _g(x: torch.Tensor) -> torch.Tensor:
    return x + 1


def _h(x: torch.Tensor) -> torch.Tensor:
    return _g(x) * 2


def _f(x: torch.Tensor) -> torch.Tensor:
    return _h(x) - 3


def test_max_inline_depth_is_read_by_the_tracer() -> None:
    cnt = ferrodyn.testing.CompileCounter()
    x = torch.randn(3)
    torch.testing.assert_close(ferrodyn.compile(_f, backend=cnt)(x), _f(x))
    assert cnt.frame_count == 1
    ferrodyn.reset()
    cnt = ferrodyn.testing.CompileCounter()
    with ferrodyn.config.patch(max_inline_depth=1):
        torch.testing.assert_close(ferrodyn.compile(_f, backend=cnt)(x), _f(x))
    assert cnt.frame_count > 1  # too deep to inline: the graph breaks


# --------------------------------------------------------------------------- suppress_errors_enabled


def test_suppress_errors_enabled_follows_ferrodyn_setting() -> None:
    assert ferrodyn.config.suppress_errors_enabled() is False
    with ferrodyn.config.patch(suppress_errors=True):
        assert ferrodyn.config.suppress_errors_enabled() is True
    assert ferrodyn.config.suppress_errors_enabled() is False


def test_suppress_errors_enabled_follows_loaded_dynamo_config() -> None:
    import torch._dynamo.config

    # torch's own patch(): pytest's monkeypatch.undo() deletes the setting from torch's
    # config module instead of restoring it.
    with torch._dynamo.config.patch(suppress_errors=True):
        assert ferrodyn.config.suppress_errors_enabled() is True
    assert ferrodyn.config.suppress_errors_enabled() is False


def test_suppress_errors_enabled_does_not_import_dynamo() -> None:
    code = (
        "import sys, ferrodyn\n"
        "assert ferrodyn.config.suppress_errors_enabled() is False\n"
        "print('torch._dynamo.config' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": PYSRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "False", out.stderr
