//! Iteration: `GET_ITER`/`FOR_ITER`, unpacking, and the lazy iterators the interpreter
//! models itself (range, sequences, enumerate, zip).

use std::rc::Rc;

use pyo3::prelude::*;

use super::calls::call_dunder;
use super::dispatch::{resume_frame, FrameExit};
use super::exit::{Exit, TResult};
use super::tracer::Tracer;
use super::value::{GenVal, IterVal, Value};
use crate::bytecode::{Opcode, PyVersion};

pub(crate) fn items_iter(items: Vec<Value>) -> Value {
    Value::new_iter(IterVal::Items { items, pos: 0 })
}

/// A pre-existing tuple, list or dict iterator reached by a source (a `for` loop's
/// iterator handed to a resume function): traced through a mirror that reads its items
/// relative to its real position (`IterVal::Real`, sources `IterItem`/`IterRemaining`,
/// read through the iterator's C `__reduce__`), so a trace does not depend on how far the
/// loop got; the real iterator is advanced after the graph (a replayed side effect). None
/// for anything else, or for a list iterator over a list this trace changed.
pub fn seq_iterator_mirror(tx: &mut Tracer<'_>, it: &Value) -> TResult<Option<Value>> {
    use crate::guards::Guard;
    let Value::Object(o) = it else {
        return Ok(None);
    };
    let Some(src) = o.source.clone() else {
        return Ok(None);
    };
    let py = tx.py;
    let obj = o.obj.bind(py).clone();
    let key = obj.as_ptr() as usize;
    if let Some(m) = tx.iter_mirrors.get(&key) {
        return Ok(Some(m.clone()));
    }
    let Some(view) = crate::guards::IterView::of(&obj) else {
        return Ok(None);
    };
    if view.copied() && tx.side_effects.realized_dict_mutated() {
        // The items are a copy of the dict's: a dict this trace changed may be that dict.
        return Ok(None);
    }
    for part in &view.parts {
        let seq = &part.seq;
        if seq.is_instance_of::<pyo3::types::PyList>() && !part.copied {
            // Items are read from the real list: it must not differ from the trace's view.
            let lp = seq.as_ptr() as usize;
            if tx.side_effects.realized_list_mutated(lp) {
                return Ok(None);
            }
            tx.iterated_lists.insert(lp);
        }
    }
    tx.guard(&src, Guard::TypeMatch(obj.get_type().unbind()));
    let mirror = Value::new_iter(IterVal::Real {
        obj: it.clone(),
        consumed: 0,
    });
    tx.iter_mirrors.insert(key, mirror.clone());
    tx.side_effects.iter_advanced(it.clone(), mirror.clone(), 0);
    Ok(Some(mirror))
}

/// The next item of a `IterVal::Real` mirror, `consumed` places past the real position
/// (guarded through that relative source), or None at the end (guarded: no more items).
fn real_iter_next(tx: &mut Tracer<'_>, obj: &Value, consumed: usize) -> TResult<Option<Value>> {
    use crate::guards::{Guard, Source};
    use std::sync::Arc;
    let py = tx.py;
    let Value::Object(o) = obj else {
        return Err(Exit::internal("iterator mirror without its iterator"));
    };
    let src = o
        .source
        .clone()
        .ok_or_else(|| Exit::internal("iterator mirror without a source"))?;
    let real = o.obj.bind(py).clone();
    let view = crate::guards::IterView::of(&real)
        .ok_or_else(|| Exit::internal("not a tuple/list/dict iterator"))?;
    if view.copied() && tx.side_effects.realized_dict_mutated() {
        return Err(Exit::brk(
            "iterating a pre-existing dict iterator after this trace changed a dict",
        ));
    }
    if let Some(item) = view.item(consumed) {
        let item_src = Arc::new(Source::IterItem {
            base: src,
            offset: consumed,
        });
        return Ok(Some(tx.realize(&item, Some(item_src))?));
    }
    let left = Arc::new(Source::IterRemaining { base: src });
    let n = pyo3::types::PyInt::new(py, consumed).into_any().unbind();
    tx.guard(&left, Guard::Equals(n));
    Ok(None)
}

