//! The instruction dispatch loop. Each CPython 3.11 instruction's symbolic semantics are
//! written here, in one `match` (3.12's new and changed instructions in `dispatch_312.rs`,
//! asked first on 3.12 and 3.13; 3.13's in `dispatch_313.rs`, asked before both); helpers for operators, calls, attributes and iteration
//! live in their own files. An instruction that cannot be traced returns `Exit::Break`.

use std::rc::Rc;

use pyo3::prelude::*;

use super::attrs::load_global;
use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::iter::{iter_next, unpack};
use super::ops::{
    binary_op, compare_op, contains, format_value, is_same, store_subscr, subscr, unary_op,
};
use super::slots::{cell_at, load_fast};
use super::tracer::Tracer;
use super::value::{DictVal, Value};
use crate::bytecode::{Instruction, Opcode, PyVersion};
use crate::guards::Source;

pub(super) enum Flow {
    Next,
    Jump(usize),
    Return(Value),
    Yield(Value),
}

/// How a frame stopped: returned, or (a generator) yielded and can be resumed.
pub enum FrameExit {
    Return(Value),
    Yield(Value),
}

/// Interpret `frame` to its return value.
pub fn run_frame(tx: &mut Tracer<'_>, frame: &mut Frame) -> TResult<Value> {
    match resume_frame(tx, frame)? {
        FrameExit::Return(v) => Ok(v),
        FrameExit::Yield(_) => Err(Exit::internal("yield outside a generator frame")),
    }
}

/// Run `frame` from its instruction pointer until it returns or yields.
pub fn resume_frame(tx: &mut Tracer<'_>, frame: &mut Frame) -> TResult<FrameExit> {
    let spec = frame.spec.clone();
    let instrs = &spec.decoded.instructions;
    let mut steps: u64 = 0;
    loop {
        let idx = frame.ip;
        let Some(ins) = instrs.get(idx) else {
            return Err(
                Exit::internal("ran off the end of the bytecode").located(&frame.location())
            );
        };
        frame.current = idx;
        frame.ip = idx + 1;
        steps += 1;
        // Where the root frame can be split, remember the state before the instruction
        // (not while an exception is being handled: the resume function could not see it).
        let snapshot = if frame.is_root
            && tx.exc_info.is_none()
            && super::breaks::split_effect(ins.op, ins.arg).is_some()
        {
            Some(super::breaks::Snapshot::take(tx, frame, idx)?)
        } else {
            None
        };
        let forced_here = matches!(
            (&tx.forced_break, &snapshot),
            (Some((n, _, _)), Some(snap)) if *n == snap.ordinal
        );
        if forced_here {
            // The re-trace stops here, before the instruction, with the original break.
            if let Some((_, reason, at)) = tx.forced_break.take() {
                tx.break_snapshot = snapshot;
                return Err(Exit::Break { reason, at }.located(&frame.location()));
            }
        }
        if steps > 2_000_000 {
            return Err(
                Exit::brk("trace is too long (possible infinite loop)").located(&frame.location())
            );
        }
        match step(tx, frame, ins) {
            Ok(Flow::Next) => {}
            Ok(Flow::Jump(t)) => frame.ip = t,
            Ok(Flow::Return(v)) => return Ok(FrameExit::Return(v)),
            // The caller's handled exception is put back by `iter::generator_resume`.
            Ok(Flow::Yield(v)) => return Ok(FrameExit::Yield(v)),
            Err(e) => {
                // A break raised by this instruction (not yet located by an inner frame)
                // inside an error_on_graph_break(True) region is the user's error.
                let fresh_break = matches!(&e, Exit::Break { at, .. } if at.file.is_empty());
                let mut e = e.located(&frame.location());
                if let (true, true, Exit::Break { reason, at }) =
                    (fresh_break, tx.error_on_break, &e)
                {
                    return Err(super::markers::strict_break(tx, reason, at));
                }
                if let Exit::Observed { exc, at } = e {
                    // The traced program raised: jump to this frame's handler, or leave it.
                    exc.raised.set(true);
                    super::exceptions::attach_context(tx, &exc);
                    if super::exceptions::unwind(tx, frame, &exc)? {
                        continue;
                    }
                    let exc = if spec.flags & crate::spec_cache::CO_GENERATOR != 0 {
                        super::exceptions::leaving_generator(tx.py, exc)
                    } else {
                        exc
                    };
                    e = match (&snapshot, frame.is_root) {
                        // Escaping the compiled frame from a call: split there, so the call
                        // re-runs natively and raises the real exception.
                        (Some(_), true) => Exit::Break {
                            reason: super::exit::uncaught_exception_reason(&exc.describe(tx.py)),
                            at,
                        },
                        _ => Exit::Observed { exc, at },
                    };
                }
                if let (Some(snap), Exit::Break { .. }) = (snapshot, &e) {
                    tx.break_snapshot = Some(snap);
                }
                return Err(e);
            }
        }
    }
}

