//! The instructions of CPython 3.13 whose meaning differs from 3.12's, or which 3.12 lacks
//! (`dispatch::step` asks here first on 3.13, then `dispatch_312.rs`, then its own match).
//!
//! 3.13 moved the NULL of a call: `LOAD_GLOBAL`, a method `LOAD_ATTR` and `LOAD_SUPER_ATTR`
//! push it (or the receiver) *after* the callable, and `CALL` finds
//! `[callable, self or NULL, args...]`. Keyword names come as a tuple on the stack
//! (`CALL_KW`), `MAKE_FUNCTION` takes only the code (each optional part is added by a
//! `SET_FUNCTION_ATTRIBUTE`), truth tests are explicit (`TO_BOOL`, or `COMPARE_OP` with
//! bit 16), and `FORMAT_VALUE` is split in `CONVERT_VALUE`, `FORMAT_SIMPLE` and
//! `FORMAT_WITH_SPEC`. The two-slot superinstructions (`LOAD_FAST_LOAD_FAST`, ...) never
//! reach the tracer: `Decoded::split_superinstructions` rewrites them when the code is read.

use std::rc::Rc;

use pyo3::prelude::*;

use super::attrs::load_global;
use super::dispatch::{name, target, Flow};
use super::dispatch_calls::{call, call_ex, make_function, set_function_attribute};
use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::iter::iter_next;
use super::ops::{compare_op, format_value};
use super::tracer::Tracer;
use super::value::Value;
use crate::bytecode::{Instruction, Opcode};

/// The 3.13 meaning of `ins`, or None where `dispatch_312::step` or `dispatch::step`
/// applies.
pub(super) fn step(
    tx: &mut Tracer<'_>,
    frame: &mut Frame,
    ins: &Instruction,
) -> Option<TResult<Flow>> {
    use Opcode::*;
    let arg = ins.arg as usize;
    Some(match ins.op {
        LOAD_GLOBAL => load_global_313(tx, frame, arg),
        LOAD_ATTR => load_attr(tx, frame, arg),
        LOAD_SUPER_ATTR => load_super_attr(tx, frame, arg),
        // The comparison is `arg >> 5`; bit 16 converts the result to a bool (the compiler
        // sets it where a conditional jump tests the result).
        COMPARE_OP => {
            let rhs = frame.pop();
            let lhs = frame.pop();
            compare_op(tx, arg >> 5, &lhs, &rhs).and_then(|v| {
                let v = if arg & 16 != 0 { to_bool(tx, &v)? } else { v };
                Ok(push(frame, v))
            })
        }
        TO_BOOL => {
            let v = frame.pop();
            to_bool(tx, &v).map(|b| push(frame, b))
        }
        // Exhausted: the iterator is popped and the END_FOR and POP_TOP at the target are
        // skipped.
        FOR_ITER => {
            let Some(it) = frame.top().cloned() else {
                return Some(Err(Exit::internal("empty stack")));
            };
            match iter_next(tx, &it) {
                Ok(Some(v)) => Ok(push(frame, v)),
                Ok(None) => {
                    frame.pop();
                    target(ins).map(|t| Flow::Jump(t + 2))
                }
                Err(e) => Err(e),
            }
        }
        // Pops only the value (a POP_TOP after it pops the iterator).
        END_FOR => {
            frame.pop();
            Ok(Flow::Next)
        }
        CALL => {
            let args = frame.popn(arg);
            call_313(tx, frame, args, Vec::new())
        }
        // The keyword names are a constant tuple above the arguments, which they name from
        // the end; `arg` counts every argument.
        CALL_KW => {
            let names = frame.pop();
            let mut args = frame.popn(arg);
            match keyword_names(tx, &names) {
                Ok(names) if names.len() <= args.len() => {
                    let values = args.split_off(args.len() - names.len());
                    call_313(tx, frame, args, names.into_iter().zip(values).collect())
                }
                Ok(_) => Err(Exit::internal("more keyword names than arguments")),
                Err(e) => Err(e),
            }
        }
        // [callable, NULL, args, kwargs if arg & 1]
        CALL_FUNCTION_EX => {
            let kwargs = (arg & 1 == 1).then(|| frame.pop());
            let args = frame.pop();
            let _null = frame.pop();
            let func = frame.pop();
            call_ex(tx, &func, &args, kwargs).map(|v| push(frame, v))
        }
        MAKE_FUNCTION => {
            let code = frame.pop();
            make_function(tx, frame, &code, [None, None, None, None]).map(|f| push(frame, f))
        }
        // [attribute, function] -> [function with it]
        SET_FUNCTION_ATTRIBUTE => {
            let func = frame.pop();
            let attr = frame.pop();
            set_function_attribute(tx, &func, ins.arg, attr).map(|f| push(frame, f))
        }
        // `!s`, `!r`, `!a` of an f-string field: 1, 2, 3 as FORMAT_VALUE's low bits.
        CONVERT_VALUE => {
            let v = frame.pop();
            format_value(tx, &v, arg & 0x03, None).map(|r| push(frame, r))
        }
        FORMAT_SIMPLE => {
            let v = frame.pop();
            format_value(tx, &v, 0, None).map(|r| push(frame, r))
        }
        FORMAT_WITH_SPEC => {
            let spec = frame.pop();
            let v = frame.pop();
            format_value(tx, &v, 0, Some(&spec)).map(|r| push(frame, r))
        }
        LOAD_FAST_LOAD_FAST | STORE_FAST_LOAD_FAST | STORE_FAST_STORE_FAST => {
            Err(Exit::brk(format!(
                "the superinstruction {} was not split when its code was read",
                ins.op
            )))
        }
        _ => return None,
    })
}