/// `next(it)`: Some(value), or None when exhausted.
pub fn iter_next(tx: &mut Tracer<'_>, it: &Value) -> TResult<Option<Value>> {
    let py = tx.py;
    if let Value::Generator(g) = it {
        return generator_next(tx, g);
    }
    if let Value::Std(s) = it {
        // Conservatively a mutation (see below).
        tx.side_effects.note_mutation();
        return super::stdlib::iter_next_std(tx, s);
    }
    if let Some(mirror) = seq_iterator_mirror(tx, it)? {
        // Advancing the real iterator (replayed): a mutation of pre-existing state.
        tx.side_effects.note_mutation();
        return iter_next(tx, &mirror);
    }
    let Value::Iter(cell) = it else {
        return Err(Exit::brk(format!("next() on a '{}'", it.type_name(py))));
    };
    // Advancing an iterator that the graph-break snapshot can see mutates it: a call that
    // breaks after advancing one (a comprehension whose body breaks) must not be split,
    // as the glue would rebuild the iterator in its advanced state and the call, re-run
    // natively, would skip items.
    if !super::value::iter_is_fresh(cell) {
        tx.side_effects.note_mutation();
    }
    // Enumerate/zip need to call next on inner iterators; take what we need first so the
    // RefCell is not borrowed across the recursive call.
    let inner = {
        let mut st = cell.borrow_mut();
        match &mut *st {
            IterVal::Range { next, stop, step } => {
                let done = if *step > 0 {
                    *next >= *stop
                } else {
                    *next <= *stop
                };
                if done {
                    return Ok(None);
                }
                let v = *next;
                *next += *step;
                return Ok(Some(Value::constant(py, v)));
            }
            IterVal::Items { items, pos } => {
                let r = items.get(*pos).cloned();
                if r.is_some() {
                    *pos += 1;
                }
                return Ok(r);
            }
            IterVal::Real { obj, consumed } => {
                let (obj, n) = (obj.clone(), *consumed);
                drop(st);
                let r = real_iter_next(tx, &obj, n)?;
                if r.is_some() {
                    if let IterVal::Real { consumed, .. } = &mut *cell.borrow_mut() {
                        *consumed += 1;
                    }
                }
                return Ok(r);
            }
            IterVal::Dunder(obj) => {
                let obj = obj.clone();
                drop(st);
                return match call_dunder(tx, &obj, "__next__", vec![]) {
                    Ok(v) => Ok(Some(v)),
                    Err(Exit::Observed { exc, .. }) if is_stop_iteration(py, &exc) => Ok(None),
                    Err(e) => Err(e),
                };
            }
            IterVal::Enumerate { inner, .. } => vec![inner.clone()],
            IterVal::Zip { inners, .. } => inners.clone(),
        }
    };
    let strict = matches!(&*cell.borrow(), IterVal::Zip { strict: true, .. });
    let mut got = Vec::with_capacity(inner.len());
    for (k, i) in inner.iter().enumerate() {
        match iter_next(tx, i)? {
            Some(v) => got.push(v),
            None => {
                if strict {
                    // zip(strict=True): every iterable must end at the same time.
                    let other_had_more = k > 0 || {
                        let mut more = false;
                        for rest in &inner[1..] {
                            if iter_next(tx, rest)?.is_some() {
                                more = true;
                            }
                        }
                        more
                    };
                    if other_had_more {
                        return Err(Exit::brk(
                            "zip(strict=True) over iterables of different lengths (ValueError)",
                        ));
                    }
                }
                return Ok(None);
            }
        }
    }
    let mut st = cell.borrow_mut();
    match &mut *st {
        IterVal::Enumerate { count, .. } => {
            let c = *count;
            *count += 1;
            let v = got.pop().unwrap_or(Value::Null);
            Ok(Some(Value::new_tuple(vec![Value::constant(py, c), v])))
        }
        _ => Ok(Some(Value::new_tuple(got))),
    }
}

