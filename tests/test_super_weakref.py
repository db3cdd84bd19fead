"""super() (checklist 76-78) and weak-reference dereference (checklist 100)."""

from __future__ import annotations

import weakref

import ferrodyn
import torch
from ferrodyn.testing import CompileCounter


class Base:
    def __init__(self) -> None:
        self.k = 2.0

    def f(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.k

    @classmethod
    def c(cls, x: torch.Tensor) -> torch.Tensor:
        return x + len(cls.__name__)

    @staticmethod
    def s(x: torch.Tensor) -> torch.Tensor:
        return x - 1


class Mid(Base):
    def f(self, x: torch.Tensor) -> torch.Tensor:
        return super().f(x) + 1


class Leaf(Mid):
    def f(self, x: torch.Tensor) -> torch.Tensor:
        return super().f(x) * 3 + super().c(x) + super().s(x)


class Left(Base):
    def f(self, x: torch.Tensor) -> torch.Tensor:
        return super().f(x) + 10


class Right(Base):
    def f(self, x: torch.Tensor) -> torch.Tensor:
        return super().f(x) + 100


class Diamond(Left, Right):
    def f(self, x: torch.Tensor) -> torch.Tensor:
        return super().f(x)


def _run(obj: Base) -> CompileCounter:
    cnt = CompileCounter()
    fn = ferrodyn.compile(lambda x: obj.f(x), backend=cnt)
    x = torch.randn(3)
    torch.testing.assert_close(fn(x), obj.f(x))
    torch.testing.assert_close(fn(x + 1), obj.f(x + 1))
    return cnt


def test_item_76_super_single_inheritance_inlined() -> None:
    assert _run(Leaf()).frame_count == 1


def test_item_77_super_follows_mro_of_type_self_in_diamond() -> None:
    assert _run(Diamond()).frame_count == 1


def test_item_78_super_classmethod_binds_type_self_and_staticmethod() -> None:
    class Named(Leaf):
        pass

    assert _run(Named()).frame_count == 1


def test_super_forward_in_module_subclass() -> None:
    class Scaled(torch.nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 2

    m = Scaled(4, 4)
    cnt = CompileCounter()
    cm = ferrodyn.compile(m, backend=cnt)
    x = torch.randn(2, 4)
    torch.testing.assert_close(cm(x), m(x))
    assert cnt.frame_count == 1


def test_item_100_weakref_deref_is_guarded_through_referent() -> None:
    class Holder:
        pass

    a, b = Holder(), Holder()
    a.scale, b.scale = 2.0, 5.0
    ref = weakref.ref(a)
    cnt = CompileCounter()

    def fn(x: torch.Tensor) -> torch.Tensor:
        return x * ref().scale

    cf = ferrodyn.compile(fn, backend=cnt)
    x = torch.ones(2)
    torch.testing.assert_close(cf(x), x * 2)
    assert cnt.frame_count == 1
    ref = weakref.ref(b)  # rebinds the closure variable the compiled function reads
    torch.testing.assert_close(cf(x), fn(x))
    assert cnt.frame_count == 2
