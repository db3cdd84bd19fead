"""transformers' `ModelOutput` dataclasses built inside a compiled function are modelled from
their fields (no graph break): attributes, `out[name]` (KeyError for a None field, as
eager), `out[i]`/slices through `to_tuple()`, `len`, iteration, `isinstance`; returned, the
object is the real class built again with the same fields. Subclasses that override the
mapping behaviour, or a lone non-tensor first field, are built natively (a break)."""

from __future__ import annotations

import dataclasses
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal

transformers = pytest.importorskip("transformers")
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils.generic import ModelOutput


@dataclasses.dataclass
class Overriding(ModelOutput):
    a: torch.Tensor | None = None
    b: torch.Tensor | None = None

    def __getitem__(self, k: Any) -> Any:
        return "overridden"


def build(x: torch.Tensor) -> Any:
    return BaseModelOutputWithPooling(last_hidden_state=x * 2, pooler_output=x.sum(0))


def uses(x: torch.Tensor) -> Any:
    out = BaseModelOutputWithPooling(last_hidden_state=x * 2, pooler_output=x.sum(0))
    first = out[0] + out["pooler_output"]
    try:
        out["hidden_states"]  # a None field is not in the mapping
        missing = 0
    except KeyError:
        missing = 1
    return (
        first,
        out.last_hidden_state,
        out.hidden_states,
        len(out),
        list(out),
        out.to_tuple()[1:],
        isinstance(out, BaseModelOutputWithPooling),
        out.get("attentions", 7),
        missing,
    )


def test_modelled_reads_equal_eager_without_a_break() -> None:
    x = torch.randn(3, 4)
    cnt = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(uses, backend=cnt)(x), uses(x))
    assert cnt.frame_count == 1
    assert ferrodyn.explain(uses)(x).graph_break_count == 0


def test_missing_attribute_is_an_attribute_error() -> None:
    # transformers' output capturing asks hasattr(outputs, "vision_hidden_states").
    def f(x: torch.Tensor) -> Any:
        out = BaseModelOutputWithPooling(last_hidden_state=x * 2)
        try:
            getattr(out, "no_such_field")  # noqa: B009 - the lookup itself is the test
        except AttributeError as e:
            msg = str(e)
        return (
            out.last_hidden_state + hasattr(out, "vision_hidden_states"),
            hasattr(out, "last_hidden_state"),
            hasattr(out, "pooler_output"),
            msg,
        )

    x = torch.randn(2)
    cnt = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(f, backend=cnt, fullgraph=True)(x), f(x))
    assert cnt.frame_count == 1


def test_returned_model_output_is_the_real_class() -> None:
    x = torch.randn(3, 4)
    out = ferrodyn.compile(build, backend="eager")(x)
    ref = build(x)
    assert type(out) is BaseModelOutputWithPooling
    assert list(out.keys()) == list(ref.keys())
    assert_tree_equal(out.to_tuple(), ref.to_tuple())
    assert out.hidden_states is None


def test_overriding_subclass_is_built_natively() -> None:
    def f(x: torch.Tensor) -> Any:
        o = Overriding(a=x + 1)
        return o["a"], o.a

    x = torch.randn(2)
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x), f(x))


def test_lone_non_tensor_first_field_is_built_natively() -> None:
    def f(x: torch.Tensor) -> Any:
        o = BaseModelOutputWithPooling([("last_hidden_state", x + 1)])
        return o.last_hidden_state, len(o)

    x = torch.randn(2)
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x), f(x))


def _counted(fn: Any, *args: Any) -> tuple[Any, int, int]:
    cnt = ferrodyn.testing.CompileCounter()
    out = ferrodyn.compile(fn, backend=cnt)(*args)
    ferrodyn.reset()
    exp = ferrodyn.explain(fn)(*args)
    return out, cnt.frame_count, exp.graph_break_count


def test_views_of_the_mapping_without_a_break() -> None:
    # `{k: v for k, v in out.items()}` (transformers' backbone utils): OrderedDict's live
    # views, also when they leave the function (odict_keys / odict_items of the result).
    def f(x: torch.Tensor) -> Any:
        o = BaseModelOutputWithPooling(last_hidden_state=x + 1)
        keys = o.keys()
        o["pooler_output"] = x.sum()
        d = {k: v for k, v in o.items()}
        return d, list(keys), [v * 2 for v in o.values()], len(o.items()), keys, o.items()

    x = torch.randn(3)
    out, graphs, breaks = _counted(f, x)
    ref = f(x)
    assert (graphs, breaks) == (1, 0)
    assert [type(a) for a in out] == [type(a) for a in ref]
    assert_tree_equal(out[:4], ref[:4])
    assert list(out[4]) == list(ref[4]) == ["last_hidden_state", "pooler_output"]
    assert [k for k, _ in out[5]] == [k for k, _ in ref[5]]


@pytest.mark.parametrize(
    "first",
    [
        lambda x: (x, x + 1),  # a tuple of tensors is stored as it is
        lambda x: (),  # an empty tuple: the field ends up None
        lambda x: None,
        lambda x: ((1, x),),  # pairs whose key is not a str: stored as it is
    ],
    ids=["tensors", "empty", "none", "int_keys"],
)
def test_lone_first_field_post_init_without_a_break(first: Any) -> None:
    from transformers.modeling_outputs import BackboneOutput

    def f(x: torch.Tensor) -> Any:
        o = BackboneOutput(feature_maps=first(x))
        return o, o.feature_maps, len(o)

    x = torch.randn(2)
    out, _graphs, breaks = _counted(f, x)
    ref = f(x)
    assert breaks == 0
    assert_tree_equal(out[1:], ref[1:])
    assert list(out[0].keys()) == list(ref[0].keys())
    assert repr(out[0]) == repr(ref[0])


def test_changes_to_a_model_output_from_the_inputs_are_replayed() -> None:
    # `out[k] = v` and `out.k = v` on a ModelOutput the function received (a resume
    # function gets the one its frame built): ModelOutput.__setitem__/__setattr__ traced,
    # OrderedDict's own item store on a mirror, replayed with OrderedDict's methods.
    def change(o: Any, x: torch.Tensor) -> Any:
        o["hidden_states"] = (x * 2,)
        o.attentions = (x,)
        o.last_hidden_state = o.last_hidden_state + 1
        return o, list(o.keys()), o.hidden_states

    x = torch.randn(3)
    mine = BaseModelOutputWithPooling(last_hidden_state=torch.ones(3))
    theirs = BaseModelOutputWithPooling(last_hidden_state=torch.ones(3))
    cnt = ferrodyn.testing.CompileCounter()
    got = ferrodyn.compile(change, backend=cnt)(mine, x)
    ref = change(theirs, x)
    assert got[0] is mine
    assert_tree_equal(got[1:], ref[1:])
    assert repr(mine) == repr(theirs)
    assert list(mine.items()).__repr__() == list(theirs.items()).__repr__()
    assert mine.__dict__.keys() == theirs.__dict__.keys()
    # OrderedDict's own order bookkeeping is intact
    mine.move_to_end("last_hidden_state")
    theirs.move_to_end("last_hidden_state")
    assert list(reversed(mine)) == list(reversed(theirs))
    ferrodyn.reset()
    fresh = BaseModelOutputWithPooling(last_hidden_state=torch.ones(3))
    assert ferrodyn.explain(change)(fresh, x).graph_break_count == 0