/// Resume a generator until its next `yield` (Some) or its return (None).
fn generator_next(tx: &mut Tracer<'_>, g: &GenVal) -> TResult<Option<Value>> {
    Ok(match generator_resume(tx, g)? {
        FrameExit::Yield(v) => Some(v),
        FrameExit::Return(_) => None,
    })
}

/// `iter(v)` for `yield from v` (GET_YIELD_FROM_ITER): generators delegate as they are.
pub fn yield_from_iter(tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
    crate::interp::families::iter(tx, v)
}

/// One step of `yield from` (SEND): resume the delegate with `sent`. Yield(v): it yielded
/// v; Return(v): it finished with value v (None for plain iterators).
pub fn send(tx: &mut Tracer<'_>, recv: &Value, sent: &Value) -> TResult<FrameExit> {
    if !matches!(sent, Value::Const(c) if c.bind(tx.py).is_none()) {
        return Err(Exit::brk(
            "`yield from` resumed with .send() of a value other than None",
        ));
    }
    if let Value::Generator(g) = recv {
        return generator_resume(tx, g);
    }
    Ok(match iter_next(tx, recv)? {
        Some(v) => FrameExit::Yield(v),
        None => FrameExit::Return(Value::none(tx.py)),
    })
}

/// Resume a generator until its next `yield` or its return (a finished generator returns
/// None again).
pub fn generator_resume(tx: &mut Tracer<'_>, g: &GenVal) -> TResult<FrameExit> {
    let caller = tx.exc_info.clone();
    let Some(mut frame) = g.frame.borrow_mut().take() else {
        return Ok(FrameExit::Return(Value::none(tx.py)));
    };
    if let Err(e) = enter_generator_exc(tx, &mut frame, &caller) {
        *g.frame.borrow_mut() = Some(frame);
        return Err(e);
    }
    generator_run(tx, g, frame, caller)
}

/// A generator paused inside an `except` block gets its own handled exception back while
/// it runs (the caller's is put back when it yields or ends). Resumed from another
/// exception context than the one it paused in, the saved state would not match what
/// CPython's exception-state chain shows: a break.
fn enter_generator_exc(
    tx: &mut Tracer<'_>,
    frame: &mut crate::interp::frame::Frame,
    caller: &Option<Value>,
) -> TResult<()> {
    if let Some((mine, at_yield)) = frame.gen_exc.take() {
        if !super::exceptions::same_exc_info(&at_yield, caller) {
            frame.gen_exc = Some((mine, at_yield));
            return Err(Exit::brk(
                "resuming a generator paused in an except block from another exception context",
            ));
        }
        tx.exc_info = mine;
    }
    Ok(())
}

fn generator_run(
    tx: &mut Tracer<'_>,
    g: &GenVal,
    mut frame: Box<crate::interp::frame::Frame>,
    caller: Option<Value>,
) -> TResult<FrameExit> {
    if tx.depth >= tx.max_depth {
        tx.exc_info = caller;
        return Err(Exit::brk("inlining depth limit reached inside a generator"));
    }
    tx.depth += 1;
    let r = stacker::maybe_grow(256 * 1024, 8 * 1024 * 1024, || resume_frame(tx, &mut frame));
    tx.depth -= 1;
    let r = match r {
        Ok(FrameExit::Yield(v)) => {
            // Paused inside an `except` block: keep its handled exception for later.
            if !super::exceptions::same_exc_info(&tx.exc_info, &caller) {
                frame.gen_exc = Some((tx.exc_info.clone(), caller.clone()));
            }
            // Resuming pushes the value sent into the generator: None for `next`.
            frame.stack.push(Value::none(tx.py));
            *g.frame.borrow_mut() = Some(frame);
            Ok(FrameExit::Yield(v))
        }
        other => other,
    };
    // The generator's exception state is its own: the caller's is what it was.
    tx.exc_info = caller;
    r
}

