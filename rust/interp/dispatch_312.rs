//! The instructions of CPython 3.12 whose meaning differs from 3.11's, or which 3.11 lacks
//! (`dispatch::step` asks here first when the linked interpreter is not 3.11). Instructions
//! that mean the same in both versions stay in `dispatch.rs`, under both names where 3.12
//! renamed them (`LOAD_FAST_CHECK`, `POP_JUMP_IF_*`).

use std::rc::Rc;

use pyo3::prelude::*;

use super::dispatch::{name, target, Flow, FrameExit};
use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::iter::iter_next;
use super::ops::{compare_op, store_subscr, subscr, unary_op};
use super::slots::load_fast;
use super::tracer::Tracer;
use super::value::Value;
use crate::bytecode::{Instruction, Opcode};

/// `CALL_INTRINSIC_1` operands (Include/internal/pycore_intrinsics.h of 3.12).
const INTRINSIC_IMPORT_STAR: u32 = 2;
const INTRINSIC_STOPITERATION_ERROR: u32 = 3;
const INTRINSIC_UNARY_POSITIVE: u32 = 5;
const INTRINSIC_LIST_TO_TUPLE: u32 = 6;

/// The 3.12 meaning of `ins`, or None where `dispatch::step`'s own handler applies.
pub(super) fn step(
    tx: &mut Tracer<'_>,
    frame: &mut Frame,
    ins: &Instruction,
) -> Option<TResult<Flow>> {
    use Opcode::*;
    let arg = ins.arg as usize;
    Some(match ins.op {
        LOAD_ATTR => load_attr(tx, frame, arg),
        LOAD_SUPER_ATTR => load_super_attr(tx, frame, arg),
        // The comparison is the argument's high bits (the low four guide specialization).
        COMPARE_OP => {
            let rhs = frame.pop();
            let lhs = frame.pop();
            compare_op(tx, arg >> 4, &lhs, &rhs).map(|v| push(frame, v))
        }
        RETURN_CONST => match frame.spec.consts.get(arg) {
            Some(c) => Ok(Flow::Return(Value::Const(c.clone_ref(tx.py)))),
            None => Err(Exit::internal("bad const index")),
        },
        // Exhausted: the iterator is popped and the END_FOR at the target is skipped.
        FOR_ITER => {
            let Some(it) = frame.top().cloned() else {
                return Some(Err(Exit::internal("empty stack")));
            };
            match iter_next(tx, &it) {
                Ok(Some(v)) => Ok(push(frame, v)),
                Ok(None) => {
                    frame.pop();
                    target(ins).map(|t| Flow::Jump(t + 1))
                }
                Err(e) => Err(e),
            }
        }
        // Reached from a generator-based FOR_ITER's return, or a jump: pops the iterator and
        // the value.
        END_FOR => {
            frame.popn(2);
            Ok(Flow::Next)
        }
        // The receiver stays below the value; a finished delegate jumps to END_SEND.
        SEND => {
            let sent = frame.pop();
            let Some(recv) = frame.top().cloned() else {
                return Some(Err(Exit::internal("SEND on an empty stack")));
            };
            match super::iter::send(tx, &recv, &sent) {
                Ok(FrameExit::Yield(v)) => Ok(push(frame, v)),
                Ok(FrameExit::Return(v)) => {
                    frame.stack.push(v);
                    target(ins).map(Flow::Jump)
                }
                Err(e) => Err(e),
            }
        }
        END_SEND => {
            let v = frame.pop();
            frame.pop();
            Ok(push(frame, v))
        }
        // A `yield from`/`await` whose delegate raised on `throw()`, the handler of its
        // paused yield: a StopIteration finishes the `yield from` with its value (the
        // delegate and the value last sent replaced by None and that value, for END_SEND);
        // any other exception is re-raised as it is.
        CLEANUP_THROW => match frame.pop() {
            Value::Exception(exc) if super::iter::is_stop_iteration(tx.py, &exc) => {
                frame.popn(2);
                let value = exc.args.borrow().first().cloned();
                frame.stack.push(Value::none(tx.py));
                Ok(push(frame, value.unwrap_or_else(|| Value::none(tx.py))))
            }
            Value::Exception(exc) => Err(Exit::Observed {
                exc,
                at: Default::default(),
            }),
            _ => Err(Exit::internal("CLEANUP_THROW without an exception")),
        },
        // An inlined comprehension saves the outer binding of its variable (NULL if unbound)
        // and unbinds it; a STORE_FAST after the loop puts it back.
        LOAD_FAST_AND_CLEAR => {
            let bound = matches!(frame.locals.get(arg), Some(Some(_)))
                || matches!(frame.pending.get(arg), Some(Some(_)));
            let saved = if bound {
                match load_fast(tx, frame, arg) {
                    Ok(v) => v,
                    Err(e) => return Some(Err(e)),
                }
            } else {
                Value::Null
            };
            if let Some(p) = frame.pending.get_mut(arg) {
                *p = None;
                frame.pending_sources.remove(&arg);
            }
            if let Some(l) = frame.locals.get_mut(arg) {
                *l = None;
            }
            Ok(push(frame, saved))
        }
        BINARY_SLICE => {
            let stop = frame.pop();
            let start = frame.pop();
            let obj = frame.pop();
            let slice = Value::Slice(Rc::new([start, stop, Value::none(tx.py)]));
            subscr(tx, &obj, &slice).map(|v| push(frame, v))
        }
        STORE_SLICE => {
            let stop = frame.pop();
            let start = frame.pop();
            let container = frame.pop();
            let value = frame.pop();
            let slice = Value::Slice(Rc::new([start, stop, Value::none(tx.py)]));
            store_subscr(tx, &container, &slice, value).map(|_| Flow::Next)
        }
        CALL_INTRINSIC_1 => intrinsic_1(tx, frame, ins.arg),
        CALL_INTRINSIC_2 => Err(Exit::brk(format!(
            "the bytecode instruction CALL_INTRINSIC_2 ({}) is not supported yet",
            ins.arg
        ))),
        LOAD_FROM_DICT_OR_DEREF | LOAD_FROM_DICT_OR_GLOBALS => Err(Exit::brk(format!(
            "the bytecode instruction {} (a class body's names) is not supported yet",
            ins.op.name()
        ))),
        _ => return None,
    })
}

