//! Generators created in the trace: suspended frames resumed by `next`, `send`, `throw`
//! and `close` (`interp/iter.rs`).

use std::rc::Rc;

use pyo3::prelude::*;

use super::{Args, Family, Kwargs};
use crate::interp::exit::{Exit, TResult};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;
use crate::ImportCached;

pub struct Generator;

impl Family for Generator {
    fn name(&self) -> &'static str {
        "generator"
    }

    fn getattr(&self, _: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        match name {
            "send" | "throw" | "close" | "__next__" => {
                Ok(Value::BuiltinMethod(Rc::new((v.clone(), name.to_string()))))
            }
            _ => Err(Exit::brk(format!("attribute '{name}' of a generator"))),
        }
    }

    fn call_method(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        name: &str,
        args: Args,
        kwargs: Kwargs,
    ) -> TResult<Value> {
        let py = tx.py;
        let Value::Generator(g) = v else {
            return Err(Exit::internal("generator family on another value"));
        };
        if !kwargs.is_empty() {
            return Err(Exit::brk("keyword arguments to a generator method"));
        }
        let send = crate::interp::iter::generator_send;
        match (name, args.as_slice()) {
            ("send", [x]) => send(tx, g, x.clone()),
            ("__next__", []) => send(tx, g, Value::none(py)),
            ("close", []) => crate::interp::iter::generator_close(tx, g),
            ("throw", [e, ..]) if args.len() <= 3 => {
                let exc = match args.get(1) {
                    // throw(type, value): the class called with the value (or the value
                    // itself when it is already an instance).
                    Some(Value::Exception(x)) => x.clone(),
                    Some(x) if !matches!(x, Value::Const(c) if c.bind(py).is_none()) => {
                        match super::call(tx, e, vec![x.clone()], Vec::new())? {
                            Value::Exception(x) => x,
                            _ => return Err(Exit::brk("throw() with a non-exception")),
                        }
                    }
                    _ => crate::interp::exceptions::instantiate(tx, e)?
                        .ok_or_else(|| Exit::brk("throw() with a non-exception"))?,
                };
                crate::interp::iter::generator_throw(tx, g, exc)
            }
            _ => Err(Exit::brk(format!("generator.{name}() arguments"))),
        }
    }

    /// A generator is its own iterator.
    fn iter(&self, _: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        Ok(v.clone())
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, _: &Value) -> TResult<Bound<'py, PyAny>> {
        tx.py
            .import_cached("types")
            .and_then(|t| t.getattr("GeneratorType"))
            .map_err(|e| tx.err(e))
    }
}