/// Generators made in the trace and returned from it (inside tuples, lists, dicts) are run
/// to their end now, as torch.compile does, and leave as iterators over what they had left
/// to yield. Only when that records no side effect (the values are pure graph work that
/// eager would compute lazily): otherwise, or when the body raises or breaks, a break.
pub fn drain_returned(tx: &mut Tracer<'_>, ret: &Value) -> TResult<()> {
    let mut gens = Vec::new();
    find_generators(ret, &mut gens, 0);
    for g in gens {
        if g.drained.borrow().is_some() {
            continue;
        }
        let generation = tx.side_effects.generation();
        let mut items = Vec::new();
        loop {
            match generator_resume(tx, &g) {
                Ok(FrameExit::Yield(v)) => items.push(v),
                Ok(FrameExit::Return(_)) => break,
                Err(Exit::Break { reason, .. }) => {
                    return Err(Exit::brk(format!(
                        "returning generator {} from the compiled region: {reason}",
                        g.name
                    )))
                }
                Err(_) => {
                    return Err(Exit::brk(format!(
                        "returning generator {} from the compiled region (running it to its \
                         end raises)",
                        g.name
                    )))
                }
            }
            if items.len() > 10_000 {
                return Err(Exit::brk(format!(
                    "returning generator {} from the compiled region (it yields without end)",
                    g.name
                )));
            }
        }
        if tx.side_effects.generation() != generation {
            return Err(Exit::brk(format!(
                "returning generator {} from the compiled region (running it has side effects)",
                g.name
            )));
        }
        *g.drained.borrow_mut() = Some(items);
    }
    Ok(())
}

fn find_generators(v: &Value, out: &mut Vec<Rc<GenVal>>, depth: usize) {
    if depth > 32 {
        return;
    }
    match v {
        Value::Generator(g) if !out.iter().any(|o| Rc::ptr_eq(o, g)) => out.push(g.clone()),
        Value::Tuple(items) => items
            .iter()
            .for_each(|i| find_generators(i, out, depth + 1)),
        Value::NamedTuple(n) => n
            .items
            .iter()
            .for_each(|i| find_generators(i, out, depth + 1)),
        Value::List(l) => l
            .items
            .borrow()
            .iter()
            .for_each(|i| find_generators(i, out, depth + 1)),
        // (An unread entry of a dict from the inputs is no generator made here.)
        Value::Dict(d) => d
            .entries
            .borrow()
            .iter()
            .for_each(|(_, i)| find_generators(i, out, depth + 1)),
        _ => {}
    }
}

/// All items of an iterable value, in order (for unpacking, `*args`, `list(x)`, ...).
pub fn unpack(tx: &mut Tracer<'_>, v: &Value) -> TResult<Vec<Value>> {
    match v {
        Value::Tuple(t) => Ok((**t).clone()),
        Value::NamedTuple(n) => Ok((*n.items).clone()),
        Value::List(l) => Ok(l.items.borrow().clone()),
        _ => {
            let it = crate::interp::families::iter(tx, v)?;
            let mut out = Vec::new();
            while let Some(x) = iter_next(tx, &it)? {
                out.push(x);
                if out.len() > 1_000_000 {
                    return Err(Exit::brk("unpacking an unbounded iterator"));
                }
            }
            Ok(out)
        }
    }
}

