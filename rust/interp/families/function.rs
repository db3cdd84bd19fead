//! User Python functions: inlined when called (bound by the function-spec cache).
//! Functions made in the trace keep their attributes on the value until they are rebuilt.

use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;

use super::{Args, Family, Kwargs};
use crate::guards::Source;
use crate::interp::exit::{Exit, TResult};
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::{FuncVal, Value};
use crate::ImportCached;

pub struct UserFunction;

super::representation!(func, Function, FuncVal);

impl Family for UserFunction {
    fn name(&self) -> &'static str {
        "function"
    }

    /// A function from the program is fetched (or is the constant it was); one created in
    /// the trace is rebuilt by the side-effect store's object table, if at all.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let f = func(v)?;
        Ok(match (&f.source, &f.obj) {
            (Some(s), _) => out.fetch(s),
            (None, Some(o)) => OutTemplate::Const(o.clone_ref(tx.py)),
            (None, None) => {
                return Err(Exit::brk(
                    "returning a function created in the compiled region (rebuilding it is not supported yet)",
                ))
            }
        })
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        let f = func(v)?;
        let Some(o) = &f.obj else {
            return crate::interp::attrs::new_function_attr(tx, f, name);
        };
        let r = o
            .bind(tx.py)
            .getattr(name)
            .map_err(|_| Exit::brk(format!("function has no attribute '{name}'")))?;
        let src = f.source.as_ref().map(|s| {
            Arc::new(Source::Attr {
                base: s.clone(),
                name: name.to_string(),
            })
        });
        tx.realize(&r, src)
    }

    fn setattr(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        name: &str,
        value: Option<Value>,
    ) -> TResult<()> {
        let f = func(v)?;
        if f.obj.is_none() {
            return store_new_function_attr(tx, f, name, value);
        }
        Err(Exit::brk(format!(
            "assignment to attribute '{name}' of a pre-existing function"
        )))
    }

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        let py = tx.py;
        let f = func(v)?;
        if let Some(o) = &f.obj {
            if let Some(h) = crate::interp::hook_handles::register(tx, o.bind(py), &args)? {
                return Ok(h);
            }
        }
        let rf = crate::interp::stdlib::r(tx)?;
        if f.obj.as_ref().is_some_and(|o| o.is(&rf.signature)) {
            return crate::interp::signature::signature_call(tx, &args, &kwargs);
        }
        if kwargs.is_empty() && f.obj.as_ref().is_some_and(|o| o.is(&rf.environ_getitem)) {
            if let Some(r) = crate::interp::environ::getitem(tx, &args)? {
                return Ok(r);
            }
        }
        // A library Python function with a polyfill (functools.update_wrapper).
        if let Some(o) = &f.obj {
            let pf = tx
                .hooks
                .polyfills
                .bind(py)
                .get_item(o.bind(py))
                .ok()
                .flatten();
            if let Some(pf) = pf {
                let pf = tx.realize(&pf, None)?;
                return super::call(tx, &pf, args, kwargs);
            }
        }
        crate::interp::calls::inline_call(tx, f, args, kwargs)
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, _: &Value) -> TResult<Bound<'py, PyAny>> {
        tx.py
            .import_cached("types")
            .and_then(|t| t.getattr("FunctionType"))
            .map_err(|e| tx.err(e))
    }
}

/// Attributes a function made in the trace can be given (CPython's writable function
/// attributes that ferrodyn rebuilds, and any name for the function's `__dict__`).
fn store_new_function_attr(
    tx: &mut Tracer<'_>,
    f: &Rc<crate::interp::value::FuncVal>,
    name: &str,
    value: Option<Value>,
) -> TResult<()> {
    let py = tx.py;
    let Some(value) = value else {
        return Err(Exit::brk(format!(
            "deleting attribute '{name}' of a function"
        )));
    };
    let ok = match name {
        "__name__" | "__qualname__" => value
            .as_const(py)
            .is_some_and(|c| c.is_instance_of::<pyo3::types::PyString>()),
        "__module__" | "__doc__" | "__wrapped__" | "__annotations__" => true,
        // 3.12's type parameters (functools.wraps copies them): a tuple.
        "__type_params__" => {
            crate::bytecode::PyVersion::CURRENT != crate::bytecode::PyVersion::V3_11
                && (matches!(value, Value::Tuple(_))
                    || value
                        .as_const(py)
                        .is_some_and(|c| c.is_exact_instance_of::<pyo3::types::PyTuple>()))
        }
        _ => !(name.starts_with("__") && name.ends_with("__")),
    };
    if !ok {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' of a function made in the trace"
        )));
    }
    let mut attrs = f.attrs.borrow_mut();
    attrs.retain(|(k, _)| k != name);
    attrs.push((name.to_string(), value));
    Ok(())
}
