//! The call instructions' shared part (`CALL`, 3.13's `CALL_KW`, `CALL_FUNCTION_EX`) and
//! `MAKE_FUNCTION`'s function building, once the version's dispatch (`dispatch.rs`,
//! `dispatch_313.rs`) has taken the operands off the stack in its own layout.

use std::rc::Rc;

use pyo3::prelude::*;

use super::dispatch::Flow;
use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::iter::unpack;
use super::slots::{cell_at, frame_locals, load_fast};
use super::tracer::Tracer;
use super::value::{FuncVal, Value};
use crate::bytecode::Opcode;

/// `super()` with no arguments: the `__class__` cell and the frame's first argument.
fn zero_arg_super(tx: &mut Tracer<'_>, frame: &mut Frame) -> TResult<Value> {
    let py = tx.py;
    let class_slot = frame.spec.localsplus.iter().position(|n| n == "__class__");
    let cls = match class_slot.and_then(|i| frame.locals.get(i).cloned().flatten()) {
        Some(Value::Cell(c)) => c.borrow().clone(),
        Some(Value::ExternalCell(c)) => tx.load_external_cell(&c)?,
        _ => None,
    };
    let cls = match cls {
        Some(Value::Object(o)) => o.obj.clone_ref(py),
        Some(Value::Const(c)) => c,
        _ => return Err(Exit::brk("super(): no __class__ cell")),
    };
    if frame.spec.argcount == 0 {
        return Err(Exit::brk("super(): no arguments"));
    }
    // CPython reads the first local, through its cell when an inner function captures it.
    let this = if frame.spec.cell_slots.contains(&0) {
        match cell_at(tx, frame, 0)? {
            Some(Value::Cell(c)) => c.borrow().clone(),
            Some(Value::ExternalCell(c)) => tx.load_external_cell(&c)?,
            _ => None,
        }
        .ok_or_else(|| Exit::brk("super(): the first argument's cell is empty"))?
    } else {
        load_fast(tx, frame, 0)?
    };
    Ok(Value::Super(Rc::new((cls, this))))
}