fn push(frame: &mut Frame, v: Value) -> Flow {
    frame.stack.push(v);
    Flow::Next
}

/// `LOAD_ATTR`: the name is `arg >> 1`; with the low bit set it loads a method, pushing
/// NULL and the attribute (3.11's LOAD_METHOD).
fn load_attr(tx: &mut Tracer<'_>, frame: &mut Frame, arg: usize) -> TResult<Flow> {
    let obj = frame.pop();
    let n = name(frame, arg >> 1)?;
    let v = crate::interp::families::getattr(tx, &obj, &n)?;
    if arg & 1 == 1 {
        frame.stack.push(Value::Null);
    }
    Ok(push(frame, v))
}

/// `LOAD_SUPER_ATTR`: `super(class, self).name` with the three values on the stack (the
/// global `super`, the `__class__` cell's class and the first argument); name `arg >> 2`,
/// a method load when the low bit is set.
fn load_super_attr(tx: &mut Tracer<'_>, frame: &mut Frame, arg: usize) -> TResult<Flow> {
    let py = tx.py;
    let this = frame.pop();
    let cls = frame.pop();
    let global_super = frame.pop();
    let n = name(frame, arg >> 2)?;
    let is_builtin_super = match &global_super {
        Value::Object(o) => o.obj.bind(py).is(tx.hooks.super_type.bind(py)),
        Value::Const(c) => c.bind(py).is(tx.hooks.super_type.bind(py)),
        _ => false,
    };
    let sup = match (&cls, is_builtin_super) {
        (Value::Object(o), true) => Value::Super(Rc::new((o.obj.clone_ref(py), this))),
        (Value::Const(c), true) => Value::Super(Rc::new((c.clone_ref(py), this))),
        _ => crate::interp::families::call(tx, &global_super, vec![cls, this], vec![])?,
    };
    let v = crate::interp::families::getattr(tx, &sup, &n)?;
    if arg & 1 == 1 {
        frame.stack.push(Value::Null);
    }
    Ok(push(frame, v))
}

fn intrinsic_1(tx: &mut Tracer<'_>, frame: &mut Frame, which: u32) -> TResult<Flow> {
    match which {
        INTRINSIC_UNARY_POSITIVE => {
            let v = frame.pop();
            let r = unary_op(tx, Opcode::UNARY_POSITIVE, &v)?;
            Ok(push(frame, r))
        }
        INTRINSIC_LIST_TO_TUPLE => {
            let l = frame.pop();
            let items = super::iter::unpack(tx, &l)?;
            Ok(push(frame, Value::new_tuple(items)))
        }
        // A generator body's handler turns an escaping StopIteration into a RuntimeError
        // before re-raising it; leaving the frame does the same (see
        // `exceptions::leaving_generator`), so the exception passes through unchanged.
        INTRINSIC_STOPITERATION_ERROR => Ok(Flow::Next),
        INTRINSIC_IMPORT_STAR => Err(Exit::brk("an import statement")),
        n => Err(Exit::brk(format!(
            "the bytecode instruction CALL_INTRINSIC_1 ({n}) is not supported yet"
        ))),
    }
}
