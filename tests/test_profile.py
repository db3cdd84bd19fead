"""The compile-time profiler: `ferrodyn.profile` and `python -m ferrodyn profile`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import ferrodyn
import pytest
import torch

# ferrodyn's own API: skipped when the suite runs against the torch.compile stand-in.
_OWN_API = "not in the torch.compile stand-in"
observe = pytest.importorskip("ferrodyn.observe", reason=_OWN_API)
fprofile = pytest.importorskip("ferrodyn.profile", reason=_OWN_API)
GraphBuilder = pytest.importorskip("ferrodyn.graph", reason=_OWN_API).GraphBuilder
PHASES = fprofile.PHASES
Profiler = fprofile.Profiler
ProfileResult = fprofile.ProfileResult
profile = fprofile.profile

PYSRC = str(Path(ferrodyn.__file__).resolve().parent.parent)


def _breaks(x: torch.Tensor) -> torch.Tensor:
    y = x.sin() + 1
    n = zlib.crc32(b"ferrodyn")  # not traceable: graph break
    return y.cos() * (n % 7)


def _scale(x: torch.Tensor, k: int) -> torch.Tensor:
    return x * k + 1


def _profile_break_and_recompile() -> ProfileResult:
    broken = ferrodyn.compile(_breaks, backend="eager")
    scaled = ferrodyn.compile(_scale, backend="eager")
    with Profiler() as prof:
        broken(torch.randn(4))
        scaled(torch.randn(4), 2)
        scaled(torch.randn(4), 3)  # a new constant: recompiles
    return prof.result


def test_break_and_recompile_recorded() -> None:
    res = _profile_break_and_recompile()
    assert len(res.breaks) == 1
    b = res.breaks[0]
    assert "zlib.crc32" in b.reason
    assert b.file == __file__ and b.function == "_breaks"
    assert "zlib.crc32" in b.source
    assert len(res.recompiles) == 1
    rc = res.recompiles[0]
    assert rc.fn == "_scale" and any("k" in r for r in rc.reasons)

    fns = [f.fn for f in res.frames]
    assert fns.count("_scale") == 2
    assert "_breaks" in fns and any(fn.startswith("__resume__breaks") for fn in fns)
    first = next(f for f in res.frames if f.fn == "_breaks")
    assert first.breaks and first.breaks[0] is b
    assert first.file == __file__ and first.line > 0
    recompiled = [f for f in res.frames if f.fn == "_scale"][1]
    assert recompiled.recompile_reasons == rc.reasons
    assert res.graph_count >= 3 and res.op_count >= 3
    for f in res.frames:
        assert f.trace_s >= 0 and f.backend_s >= 0 and f.guards_s >= 0 and f.graph_s >= 0
        assert 0 <= f.fake_fx_s <= f.trace_s and 0 <= f.setup_s <= f.trace_s
        assert f.end >= f.start
        assert f.traced_ok and not f.eager
    with_graphs = [f for f in res.frames if f.graphs]
    assert with_graphs and all(f.backend == "eager" for f in with_graphs)
    assert all(f.guard_count > 0 for f in res.frames)

    totals = res.totals()
    assert set(totals) == set(PHASES)
    assert all(v >= 0 for v in totals.values())
    assert res.wall_s >= res.compile_s - 1e-6


def test_summary_text() -> None:
    res = _profile_break_and_recompile()
    text = res.summary(top=5)
    assert "frame compilation(s)" in text
    assert "phases: trace" in text and "backend" in text
    assert "Top " in text and "_scale" in text
    assert "Graph breaks (1, 1 distinct):" in text and "zlib.crc32" in text
    assert "Recompiles (1):" in text
    assert str(res) == res.summary()
    assert "Top " not in ProfileResult([], [], [], [], 0.0, 1.0).summary()


def test_chrome_trace_valid(tmp_path: Path) -> None:
    res = _profile_break_and_recompile()
    path = tmp_path / "trace.json"
    res.export_chrome_trace(str(path))
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    assert isinstance(events, list) and events
    for e in events:
        assert {"name", "ph", "pid", "tid"} <= set(e), e
        assert e["ph"] in ("X", "M", "i")
        if e["ph"] == "X":
            assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float))
            assert e["ts"] >= 0 and e["dur"] >= 0
        if e["ph"] == "i":
            assert e["ts"] >= 0 and e["s"] in ("t", "p", "g")
    complete = [e for e in events if e["ph"] == "X"]
    names = {e["name"] for e in complete}
    cats = {e.get("cat") for e in complete}
    assert {"profile", "_breaks", "_scale", "trace", "guards", "backend: eager"} <= names
    assert {"session", "frame", "trace", "backend", "guards"} <= cats
    assert sum(1 for e in complete if e.get("cat") == "frame") == len(res.frames)
    assert any(e["name"] == "graph break" for e in events)
    assert any(e["name"] == "recompile" for e in events)
    # Phases sit inside their frame (nesting is what chrome://tracing draws).
    frames = [e for e in complete if e.get("cat") == "frame"]
    for e in complete:
        if e.get("cat") in ("trace", "graph", "backend", "guards"):
            assert any(
                f["ts"] <= e["ts"] + 1e-3 and e["ts"] + e["dur"] <= f["ts"] + f["dur"] + 1e-3
                for f in frames
            ), e


def test_profile_function_api() -> None:
    stream = io.StringIO()

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) + 1

    x = torch.randn(3)
    res = profile(f, x, backend="eager")
    assert torch.equal(res.result, torch.relu(x) + 1)
    assert [fr.fn for fr in res.frames] == ["test_profile_function_api.<locals>.f"]

    # An already compiled callable is called as is; progress lines go to the stream.
    compiled = ferrodyn.compile(torch.nn.Linear(3, 2), backend="eager")
    res = profile(compiled, x.reshape(1, 3), progress=True)
    assert res.result.shape == (1, 2)
    assert len(res.frames) == 1 and res.frames[0].fn == "Linear.forward"
    with Profiler(progress=True, stream=stream) as prof:
        compiled(torch.randn(2, 3))  # a new shape: recompiles
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "Linear.forward" in lines[0] and "recompile" in lines[0]
    assert len(prof.result.frames) == 1


def test_eager_frames_and_backend_failure() -> None:
    def skipped(x: torch.Tensor) -> torch.Tensor:
        return torch.tensor(zlib.crc32(b"x")) + x  # breaks before any op

    def failing_backend(gm: torch.fx.GraphModule, inputs: list) -> object:
        raise RuntimeError("backend exploded")

    # A backend failure raises by default; with suppress_errors the frame runs eagerly.
    failing = ferrodyn.compile(_scale, backend=failing_backend)
    with Profiler() as prof, ferrodyn.config.patch(suppress_errors=True):
        ferrodyn.compile(skipped, backend="eager")(torch.randn(2))
        with pytest.warns(ferrodyn.exc.BackendCompilerFailedWarning):
            failing(torch.randn(2), 2)
    res = prof.result
    failed = [f for f in res.frames if f.fn == "_scale"]
    assert len(failed) == 1 and not failed[0].backend_ok and failed[0].eager
    assert failed[0].backend == "failing_backend"
    assert res.breaks and all(f.end >= f.start for f in res.frames)


def test_profiler_is_zero_cost_when_off() -> None:
    orig = GraphBuilder.__dict__["_record"]
    with Profiler():
        assert GraphBuilder.__dict__["_record"] is not orig
        with Profiler():  # nesting keeps the wrappers until the outer one stops
            pass
        assert GraphBuilder.__dict__["_record"] is not orig
    assert GraphBuilder.__dict__["_record"] is orig
    assert not observe.active()
    prof = Profiler()
    with pytest.raises(RuntimeError):
        prof.stop()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": PYSRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("FERRODYN_LOGS", None)
    return subprocess.run(
        [sys.executable, "-m", "ferrodyn", "profile", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_script(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """\
            import sys
            import zlib

            import torch

            import ferrodyn

            def step(x):
                y = x * 2
                n = zlib.crc32(b"abc")
                return y + n

            assert __name__ == "__main__"
            print("args:", sys.argv[1:])
            f = ferrodyn.compile(step, backend="eager")
            f(torch.randn(3))
            f(torch.randn(5))
            """
        )
    )
    trace = tmp_path / "out.json"
    r = _cli("--trace", str(trace), "--top", "3", "train.py", "--lr", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "args: ['--lr', '1']" in r.stdout
    # The second call recompiles and breaks again at the same place: one line, counted.
    assert "ferrodyn profile:" in r.stdout and "Graph breaks (2, 1 distinct):" in r.stdout
    assert "2x train.py:10 in step" in r.stdout
    assert "train.py:10" in r.stdout and "zlib.crc32" in r.stdout
    assert "[ferrodyn profile" in r.stderr and "step (train.py:8)" in r.stderr
    assert json.loads(trace.read_text())["traceEvents"]


def _main(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """`python -m ferrodyn profile ...` in this process (the script too)."""
    from ferrodyn.__main__ import main

    monkeypatch.chdir(cwd)
    try:
        return main(["profile", *args])
    except SystemExit as e:  # usage errors
        return int(e.code or 0)


def test_cli_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ok.py").write_text(
        "import torch, ferrodyn\nferrodyn.compile(lambda x: x + 1, backend='eager')(torch.ones(2))\n"
    )
    argv, path0 = list(sys.argv), sys.path[0]
    assert _main("--quiet", "ok.py", cwd=tmp_path, monkeypatch=monkeypatch) == 0
    out, err = capsys.readouterr()
    assert "ferrodyn profile: 1 frame compilation(s)" in out and "[ferrodyn profile" not in err
    assert sys.argv == argv and sys.path[0] == path0

    (tmp_path / "bad.py").write_text("import sys\nprint('ran')\nsys.exit(3)\n")
    assert _main("bad.py", cwd=tmp_path, monkeypatch=monkeypatch) == 3
    out, _ = capsys.readouterr()
    assert "ran" in out and "ferrodyn profile: 0 frame compilation(s)" in out

    (tmp_path / "boom.py").write_text("raise ValueError('boom')\n")
    assert _main("boom.py", cwd=tmp_path, monkeypatch=monkeypatch) == 1
    out, err = capsys.readouterr()
    assert "ValueError: boom" in err and "ferrodyn profile:" in out

    for bad_usage in (
        [],
        ["missing.py"],
        ["--top", "-1", "ok.py"],
        ["--backend", "eager", "ok.py"],
    ):
        assert _main(*bad_usage, cwd=tmp_path, monkeypatch=monkeypatch) == 2
    assert not observe.active()


def test_cli_demo_eager(tmp_path: Path) -> None:
    trace = tmp_path / "demo.json"
    r = _cli("--demo", "--backend", "eager", "--layers", "1", "--trace", str(trace), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "TinyTransformer.forward" in r.stdout
    assert "Recompiles (1):" in r.stdout
    assert "MISMATCH" not in r.stdout
    assert r.stderr.count("[ferrodyn profile") == 2
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(e["name"] == "backend: eager" for e in events)