pub(super) fn target(ins: &Instruction) -> TResult<usize> {
    ins.target
        .map(|t| t as usize)
        .ok_or_else(|| Exit::internal("jump without a target"))
}

pub(super) fn name(frame: &Frame, i: usize) -> TResult<String> {
    frame
        .spec
        .names
        .get(i)
        .cloned()
        .ok_or_else(|| Exit::internal("name index out of range"))
}

fn step(tx: &mut Tracer<'_>, frame: &mut Frame, ins: &Instruction) -> TResult<Flow> {
    use Opcode::*;
    let py = tx.py;
    let arg = ins.arg as usize;
    if PyVersion::CURRENT >= PyVersion::V3_13 {
        if let Some(flow) = super::dispatch_313::step(tx, frame, ins) {
            return flow;
        }
    }
    if PyVersion::CURRENT != PyVersion::V3_11 {
        if let Some(flow) = super::dispatch_312::step(tx, frame, ins) {
            return flow;
        }
    }
    match ins.op {
        NOP | RESUME | PRECALL | CACHE | EXTENDED_ARG => {}

        // ---- locals, cells, globals, constants ------------------------------------------
        LOAD_CONST => {
            let c = frame
                .spec
                .consts
                .get(arg)
                .ok_or_else(|| Exit::internal("bad const index"))?;
            frame.stack.push(Value::Const(c.clone_ref(py)));
        }
        LOAD_FAST | LOAD_FAST_CHECK => {
            let v = match super::containers::lazy_const_subscript(tx, frame, arg)? {
                Some(item) => item,
                None => load_fast(tx, frame, arg)?,
            };
            frame.stack.push(v);
        }
        STORE_FAST => {
            let v = frame.pop();
            if let Some(p) = frame.pending.get_mut(arg) {
                *p = None;
                frame.pending_sources.remove(&arg);
            }
            // A NULL (3.12: an inlined comprehension's saved, unbound variable) unbinds.
            frame.locals[arg] = (!matches!(v, Value::Null)).then_some(v);
        }
        DELETE_FAST => {
            if let Some(p) = frame.pending.get_mut(arg) {
                *p = None;
                frame.pending_sources.remove(&arg);
            }
            frame.locals[arg] = None;
        }
        MAKE_CELL => {
            let contents = match load_fast(tx, frame, arg) {
                Ok(v) => Some(v),
                Err(Exit::Break { .. }) => None,
                Err(e) => return Err(e),
            };
            frame.locals[arg] = Some(Value::Cell(Rc::new(contents.into())));
        }
        COPY_FREE_VARS => {
            let start = frame.spec.free_start;
            for j in 0..arg {
                let cell = frame
                    .closure
                    .get(j)
                    .cloned()
                    .ok_or_else(|| Exit::internal("closure too short"))?;
                frame.locals[start + j] = Some(cell);
            }
        }
        LOAD_CLOSURE => {
            let v = cell_at(tx, frame, arg)?.ok_or_else(|| Exit::internal("empty closure slot"))?;
            frame.stack.push(v);
        }
        LOAD_DEREF => {
            let cell = cell_at(tx, frame, arg)?;
            let v = match cell {
                Some(Value::Cell(c)) => c.borrow().clone(),
                Some(Value::ExternalCell(c)) => tx.load_external_cell(&c)?,
                _ => None,
            };
            let name = frame.spec.localsplus.get(arg).cloned().unwrap_or_default();
            let v = v.ok_or_else(|| {
                Exit::brk(format!(
                    "free variable '{name}' referenced before assignment"
                ))
            })?;
            frame.stack.push(v);
        }
        STORE_DEREF => {
            let v = frame.pop();
            match cell_at(tx, frame, arg)? {
                Some(Value::Cell(c)) => *c.borrow_mut() = Some(v),
                Some(Value::ExternalCell(c)) => {
                    crate::side_effects::mutate::store_external_cell(tx, &c, v)?
                }
                _ => return Err(Exit::internal("STORE_DEREF on a non-cell")),
            }
        }
        LOAD_GLOBAL => {
            if arg & 1 == 1 {
                frame.stack.push(Value::Null);
            }
            let n = name(frame, arg >> 1)?;
            let v = load_global(tx, frame, &n)?;
            frame.stack.push(v);
        }
        STORE_GLOBAL | DELETE_GLOBAL => {
            let n = name(frame, arg)?;
            let v = (ins.op == STORE_GLOBAL).then(|| frame.pop());
            crate::side_effects::mutate::store_global(tx, frame, &n, v)?;
        }

        // ---- attributes ------------------------------------------------------------------
        LOAD_ATTR => {
            let obj = frame.pop();
            let n = name(frame, arg)?;
            let v = crate::interp::families::getattr(tx, &obj, &n)?;
            frame.stack.push(v);
        }
        LOAD_METHOD => {
            let obj = frame.pop();
            let n = name(frame, arg)?;
            let v = crate::interp::families::getattr(tx, &obj, &n)?;
            frame.stack.push(Value::Null);
            frame.stack.push(v);
        }
        STORE_ATTR | DELETE_ATTR => {
            let n = name(frame, arg)?;
            let obj = frame.pop();
            let v = (ins.op == STORE_ATTR).then(|| frame.pop());
            crate::interp::families::setattr(tx, &obj, &n, v)?;
        }

        // ---- stack manipulation ------------------------------------------------------------
        POP_TOP => {
            frame.pop();
        }
        PUSH_NULL => frame.stack.push(Value::Null),
        COPY => {
            let v = frame
                .peek(arg)
                .cloned()
                .ok_or_else(|| Exit::internal("COPY past stack"))?;
            frame.stack.push(v);
        }
        SWAP => {
            let n = frame.stack.len();
            if arg == 0 || arg > n {
                return Err(Exit::internal("SWAP past stack"));
            }
            frame.stack.swap(n - 1, n - arg);
        }

        // ---- operators -------------------------------------------------------------------
        BINARY_OP => {
            let rhs = frame.pop();
            let lhs = frame.pop();
            let v = binary_op(tx, arg, &lhs, &rhs)?;
            frame.stack.push(v);
        }
        UNARY_NEGATIVE | UNARY_POSITIVE | UNARY_INVERT | UNARY_NOT => {
            let v = frame.pop();
            let r = unary_op(tx, ins.op, &v)?;
            frame.stack.push(r);
        }
        COMPARE_OP => {
            let rhs = frame.pop();
            let lhs = frame.pop();
            let v = compare_op(tx, arg, &lhs, &rhs)?;
            frame.stack.push(v);
        }
        IS_OP => {
            let rhs = frame.pop();
            let lhs = frame.pop();
            let same = is_same(tx, &lhs, &rhs)?;
            frame.stack.push(Value::constant(py, same != (arg == 1)));
        }
        CONTAINS_OP => {
            let container = frame.pop();
            let item = frame.pop();
            let found = contains(tx, &container, &item)?;
            frame.stack.push(Value::constant(py, found != (arg == 1)));
        }
        BINARY_SUBSCR => {
            let idx = frame.pop();
            let obj = frame.pop();
            let v = subscr(tx, &obj, &idx)?;
            frame.stack.push(v);
        }
        STORE_SUBSCR => {
            let key = frame.pop();
            let container = frame.pop();
            let value = frame.pop();
            store_subscr(tx, &container, &key, value)?;
        }
        DELETE_SUBSCR => {
            let key = frame.pop();
            let container = frame.pop();
            crate::interp::ops::delete_subscr(tx, &container, &key)?;
        }

        // ---- building containers ---------------------------------------------------------
        BUILD_TUPLE => {
            let items = frame.popn(arg);
            frame.stack.push(Value::new_tuple(items));
        }
        BUILD_LIST => {
            let items = frame.popn(arg);
            frame.stack.push(Value::new_list(items));
        }
        BUILD_SET => {
            // A modelled set (not a real one built now): it is created afresh on every call.
            let items = frame.popn(arg);
            let set = super::stdlib::new_set(tx, items)?;
            frame.stack.push(set);
        }
        BUILD_MAP => {
            let flat = frame.popn(2 * arg);
            let mut items = Vec::with_capacity(arg);
            for pair in flat.chunks(2) {
                items.push((dict_key_const(tx, &pair[0])?, pair[1].clone()));
            }
            frame.stack.push(Value::new_dict_from(items));
        }
        BUILD_CONST_KEY_MAP => {
            let keys = frame.pop();
            let vals = frame.popn(arg);
            let keys = tx
                .as_python_constant(&keys)
                .ok_or_else(|| Exit::internal("const keys"))?;
            let keys: Vec<Py<PyAny>> = keys
                .try_iter()
                .map_err(|e| tx.err(e))?
                .map(|k| k.map(|k| k.unbind()))
                .collect::<PyResult<_>>()
                .map_err(|e| tx.err(e))?;
            frame
                .stack
                .push(Value::new_dict_from(keys.into_iter().zip(vals).collect()));
        }
        BUILD_SLICE => {
            let step = if arg == 3 {
                frame.pop()
            } else {
                Value::none(py)
            };
            let stop = frame.pop();
            let start = frame.pop();
            frame.stack.push(Value::Slice(Rc::new([start, stop, step])));
        }
        BUILD_STRING => {
            let parts = frame.popn(arg);
            let mut s = String::new();
            for p in &parts {
                let c = p
                    .as_const(py)
                    .ok_or_else(|| Exit::brk("string building from a non-constant"))?;
                s.push_str(&c.extract::<String>().map_err(|e| tx.err(e))?);
            }
            frame.stack.push(Value::constant(py, s));
        }
        FORMAT_VALUE => {
            let spec = if arg & 0x04 != 0 {
                Some(frame.pop())
            } else {
                None
            };
            let v = frame.pop();
            let r = format_value(tx, &v, arg & 0x03, spec.as_ref())?;
            frame.stack.push(r);
        }
        LIST_APPEND | SET_ADD => {
            let v = frame.pop();
            let target = frame.peek(arg).cloned();
            match (ins.op, target) {
                (LIST_APPEND, Some(Value::List(l))) => {
                    // Recorded like `list.append`: the list may exist outside the trace (a
                    // comprehension's list handed to a resume function).
                    tx.list_mutating(&l)?;
                    l.items.borrow_mut().push(v)
                }
                (SET_ADD, Some(Value::Std(s))) => {
                    super::stdlib_set::set_update(tx, &s, &Value::new_tuple(vec![v]))?;
                }
                _ => return Err(Exit::internal("LIST_APPEND/SET_ADD target")),
            }
        }
        MAP_ADD => {
            let v = frame.pop();
            let k = frame.pop();
            let key = dict_key_const(tx, &k)?;
            match frame.peek(arg).cloned() {
                Some(Value::Dict(d)) => {
                    // As LIST_APPEND: a dict handed to a resume function is recorded.
                    tx.dict_mutating(&d)?;
                    dict_set(tx, &d, key, v)
                }
                _ => return Err(Exit::internal("MAP_ADD target")),
            }
        }
        LIST_EXTEND | SET_UPDATE => {
            let it = frame.pop();
            let items = unpack(tx, &it)?;
            match frame.peek(arg).cloned() {
                Some(Value::List(l)) => {
                    tx.list_mutating(&l)?;
                    l.items.borrow_mut().extend(items)
                }
                Some(Value::Std(s)) => {
                    super::stdlib_set::set_update(tx, &s, &Value::new_tuple(items))?
                }
                _ => return Err(Exit::internal("LIST_EXTEND target")),
            }
        }
        DICT_UPDATE | DICT_MERGE => {
            let other = frame.pop();
            let Some(Value::Dict(d)) = frame.peek(arg).cloned() else {
                return Err(Exit::internal("DICT_UPDATE target"));
            };
            match other {
                Value::Dict(o) => {
                    for (k, v) in o.snapshot(py) {
                        dict_set(tx, &d, k, v);
                    }
                }
                other => match super::containers::sub_dict_items(tx, &other)? {
                    Some(items) => {
                        for (k, v) in items {
                            dict_set(tx, &d, k, v);
                        }
                    }
                    None => return Err(Exit::brk("** unpacking of a non-dict mapping")),
                },
            }
        }
        LIST_TO_TUPLE => {
            let l = frame.pop();
            let items = unpack(tx, &l)?;
            frame.stack.push(Value::new_tuple(items));
        }
        UNPACK_SEQUENCE => {
            let seq = frame.pop();
            if super::containers::unpack_into_locals(tx, frame, &seq, arg)? {
                return Ok(Flow::Next); // the STORE_FASTs were done too
            }
            let items = unpack(tx, &seq)?;
            if items.len() != arg {
                // CPython's own ValueError, catchable by the traced program.
                let msg = if items.len() > arg {
                    format!("too many values to unpack (expected {arg})")
                } else {
                    format!(
                        "not enough values to unpack (expected {arg}, got {})",
                        items.len()
                    )
                };
                return Err(super::exceptions::raise_builtin(py, "ValueError", msg));
            }
            frame.stack.extend(items.into_iter().rev());
        }
        UNPACK_EX => {
            let before = arg & 0xFF;
            let after = arg >> 8;
            let seq = frame.pop();
            let items = unpack(tx, &seq)?;
            if items.len() < before + after {
                return Err(Exit::brk("not enough values to unpack"));
            }
            let mid = items[before..items.len() - after].to_vec();
            let mut out: Vec<Value> = items[..before].to_vec();
            out.push(Value::new_list(mid));
            out.extend(items[items.len() - after..].iter().cloned());
            frame.stack.extend(out.into_iter().rev());
        }

        // ---- control flow ----------------------------------------------------------------
        JUMP_FORWARD | JUMP_BACKWARD | JUMP_BACKWARD_NO_INTERRUPT => {
            return Ok(Flow::Jump(target(ins)?))
        }
        POP_JUMP_FORWARD_IF_TRUE
        | POP_JUMP_BACKWARD_IF_TRUE
        | POP_JUMP_FORWARD_IF_FALSE
        | POP_JUMP_BACKWARD_IF_FALSE
        | POP_JUMP_IF_TRUE
        | POP_JUMP_IF_FALSE => {
            let v = frame.pop();
            let want = matches!(
                ins.op,
                POP_JUMP_FORWARD_IF_TRUE | POP_JUMP_BACKWARD_IF_TRUE | POP_JUMP_IF_TRUE
            );
            if crate::interp::families::truthy(tx, &v)? == want {
                return Ok(Flow::Jump(target(ins)?));
            }
        }
        POP_JUMP_FORWARD_IF_NONE
        | POP_JUMP_BACKWARD_IF_NONE
        | POP_JUMP_FORWARD_IF_NOT_NONE
        | POP_JUMP_BACKWARD_IF_NOT_NONE
        | POP_JUMP_IF_NONE
        | POP_JUMP_IF_NOT_NONE => {
            let v = frame.pop();
            let is_none = matches!(&v, Value::Const(c) if c.bind(py).is_none());
            let want_none = matches!(
                ins.op,
                POP_JUMP_FORWARD_IF_NONE | POP_JUMP_BACKWARD_IF_NONE | POP_JUMP_IF_NONE
            );
            if is_none == want_none {
                return Ok(Flow::Jump(target(ins)?));
            }
        }
        JUMP_IF_TRUE_OR_POP | JUMP_IF_FALSE_OR_POP => {
            let v = frame
                .top()
                .cloned()
                .ok_or_else(|| Exit::internal("empty stack"))?;
            let want = ins.op == JUMP_IF_TRUE_OR_POP;
            if crate::interp::families::truthy(tx, &v)? == want {
                return Ok(Flow::Jump(target(ins)?));
            }
            frame.pop();
        }
        GET_ITER => {
            let v = frame.pop();
            let it = crate::interp::families::iter(tx, &v)?;
            frame.stack.push(it);
        }
        FOR_ITER => {
            let it = frame
                .top()
                .cloned()
                .ok_or_else(|| Exit::internal("empty stack"))?;
            match iter_next(tx, &it)? {
                Some(v) => frame.stack.push(v),
                None => {
                    frame.pop();
                    return Ok(Flow::Jump(target(ins)?));
                }
            }
        }
        RETURN_VALUE => return Ok(Flow::Return(frame.pop())),

        // ---- calls -------------------------------------------------------------------------
        KW_NAMES => {
            let names = frame
                .spec
                .consts
                .get(arg)
                .ok_or_else(|| Exit::internal("bad KW_NAMES"))?;
            let names: Vec<String> = names.bind(py).extract().map_err(|e| tx.err(e))?;
            frame.kw_names = Some(names);
        }
        CALL => {
            let kw_names = frame.kw_names.take().unwrap_or_default();
            let mut args = frame.popn(arg);
            let second = frame.pop();
            let first = frame.pop();
            let callee = match first {
                Value::Null => second,
                meth => {
                    args.insert(0, second);
                    meth
                }
            };
            let nkw = kw_names.len();
            if nkw > args.len() {
                return Err(Exit::internal("more keyword names than arguments"));
            }
            let kw_vals = args.split_off(args.len() - nkw);
            let kwargs: Vec<(String, Value)> = kw_names.into_iter().zip(kw_vals).collect();
            return super::dispatch_calls::call(tx, frame, callee, args, kwargs);
        }
        CALL_FUNCTION_EX => {
            let kwargs = if arg & 1 == 1 {
                Some(frame.pop())
            } else {
                None
            };
            let args = frame.pop();
            let func = frame.pop();
            let _null = frame.pop();
            let v = super::dispatch_calls::call_ex(tx, &func, &args, kwargs)?;
            frame.stack.push(v);
        }
        MAKE_FUNCTION => {
            let code = frame.pop();
            let closure = if arg & 0x08 != 0 {
                Some(frame.pop())
            } else {
                None
            };
            let annotations = if arg & 0x04 != 0 {
                Some(frame.pop())
            } else {
                None
            };
            let kwdefaults = if arg & 0x02 != 0 {
                Some(frame.pop())
            } else {
                None
            };
            let defaults = if arg & 0x01 != 0 {
                Some(frame.pop())
            } else {
                None
            };
            let f = super::dispatch_calls::make_function(
                tx,
                frame,
                &code,
                [defaults, kwdefaults, annotations, closure],
            )?;
            frame.stack.push(f);
        }

        // ---- exceptions (exceptions.rs) ----------------------------------------------------
        RAISE_VARARGS => return Err(super::exceptions::raise_varargs(tx, frame, arg)),
        RERAISE => {
            // Re-raise unchanged (no new context); the lasti below it is only for tracebacks.
            return Err(match frame.pop() {
                Value::Exception(exc) => Exit::Observed {
                    exc,
                    at: Default::default(),
                },
                _ => Exit::internal("RERAISE of a non-exception"),
            });
        }
        LOAD_ASSERTION_ERROR => {
            let cls = py.get_type::<pyo3::exceptions::PyAssertionError>();
            let v = tx.realize(cls.as_any(), None)?;
            frame.stack.push(v);
        }
        PUSH_EXC_INFO => {
            let exc = frame.pop();
            let prev = tx.exc_info.replace(exc.clone());
            frame.stack.push(prev.unwrap_or_else(|| Value::none(py)));
            frame.stack.push(exc);
        }
        POP_EXCEPT => {
            tx.exc_info = match frame.pop() {
                Value::Const(c) if c.bind(py).is_none() => None,
                v => Some(v),
            };
        }
        CHECK_EXC_MATCH => {
            let pattern = frame.pop();
            let exc = frame
                .top()
                .cloned()
                .ok_or_else(|| Exit::internal("empty stack"))?;
            let m = super::exceptions::matches(tx, &exc, &pattern)?;
            frame.stack.push(Value::constant(py, m));
        }
        WITH_EXCEPT_START => {
            // Stack: __exit__, lasti, previous exception, exception.
            let exc = frame
                .top()
                .cloned()
                .ok_or_else(|| Exit::internal("empty stack"))?;
            let exit_fn = frame
                .peek(4)
                .cloned()
                .ok_or_else(|| Exit::internal("WITH_EXCEPT_START past stack"))?;
            let Value::Exception(e) = &exc else {
                return Err(Exit::internal("WITH_EXCEPT_START without an exception"));
            };
            let ty = tx.realize(&super::exceptions::class_of(py, e), e.cls_source.clone())?;
            let r = crate::interp::families::call(
                tx,
                &exit_fn,
                vec![ty, exc.clone(), Value::none(py)],
                vec![],
            )?;
            frame.stack.push(r);
        }
        BEFORE_WITH => {
            let ctx = frame.pop();
            match ctx {
                Value::GradMode(mode) => {
                    let prev = super::calls::grad_enabled(tx)?;
                    super::calls::set_grad_mode(tx, mode)?;
                    // Stack: the bound __exit__ (restores the previous mode), then
                    // __enter__'s result (None).
                    frame.stack.push(Value::BuiltinMethod(Rc::new((Value::GradMode(prev), "__exit__".into()))));
                    frame.stack.push(Value::none(py));
                }
                Value::Object(ref o) if o.kind == super::kinds::KIND_MARKER => {
                    let (exit_fn, entered) = super::markers::enter_marker(tx, o)?;
                    frame.stack.push(exit_fn);
                    frame.stack.push(entered);
                }
                Value::Object(ref o) if o.kind == super::kinds::KIND_OBJECT => {
                    // A user context manager: __enter__ is inlined now; the bound __exit__
                    // stays on the stack for the block's normal and exceptional exits.
                    let ty = o.obj.bind(py).get_type();
                    let is_py = |name: &str| {
                        ty.getattr(name)
                            .map(|f| f.get_type().name().map(|n| n == "function").unwrap_or(false))
                            .unwrap_or(false)
                    };
                    if ty.module().is_ok_and(|m| m.to_string().starts_with("_pytest")) {
                        // pytest.raises/warns checkers read the real exception and its
                        // traceback in __exit__, which a traced exception does not have.
                        return Err(Exit::brk(format!(
                            "a `with` block over {} (pytest's checkers are not traced, as in torch.compile)",
                            tx.describe(&ty.into_any())
                        )));
                    }
                    if !is_py("__enter__") || !is_py("__exit__") {
                        return Err(Exit::brk(format!(
                            "a `with` block over {} (its __enter__/__exit__ are not Python functions)",
                            tx.describe(&ty.into_any())
                        )));
                    }
                    let exit_fn = ty.getattr("__exit__").map_err(|e| tx.err(e))?;
                    let src = match &o.source {
                        Some(s) => Some(std::sync::Arc::new(Source::Attr {
                            base: std::sync::Arc::new(Source::TypeOf { base: s.clone() }),
                            name: "__exit__".into(),
                        })),
                        // Made in the trace: through its class's source, if it has one.
                        None => crate::side_effects::new_objects::class_attr_source(
                            tx, o, "__exit__",
                        ),
                    };
                    let exit_v = tx.realize(&exit_fn, src)?;
                    let entered = super::calls::call_dunder(tx, &ctx, "__enter__", vec![])?;
                    frame.stack.push(Value::BoundMethod(Rc::new((ctx.clone(), exit_v))));
                    frame.stack.push(entered);
                }
                other => {
                    return Err(Exit::brk(format!(
                        "a `with` block over a '{}' (only grad-mode and Python context managers are supported)",
                        other.type_name(py)
                    )))
                }
            }
        }
        IMPORT_NAME => {
            let fromlist = frame.pop();
            let level = frame.pop();
            let n = name(frame, arg)?;
            let v = super::imports::import_name(tx, frame, &n, &level, &fromlist)?;
            frame.stack.push(v);
        }
        IMPORT_FROM => {
            let module = frame
                .stack
                .last()
                .cloned()
                .ok_or_else(|| Exit::internal("empty stack"))?;
            let n = name(frame, arg)?;
            let v = super::imports::import_from(tx, &module, &n)?;
            frame.stack.push(v);
        }
        IMPORT_STAR => return Err(Exit::brk("an import statement")),
        // Generators: the frame suspends at YIELD_VALUE; `next` resumes it with None sent.
        RETURN_GENERATOR => frame.stack.push(Value::none(py)),
        YIELD_VALUE => {
            let v = frame.pop();
            return Ok(Flow::Yield(v));
        }
        // `yield from`: the delegate stays on the stack; SEND resumes it with the value
        // sent (None: the outer generator is driven by `next`).
        GET_YIELD_FROM_ITER => {
            let v = frame.pop();
            let it = super::iter::yield_from_iter(tx, &v)?;
            frame.stack.push(it);
        }
        SEND => {
            let sent = frame.pop();
            let recv = frame
                .top()
                .cloned()
                .ok_or_else(|| Exit::internal("SEND on an empty stack"))?;
            match super::iter::send(tx, &recv, &sent)? {
                FrameExit::Yield(v) => frame.stack.push(v),
                FrameExit::Return(v) => {
                    frame.pop();
                    frame.stack.push(v);
                    return Ok(Flow::Jump(target(ins)?));
                }
            }
        }
        other => {
            return Err(Exit::brk(format!(
                "the bytecode instruction {} is not supported yet",
                other.name()
            )));
        }
    }
    Ok(Flow::Next)
}

