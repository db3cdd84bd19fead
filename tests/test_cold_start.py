"""Cold start (issue 13.3): a fresh process's first eager-backend compile does not import the
`torch._dynamo` package (only the few submodules fake tensors read, see
`ferrodyn._deferred_dynamo`), and importing torch._dynamo afterwards gives the complete
package: torch.compile works as usual and sees the same config object ferrodyn read."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PYSRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pysrc")

pytestmark = pytest.mark.ferrodyn_contract


def run(code: str, **extra_env: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": PYSRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **extra_env,
    }
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


FIRST_CALL = """
    import sys
    import torch
    import ferrodyn

    def fn(x):
        return torch.relu(x @ x.T) * 2 + x.sum()

    mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    x = torch.randn(4, 8)
    torch.testing.assert_close(ferrodyn.compile(fn, backend="eager")(x), fn(x))
    with torch.no_grad():
        torch.testing.assert_close(ferrodyn.compile(mlp, backend="eager")(x), mlp(x))
"""


def test_first_eager_compile_does_not_import_dynamo() -> None:
    out = run(FIRST_CALL + "    print('torch._dynamo' in sys.modules)\n")
    assert out.strip() == "False"


def test_kill_switch_imports_dynamo_as_before() -> None:
    out = run(
        FIRST_CALL + "    print('torch._dynamo' in sys.modules)\n", FERRODYN_DEFER_DYNAMO_IMPORT="0"
    )
    assert out.strip() == "True"


def test_torch_compile_after_ferrodyn_first_call() -> None:
    out = run(
        FIRST_CALL
        + """
    seen_config = sys.modules["torch._dynamo.config"]
    early = vars(torch)["_dynamo"]
    import torch._dynamo
    import torch._dynamo.testing

    # One package object from start to end, complete, with the config ferrodyn read.
    assert torch._dynamo is early is sys.modules["torch._dynamo"]
    assert type(torch._dynamo) is type(sys)
    assert torch._dynamo.config is seen_config
    assert torch._dynamo.utils is sys.modules["torch._dynamo.utils"]
    assert torch._dynamo.exc is sys.modules["torch._dynamo.exc"]
    assert torch._dynamo.__spec__.loader is torch._dynamo.__loader__
    assert type(torch._dynamo.__loader__).__name__ == "SourceFileLoader"
    assert not any(type(f).__module__.startswith("ferrodyn") for f in sys.meta_path)

    # torch.compile as usual: fullgraph, graph breaks, disabled functions, fake tensors
    # (aot_eager traces with FakeTensorMode again, now under the real disable wrapper).
    for backend in ("eager", "aot_eager"):
        torch._dynamo.reset()
        torch.testing.assert_close(torch.compile(fn, backend=backend, fullgraph=True)(x), fn(x))

    def g(x):
        y = x.sin()
        torch._dynamo.graph_break()
        return y.cos()

    cnt = torch._dynamo.testing.CompileCounter()
    torch.testing.assert_close(torch.compile(g, backend=cnt)(x), g(x))
    assert cnt.frame_count == 2, cnt.frame_count

    @torch._dynamo.disable
    def h(x):
        return x + 1

    def k(x):
        return h(x.sin()).cos()

    cnt = torch._dynamo.testing.CompileCounter()
    torch.testing.assert_close(torch.compile(k, backend=cnt)(x), k(x))
    assert cnt.frame_count == 2, cnt.frame_count

    # No pass-through is left in torch's disable caches.
    import gc
    left = [o for o in gc.get_objects()
            if type(o) is type(g) and getattr(o, "ferrodyn_pass_through", False)]
    assert not left, left

    # torch._dynamo.config.patch still reaches ferrodyn.
    assert ferrodyn.config.suppress_errors_enabled() is False
    with torch._dynamo.config.patch(suppress_errors=True):
        assert ferrodyn.config.suppress_errors_enabled() is True
    print("ok")
"""
    )
    assert out.strip().endswith("ok")


def test_dynamo_config_patch_before_package_import() -> None:
    # `import torch._dynamo.config` after ferrodyn's first call reuses the early config
    # module (the package stays deferred) and its patch() still reaches ferrodyn.
    out = run(
        FIRST_CALL
        + """
    import torch._dynamo.config
    assert "torch._dynamo" not in sys.modules
    with torch._dynamo.config.patch(suppress_errors=True):
        assert ferrodyn.config.suppress_errors_enabled() is True
    assert ferrodyn.config.suppress_errors_enabled() is False
    with torch._dynamo.config.patch(recompile_limit=1):
        def scale(x, k):
            return x * k
        compiled = ferrodyn.compile(scale, backend="eager")
        for k in range(4):
            compiled(torch.ones(2), k)
    print("ok", "torch._dynamo" in sys.modules)
"""
    )
    assert out.strip().endswith("ok False")


def test_other_package_attribute_completes_the_import() -> None:
    # Anything but `config` read from the deferred torch._dynamo imports the package first,
    # as torch's lazy attribute would have.
    out = run(
        FIRST_CALL
        + """
    assert "torch._dynamo" not in sys.modules
    reset = torch._dynamo.reset
    assert sys.modules["torch._dynamo"] is torch._dynamo
    assert reset is torch._dynamo.reset
    assert torch._dynamo.optimize is not None
    print("ok")
"""
    )
    assert out.strip() == "ok"