fn push(frame: &mut Frame, v: Value) -> Flow {
    frame.stack.push(v);
    Flow::Next
}

/// The exact bool `TO_BOOL` makes: the value's truth (a tensor's is data-dependent and
/// breaks, as at 3.11's conditional jump).
fn to_bool(tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
    let b = crate::interp::families::truthy(tx, v)?;
    Ok(Value::constant(tx.py, b))
}

/// `LOAD_GLOBAL`: the name is `arg >> 1`; with the low bit set a NULL follows the value.
fn load_global_313(tx: &mut Tracer<'_>, frame: &mut Frame, arg: usize) -> TResult<Flow> {
    let n = name(frame, arg >> 1)?;
    let v = load_global(tx, frame, &n)?;
    frame.stack.push(v);
    if arg & 1 == 1 {
        frame.stack.push(Value::Null);
    }
    Ok(Flow::Next)
}

/// `LOAD_ATTR`: the name is `arg >> 1`; with the low bit set (a method load) the attribute
/// is followed by NULL (the tracer binds methods itself, so never by the receiver).
fn load_attr(tx: &mut Tracer<'_>, frame: &mut Frame, arg: usize) -> TResult<Flow> {
    let obj = frame.pop();
    let n = name(frame, arg >> 1)?;
    let v = crate::interp::families::getattr(tx, &obj, &n)?;
    frame.stack.push(v);
    if arg & 1 == 1 {
        frame.stack.push(Value::Null);
    }
    Ok(Flow::Next)
}

/// `LOAD_SUPER_ATTR`: `super(class, self).name` from the global `super`, the `__class__`
/// cell's class and the first argument; name `arg >> 2`, a method load (NULL after the
/// attribute) when the low bit is set.
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
    frame.stack.push(v);
    if arg & 1 == 1 {
        frame.stack.push(Value::Null);
    }
    Ok(Flow::Next)
}

/// `CALL`/`CALL_KW` once the arguments are off the stack: below them are the callable and
/// the receiver of a method call (or NULL).
fn call_313(
    tx: &mut Tracer<'_>,
    frame: &mut Frame,
    mut args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Flow> {
    let self_or_null = frame.pop();
    let callable = frame.pop();
    if !matches!(self_or_null, Value::Null) {
        args.insert(0, self_or_null);
    }
    call(tx, frame, callable, args, kwargs)
}

/// The names of `CALL_KW`'s tuple (a constant from `co_consts`).
fn keyword_names(tx: &mut Tracer<'_>, names: &Value) -> TResult<Vec<String>> {
    let py = tx.py;
    let c = names
        .as_const(py)
        .ok_or_else(|| Exit::internal("CALL_KW without a constant tuple of names"))?;
    c.extract().map_err(|e| tx.err(e))
}
