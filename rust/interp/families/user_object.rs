//! Instances of user classes (and other Python objects without a family of their own):
//! attributes by CPython's lookup, traced dunders, pending stores in the side-effect
//! store.

use std::sync::Arc;

use pyo3::prelude::*;

use super::python_object::{self, obj, python_object_verbs};
use super::{Args, Family, Kwargs};
use crate::guards::Source;
use crate::interp::calls::{call_dunder, call_wrapped};
use crate::interp::exit::{Exit, TResult};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct UserObject;

impl Family for UserObject {
    fn name(&self) -> &'static str {
        "user object"
    }

    python_object_verbs!(setattr, truthy, python_type, as_constant);

    /// A `random.Random` made in the trace leaves with the state the trace left it in.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut crate::interp::output::Rebuild<'_>,
    ) -> TResult<crate::interp::output::OutTemplate> {
        use crate::interp::output::OutTemplate;
        if crate::interp::random_objects::is_trace_random(tx, v) {
            let (make, state) = crate::interp::random_objects::template(tx, v)?
                .ok_or_else(|| Exit::internal("random generator template"))?;
            return Ok(OutTemplate::Call(make, vec![OutTemplate::Const(state)]));
        }
        python_object::reconstruct(tx, v, out)
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        if let Some(r) = crate::interp::random_objects::getattr(tx, v, name)? {
            return Ok(r);
        }
        python_object::getattr(tx, v, name)
    }

    fn call_method(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        name: &str,
        args: Args,
        kwargs: Kwargs,
    ) -> TResult<Value> {
        if let Some(r) = crate::interp::random_objects::call_method(tx, v, name, &args, &kwargs)? {
            return Ok(r);
        }
        python_object::call_method(tx, v, name, args, kwargs)
    }

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        if let Some(r) = python_object::call_prelude(tx, v, &args, &kwargs)? {
            return Ok(r);
        }
        let py = tx.py;
        let o = obj(v)?;
        let f = o.obj.bind(py).clone();
        if crate::interp::module_call::is_new_module(tx, o)? {
            return crate::interp::module_call::call_new_module(tx, v, args, kwargs);
        }
        if f.is_instance_of::<crate::runtime::CompiledCode>() {
            // A function compiled with ferrodyn called inside a trace: inline the original.
            let inner = f.getattr("fn").map_err(|e| tx.err(e))?;
            return call_wrapped(tx, o, &inner, "fn", args, kwargs);
        }
        if args.is_empty() && kwargs.is_empty() && crate::interp::calls::is_weakref(&f) {
            // Dereferencing a weak reference: the referent, guarded through `ref()`.
            let referent = f.call0().map_err(|e| tx.err(e))?;
            let src = o
                .source
                .clone()
                .map(|s| Arc::new(Source::WeakrefDeref { base: s }));
            return tx.realize(&referent, src);
        }
        if kwargs.is_empty() {
            // `object.__setattr__(self, name, value)` / `object.__delattr__(self, name)`.
            if let Some(slot) = crate::interp::calls::object_store_slot(tx, &f) {
                return match args.split_first() {
                    Some((target, rest)) => {
                        crate::interp::calls::plain_store_call(tx, slot, target, rest)
                    }
                    None => Err(Exit::brk("object.__setattr__/__delattr__ without a target")),
                };
            }
            // `dict.__getitem__(d, k)`, `dict.get(d, k)`, `dict.__setitem__(d, k, v)`, ...
            // on a dict subclass object: dict's own method on its contents (the
            // subclass's overrides do not run).
            if let Some((Value::Object(r), rest)) = args.split_first() {
                if crate::interp::containers::is_sub_dict(r) {
                    if let Some(name) = crate::interp::calls::dict_own_method_name(tx, &f) {
                        return crate::interp::containers::sub_dict_read(tx, r, &name, rest);
                    }
                }
            }
        }
        let is_py = f
            .get_type()
            .getattr("__call__")
            .ok()
            .and_then(|c| c.get_type().name().ok().map(|n| n == "function"))
            .unwrap_or(false);
        if !is_py {
            return Err(Exit::brk(format!(
                "call to non-traceable object {}",
                tx.describe(&f)
            )));
        }
        let r = call_dunder(tx, v, "__call__", args)?;
        if kwargs.is_empty() {
            Ok(r)
        } else {
            Err(Exit::brk("keyword arguments to __call__"))
        }
    }

    /// A list/tuple subclass keeping the stock `__iter__` walks its items; otherwise the
    /// class's `__iter__` is traced.
    fn iter(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        let o = obj(v)?;
        if crate::interp::containers::stock_seq(tx, o) {
            let items = crate::interp::containers::stock_seq_items(tx, o)?;
            return Ok(crate::interp::iter::items_iter(items));
        }
        python_object::iter_by_dunder(tx, v)
    }
}
