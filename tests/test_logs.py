"""FERRODYN_LOGS / ferrodyn.set_logs: parsing, and each artifact logging through `logging`."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import ferrodyn
import pytest
import torch

# ferrodyn's own API: skipped when the suite runs against the torch.compile stand-in.
_OWN_API = "not in the torch.compile stand-in"
logs = pytest.importorskip("ferrodyn.logs", reason=_OWN_API)
observe = pytest.importorskip("ferrodyn.observe", reason=_OWN_API)

LogsOn = Callable[..., pytest.LogCaptureFixture]


def line_of(marker: str) -> int:
    lines = Path(__file__).read_text().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return hits[0]


@pytest.fixture
def logs_on(caplog: pytest.LogCaptureFixture) -> Iterator[LogsOn]:
    """`logs_on("graph_breaks")` selects artifacts and returns caplog, which sees them (the
    `ferrodyn` logger does not propagate to the root while logs are on)."""
    root = logging.getLogger("ferrodyn")
    root.addHandler(caplog.handler)

    def on(spec: str = "", **kw: bool | int) -> pytest.LogCaptureFixture:
        ferrodyn.set_logs(spec, **kw)
        caplog.clear()
        return caplog

    try:
        yield on
    finally:
        ferrodyn.set_logs()
        root.removeHandler(caplog.handler)


def records(caplog: pytest.LogCaptureFixture, artifact: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == f"ferrodyn.{artifact}"]


def add_mul(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) * 2


def with_crc(x: torch.Tensor) -> torch.Tensor:
    a = x + 1
    n = zlib.crc32(b"logs")  # crc-call
    return a * n


# --------------------------------------------------------------------------- parsing


def test_parse() -> None:
    assert logs.parse("graph_breaks, recompiles") == (
        frozenset({"graph_breaks", "recompiles"}),
        frozenset(),
    )
    assert logs.parse("+guards,graph") == (frozenset({"guards", "graph"}), frozenset({"guards"}))
    assert logs.parse("all") == (frozenset(logs.ARTIFACTS), frozenset())
    assert logs.parse("+all") == (frozenset(logs.ARTIFACTS), frozenset(logs.ARTIFACTS))
    assert logs.parse("") == (frozenset(), frozenset())


def test_parse_unknown_raises_naming_it() -> None:
    with pytest.raises(ValueError, match="'bogus'.*graph_breaks"):
        logs.parse("graph_breaks,bogus")
    with pytest.raises(ValueError, match="'bogus'"):
        ferrodyn.set_logs("bogus")


def test_env_unknown_names_ignored_with_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(logs.ENV_VAR, "recompiles,bogus,+nope,+guards")
    try:
        logs._init_from_env()
        err = capsys.readouterr().err
        assert "FERRODYN_LOGS" in err and "'bogus'" in err and "'+nope'" in err
        assert "ignored" in err
        assert logs.enabled("recompiles") and logs.enabled("guards")
        assert not logs.enabled("graph_breaks")
    finally:
        ferrodyn.set_logs()


def test_set_logs_keywords() -> None:
    try:
        ferrodyn.set_logs(graph_breaks=True, guards=logging.DEBUG)
        assert logs.enabled("graph_breaks") and logs.enabled("guards")
        assert not logs.enabled("recompiles")
        assert logging.getLogger("ferrodyn.guards").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("ferrodyn.graph_breaks").isEnabledFor(logging.DEBUG)
        ferrodyn.set_logs(all=True)
        assert all(logs.enabled(a) for a in logs.ARTIFACTS)
        ferrodyn.set_logs("recompiles", graph=True)  # a string and keywords together
        assert logs.enabled("recompiles") and logs.enabled("graph")
        assert not logs.enabled("guards")
        with pytest.raises(TypeError):
            ferrodyn.set_logs(graph="yes")  # type: ignore[arg-type]
    finally:
        ferrodyn.set_logs()
    assert not any(logs.enabled(a) for a in logs.ARTIFACTS)


def test_logs_off_listen_to_nothing() -> None:
    ferrodyn.set_logs("graph_breaks")
    assert observe.active()
    ferrodyn.set_logs("bytecode")  # not an observed artifact
    assert not observe.active()
    ferrodyn.set_logs()
    assert not observe.active()


# --------------------------------------------------------------------------- each artifact


def test_graph_breaks(logs_on: LogsOn) -> None:
    caplog = logs_on("graph_breaks")
    ferrodyn.compile(with_crc, backend="eager")(torch.randn(3))
    msgs = records(caplog, "graph_breaks")
    assert len(msgs) >= 1, caplog.text
    msg = msgs[0]
    assert "zlib.crc32" in msg
    assert f"{__file__}:{line_of('crc-call')} in with_crc" in msg
    assert 'n = zlib.crc32(b"logs")' in msg
    # Logged once, not also by the runtime's own message.
    assert sum("zlib.crc32" in m for m in msgs) == 1, msgs


def test_recompiles_say_which_guard_failed(logs_on: LogsOn) -> None:
    caplog = logs_on("recompiles")
    f = ferrodyn.compile(add_mul, backend="eager")
    f(torch.randn(3, 2))
    assert records(caplog, "recompiles") == []
    f(torch.randn(4, 2))
    msgs = records(caplog, "recompiles")
    assert len(msgs) == 2, msgs
    assert "add_mul" in msgs[0]
    assert "x.shape: [3, 2] -> [4, 2]" in msgs[0]
    # The size change makes that dimension dynamic (automatic dynamic shapes), and says so.
    assert "x dimension(s) [0] are now dynamic" in msgs[1]


def test_guards(logs_on: LogsOn) -> None:
    caplog = logs_on("guards")
    ferrodyn.compile(add_mul, backend="eager")(torch.randn(3, 2))
    msgs = records(caplog, "guards")
    assert len(msgs) == 1, msgs
    assert msgs[0].startswith("guards for add_mul:")
    assert "x: tensor(float32, cpu, size=[3, 2]" in msgs[0]


def test_graph(logs_on: LogsOn) -> None:
    caplog = logs_on("graph")
    ferrodyn.compile(add_mul, backend="eager")(torch.randn(3, 2))
    msgs = records(caplog, "graph")
    assert len(msgs) == 1, msgs
    assert msgs[0].startswith("graph for add_mul (2 ops):")
    assert "class GraphModule(torch.nn.Module):" in msgs[0]
    assert "def forward(" in msgs[0]


def test_bytecode(logs_on: LogsOn) -> None:
    caplog = logs_on("bytecode")
    logs.log("bytecode", "resume function %s", "__resume_f_at_10")
    logs.log_code("glue for add_mul", add_mul.__code__)
    msgs = records(caplog, "bytecode")
    assert msgs[0] == "resume function __resume_f_at_10"
    assert msgs[1].startswith("glue for add_mul\n")
    assert "RETURN_VALUE" in msgs[1]


def test_debug_only_with_plus(logs_on: LogsOn) -> None:
    caplog = logs_on("guards")
    ferrodyn.logs.debug("guards", "%s", "detail")
    assert records(caplog, "guards") == []
    caplog = logs_on("+guards")
    ferrodyn.logs.debug("guards", "%s", "detail")
    assert records(caplog, "guards") == ["detail"]


def test_selection_only(logs_on: LogsOn) -> None:
    caplog = logs_on("recompiles")
    f = ferrodyn.compile(with_crc, backend="eager")
    f(torch.randn(3))
    ferrodyn.compile(add_mul, backend="eager")(torch.randn(3))
    ours = [r for r in caplog.records if r.name.startswith("ferrodyn")]
    assert {r.name for r in ours} <= {"ferrodyn.recompiles"}
    assert ours == []


def test_nothing_logged_when_off(logs_on: LogsOn) -> None:
    caplog = logs_on("")
    ferrodyn.compile(with_crc, backend="eager")(torch.randn(3))
    logs.log("graph_breaks", "x")
    # (torch's own trace log, `torch.__trace`, reaches pytest's handlers directly.)
    assert [r for r in caplog.records if r.name.startswith("ferrodyn")] == []