/// The hashable constant key for a dict entry.
pub fn dict_key_const(tx: &Tracer<'_>, k: &Value) -> TResult<Py<PyAny>> {
    if super::dunder_ops::hashes_by_dunder(tx, k) {
        // Hashing it would run its Python `__hash__` (and lookups its `__eq__`) now, once,
        // as torch.compile refuses too.
        return Err(Exit::brk(
            "a dict key whose class defines __hash__ or __eq__ in Python",
        ));
    }
    let c = tx
        .as_python_constant(k)
        .ok_or_else(|| Exit::brk("a dict key that is not a constant"))?;
    c.hash().map_err(|_| Exit::brk("an unhashable dict key"))?;
    Ok(c.unbind())
}

/// Whether two dict keys are the same key, as a dict decides: identical, or equal hashes
/// and `==` (so a NaN key finds itself, and a key whose `__eq__` says True but whose hash
/// differs is another key).
pub fn same_dict_key(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> bool {
    if a.is(b) {
        return true;
    }
    match (a.hash(), b.hash()) {
        (Ok(x), Ok(y)) if x == y => a.eq(b).unwrap_or(false),
        _ => false,
    }
}

/// Insert or overwrite `key` in a dict value (keys compared as a dict does).
pub fn dict_set(tx: &Tracer<'_>, d: &DictVal, key: Py<PyAny>, v: Value) {
    let py = tx.py;
    let mut items = d.entries.borrow_mut();
    for (k, slot) in items.iter_mut() {
        if same_dict_key(k.bind(py), key.bind(py)) {
            *slot = v;
            return;
        }
    }
    items.push((key, v));
}