fn is_generator_exit(py: Python<'_>, exc: &super::exceptions::ExcVal) -> bool {
    exc.cls
        .bind(py)
        .cast::<pyo3::types::PyType>()
        .map(|t| {
            t.is_subclass_of::<pyo3::exceptions::PyGeneratorExit>()
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

pub(super) fn is_stop_iteration(py: Python<'_>, exc: &super::exceptions::ExcVal) -> bool {
    exc.cls
        .bind(py)
        .cast::<pyo3::types::PyType>()
        .map(|t| {
            t.is_subclass_of::<pyo3::exceptions::PyStopIteration>()
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// `StopIteration(value)` raised by a generator that returned `value` (no argument for None).
fn stop_iteration(tx: &Tracer<'_>, v: Value) -> Exit {
    let py = tx.py;
    let args = if matches!(&v, Value::Const(c) if c.bind(py).is_none()) {
        Vec::new()
    } else {
        vec![v]
    };
    match super::exceptions::builtin(py, "StopIteration", args) {
        Ok(e) => super::exceptions::raise(e),
        Err(e) => tx.err(e),
    }
}

/// `gen.send(v)`: resume with `v` as the value of the paused `yield`.
pub fn generator_send(tx: &mut Tracer<'_>, g: &GenVal, v: Value) -> TResult<Value> {
    let py = tx.py;
    {
        let mut slot = g.frame.borrow_mut();
        match slot.as_mut() {
            None => return Err(stop_iteration(tx, Value::none(py))),
            Some(f) if f.ip == 0 => {
                if !matches!(&v, Value::Const(c) if c.bind(py).is_none()) {
                    return Err(super::exceptions::raise_builtin(
                        py,
                        "TypeError",
                        "can't send non-None value to a just-started generator",
                    ));
                }
            }
            Some(f) => {
                // The paused `yield` evaluates to the value sent (None was pushed for next).
                f.stack.pop();
                f.stack.push(v);
            }
        }
    }
    match generator_resume(tx, g)? {
        FrameExit::Yield(v) => Ok(v),
        FrameExit::Return(r) => Err(stop_iteration(tx, r)),
    }
}

/// `gen.throw(exc)`: raise `exc` at the paused `yield` (or at the start: the generator then
/// finishes without running); the next value yielded, or the exception that leaves it.
pub fn generator_throw(
    tx: &mut Tracer<'_>,
    g: &GenVal,
    exc: Rc<super::exceptions::ExcVal>,
) -> TResult<Value> {
    let py = tx.py;
    let exc = match throw_to_delegate(tx, g, exc)? {
        Delegated::Yielded(v) => return Ok(v),
        Delegated::Raise(exc) => exc,
    };
    let taken = g.frame.borrow_mut().take();
    let Some(mut frame) = taken else {
        return Err(super::exceptions::raise(exc));
    };
    if frame.ip == 0 {
        return Err(super::exceptions::raise(exc));
    }
    // 3.11 finishes a `yield from` whose delegate's throw() returned (StopIteration) by
    // jumping to its SEND's target with the value, as SEND does (3.12+: the paused yield's
    // handler, CLEANUP_THROW, does it).
    if PyVersion::CURRENT == PyVersion::V3_11 && is_stop_iteration(py, &exc) {
        if let Some(send_target) = yield_from_send_target(&frame) {
            let value = exc.args.borrow().first().cloned();
            frame.popn(2); // the value `next` would have sent, and the delegate
            frame.stack.push(value.unwrap_or_else(|| Value::none(py)));
            frame.ip = send_target;
            let caller = tx.exc_info.clone();
            if let Err(e) = enter_generator_exc(tx, &mut frame, &caller) {
                *g.frame.borrow_mut() = Some(frame);
                return Err(e);
            }
            return match generator_run(tx, g, frame, caller)? {
                FrameExit::Yield(v) => Ok(v),
                FrameExit::Return(r) => Err(stop_iteration(tx, r)),
            };
        }
    }
    // CPython looks the handler up at the paused YIELD_VALUE.
    frame.current = frame.ip - 1;
    let caller = tx.exc_info.clone();
    if let Err(e) = enter_generator_exc(tx, &mut frame, &caller) {
        *g.frame.borrow_mut() = Some(frame);
        return Err(e);
    }
    exc.raised.set(true);
    super::exceptions::attach_context(tx, &exc);
    let handled = super::exceptions::unwind(tx, &mut frame, &exc);
    if !matches!(handled, Ok(true)) {
        tx.exc_info = caller;
        handled?;
        return Err(super::exceptions::raise(
            super::exceptions::leaving_generator(py, exc),
        ));
    }
    match generator_run(tx, g, frame, caller)? {
        FrameExit::Yield(v) => Ok(v),
        FrameExit::Return(r) => Err(stop_iteration(tx, r)),
    }
}

/// What a `throw()` into a generator paused in `yield from` did at its delegate.
enum Delegated {
    /// The delegate yielded: so does the paused generator, staying paused.
    Yielded(Value),
    /// The exception to raise at the paused generator's `yield`: the one thrown (no
    /// delegate, or one without `throw`, or GeneratorExit after closing the delegate), or
    /// the one the delegate's `throw()` raised (a StopIteration carries its return value).
    Raise(Rc<super::exceptions::ExcVal>),
}

/// The delegate of a generator paused inside `yield from` (as CPython's `_PyGen_yf` finds
/// it: the instruction after the paused YIELD_VALUE is a RESUME whose location, its
/// argument's low two bits, is 2 or 3 (3.13 flags a yield inside `except` in bit 2); the
/// delegate lies below the placeholder for the value sent).
fn yield_from_delegate(frame: &crate::interp::frame::Frame) -> Option<Value> {
    let next = frame.spec.decoded.instructions.get(frame.ip)?;
    if frame.ip == 0 || next.op != Opcode::RESUME || next.arg & 3 < 2 {
        return None;
    }
    frame.peek(2).cloned()
}

/// 3.11's `yield from` loop: `SEND; YIELD_VALUE; RESUME 2; ...`: the SEND's jump target.
fn yield_from_send_target(frame: &crate::interp::frame::Frame) -> Option<usize> {
    yield_from_delegate(frame)?;
    let send = frame
        .spec
        .decoded
        .instructions
        .get(frame.ip.checked_sub(2)?)?;
    (send.op == Opcode::SEND).then_some(send.target? as usize)
}

/// `throw()` into a generator paused in `yield from`: the exception goes to the delegate
/// first (a traced generator: its own throw(); GeneratorExit closes it), as CPython's
/// `gen_throw` does. A delegate without `throw` (a traced iterator over a container) leaves
/// the exception to the paused generator; any other delegate is a break.
fn throw_to_delegate(
    tx: &mut Tracer<'_>,
    g: &GenVal,
    exc: Rc<super::exceptions::ExcVal>,
) -> TResult<Delegated> {
    let py = tx.py;
    let delegate = match g.frame.borrow().as_deref() {
        Some(frame) => yield_from_delegate(frame),
        None => None,
    };
    match delegate {
        None | Some(Value::Iter(_)) => Ok(Delegated::Raise(exc)),
        Some(Value::Generator(sub)) if is_generator_exit(py, &exc) => {
            generator_close(tx, &sub)?;
            Ok(Delegated::Raise(exc))
        }
        Some(Value::Generator(sub)) => match generator_throw(tx, &sub, exc) {
            Ok(v) => Ok(Delegated::Yielded(v)),
            Err(Exit::Observed { exc, .. }) => Ok(Delegated::Raise(exc)),
            Err(e) => Err(e),
        },
        Some(other) => Err(Exit::brk(format!(
            "throw() into a `yield from` over a '{}'",
            other.type_name(py)
        ))),
    }
}

/// `gen.close()`: GeneratorExit at the paused `yield`; its `finally` blocks run. From 3.13
/// it returns what the generator returned, if it returned on GeneratorExit (else None).
pub fn generator_close(tx: &mut Tracer<'_>, g: &GenVal) -> TResult<Value> {
    let py = tx.py;
    let started = g.frame.borrow().as_ref().map(|f| f.ip > 0);
    match started {
        None => return Ok(Value::none(py)),
        Some(false) => {
            g.frame.borrow_mut().take();
            return Ok(Value::none(py));
        }
        Some(true) => {}
    }
    let exit =
        super::exceptions::builtin(py, "GeneratorExit", Vec::new()).map_err(|e| tx.err(e))?;
    match generator_throw(tx, g, exit) {
        Ok(_) => Err(super::exceptions::raise_builtin(
            py,
            "RuntimeError",
            "generator ignored GeneratorExit",
        )),
        Err(Exit::Observed { exc, .. })
            if PyVersion::CURRENT >= PyVersion::V3_13 && is_stop_iteration(py, &exc) =>
        {
            let returned = exc.args.borrow().first().cloned();
            Ok(returned.unwrap_or_else(|| Value::none(py)))
        }
        Err(Exit::Observed { exc, .. })
            if is_stop_iteration(py, &exc) || is_generator_exit(py, &exc) =>
        {
            Ok(Value::none(py))
        }
        Err(e) => Err(e),
    }
}