/// A call with its callee and arguments taken off the stack (`CALL`; 3.13's `CALL_KW`):
/// zero-argument `super()` and `locals()` read the frame, `torch.set_grad_enabled` outside
/// a `with` breaks, comptime calls run now; anything else goes to the callee's family.
pub(super) fn call(
    tx: &mut Tracer<'_>,
    frame: &mut Frame,
    callee: Value,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Flow> {
    use Opcode::BEFORE_WITH;
    let py = tx.py;
    if let (Value::Object(o), true, true) = (&callee, args.is_empty(), kwargs.is_empty()) {
        if o.obj.bind(py).is(tx.hooks.super_type.bind(py)) {
            let v = zero_arg_super(tx, frame)?;
            frame.stack.push(v);
            return Ok(Flow::Next);
        }
        if o.obj.bind(py).is(tx.hooks.b.locals.bind(py)) {
            let v = frame_locals(tx, frame)?;
            frame.stack.push(v);
            return Ok(Flow::Next);
        }
    }
    // `torch.set_grad_enabled(b)` switches the mode at the call (a `with` only
    // restores it at exit); only the `with torch.set_grad_enabled(b):` form is
    // modelled, so a plain call runs natively.
    if let Value::Object(o) = &callee {
        let next_op = frame.spec.decoded.instructions.get(frame.ip).map(|i| i.op);
        if o.obj
            .bind(py)
            .is(tx.hooks.grad_ctx.set_grad_enabled.bind(py))
            && next_op != Some(BEFORE_WITH)
        {
            return Err(Exit::brk(
                "torch.set_grad_enabled() called outside a `with` statement",
            ));
        }
    }
    if super::comptime::is_comptime(tx, &callee) {
        let v = super::comptime::call(tx, frame, &args, &kwargs)?;
        frame.stack.push(v);
        return Ok(Flow::Next);
    }
    let v = crate::interp::families::call(tx, &callee, args, kwargs)?;
    frame.stack.push(v);
    Ok(Flow::Next)
}

/// `f(*args, **kwargs)` (`CALL_FUNCTION_EX`, the callable and the NULL already popped).
pub(super) fn call_ex(
    tx: &mut Tracer<'_>,
    func: &Value,
    args: &Value,
    kwargs: Option<Value>,
) -> TResult<Value> {
    let py = tx.py;
    let args = unpack(tx, args)?;
    let kwargs = match kwargs {
        None => Vec::new(),
        Some(Value::Dict(d)) => {
            let mut out = Vec::new();
            for (k, v) in tx.dict_items(&d)? {
                let k: String = k
                    .bind(py)
                    .extract()
                    .map_err(|_| Exit::brk("keywords must be strings"))?;
                out.push((k, v));
            }
            out
        }
        Some(_) => return Err(Exit::brk("** argument that is not a dict")),
    };
    crate::interp::families::call(tx, func, args, kwargs)
}

/// A function made in the trace from its code and MAKE_FUNCTION's optional parts (3.11,
/// 3.12: flagged in its argument; 3.13: none here, each set by SET_FUNCTION_ATTRIBUTE).
pub(super) fn make_function(
    tx: &mut Tracer<'_>,
    frame: &Frame,
    code: &Value,
    [defaults, kwdefaults, annotations, closure]: [Option<Value>; 4],
) -> TResult<Value> {
    let py = tx.py;
    let code = code
        .as_const(py)
        .ok_or_else(|| Exit::internal("MAKE_FUNCTION without code"))?
        .clone();
    let spec = crate::spec_cache::SPEC_CACHE
        .get(&code)
        .map_err(|e| Exit::Skip {
            reason: format!("cannot decode code object: {e}"),
        })?;
    let defaults = match defaults {
        Some(d) => Some(unpack(tx, &d)?),
        None => Some(Vec::new()),
    };
    let kwdefaults = match kwdefaults {
        Some(d) => Some(kwdefaults_of(tx, &d)?),
        None => Some(Vec::new()),
    };
    let closure = match closure {
        Some(c) => unpack(tx, &c)?,
        None => Vec::new(),
    };
    Ok(Value::Function(Rc::new(FuncVal {
        obj: None,
        spec,
        globals: frame.globals.clone_ref(py),
        defaults,
        kwdefaults,
        closure,
        source: None,
        globals_source: frame.globals_source.clone(),
        annotations,
        attrs: Default::default(),
    })))
}

/// The keyword-only defaults dict of MAKE_FUNCTION / SET_FUNCTION_ATTRIBUTE, as pairs.
fn kwdefaults_of(tx: &mut Tracer<'_>, d: &Value) -> TResult<Vec<(String, Value)>> {
    let Value::Dict(d) = d else {
        return Ok(Vec::new());
    };
    tx.dict_items(d)?
        .into_iter()
        .map(|(k, v)| Ok((k.bind(tx.py).extract::<String>().map_err(|e| tx.err(e))?, v)))
        .collect()
}

/// 3.13's `SET_FUNCTION_ATTRIBUTE`: the function just made (by MAKE_FUNCTION, in the trace)
/// with one of its optional parts set: defaults (`0x01`), keyword-only defaults (`0x02`),
/// annotations (`0x04`) or the closure (`0x08`).
pub(super) fn set_function_attribute(
    tx: &mut Tracer<'_>,
    func: &Value,
    flag: u32,
    attr: Value,
) -> TResult<Value> {
    let py = tx.py;
    let Value::Function(f) = func else {
        return Err(Exit::internal("SET_FUNCTION_ATTRIBUTE on a non-function"));
    };
    if f.obj.is_some() {
        return Err(Exit::internal(
            "SET_FUNCTION_ATTRIBUTE on a function not made in the trace",
        ));
    }
    let mut new = FuncVal {
        obj: None,
        spec: f.spec.clone(),
        globals: f.globals.clone_ref(py),
        defaults: f.defaults.clone(),
        kwdefaults: f.kwdefaults.clone(),
        closure: f.closure.clone(),
        source: f.source.clone(),
        globals_source: f.globals_source.clone(),
        annotations: f.annotations.clone(),
        attrs: f.attrs.clone(),
    };
    match flag {
        0x01 => new.defaults = Some(unpack(tx, &attr)?),
        0x02 => new.kwdefaults = Some(kwdefaults_of(tx, &attr)?),
        0x04 => new.annotations = Some(attr),
        0x08 => new.closure = unpack(tx, &attr)?,
        other => {
            return Err(Exit::brk(format!(
                "SET_FUNCTION_ATTRIBUTE with the unknown flag {other:#x}"
            )))
        }
    }
    Ok(Value::Function(Rc::new(new)))
}
