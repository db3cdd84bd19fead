//! Object semantics by tracker family.
//!
//! Every value on the symbolic stack belongs to exactly one family (`family_of`, an
//! exhaustive match over `Value` and object kinds), and every family answers the same
//! verbs (`Family`): attribute reads and writes, calls, method calls, iteration, truth
//! value, Python type and constant value. The dispatch loop and the helpers route through
//! the free functions below; they never match on a family's representation themselves.
//!
//! A verb a family does not model is a named graph break (the trait's defaults), never a
//! silent fall-through. Families reach the tracer only through `tx`: inline a call, add a
//! graph node, install a guard, store through the side-effect store, raise an observed
//! exception, or break.

use pyo3::prelude::*;

use super::exit::{Exit, TResult};
use super::kinds::*;
use super::output::{OutTemplate, Rebuild};
use super::tracer::Tracer;
use super::value::Value;

/// `fn $name(v: &Value) -> TResult<&Rc<$ty>>`: a value's representation in the family
/// whose values are `Value::$variant` (an internal error for any other value).
macro_rules! representation {
    ($name:ident, $variant:ident, $ty:ty) => {
        fn $name(
            v: &crate::interp::value::Value,
        ) -> crate::interp::exit::TResult<&std::rc::Rc<$ty>> {
            match v {
                crate::interp::value::Value::$variant(x) => Ok(x),
                _ => Err(crate::interp::exit::Exit::internal(concat!(
                    stringify!($variant),
                    " family on another value"
                ))),
            }
        }
    };
}
pub(crate) use representation;

/// `call_method` for families whose methods are the builtin containers' own
/// (`containers::call_container_method`: tuple, list, dict and the stdlib models).
macro_rules! container_methods {
    () => {
        fn call_method(
            &self,
            tx: &mut crate::interp::tracer::Tracer<'_>,
            v: &crate::interp::value::Value,
            name: &str,
            args: super::Args,
            kwargs: super::Kwargs,
        ) -> crate::interp::exit::TResult<crate::interp::value::Value> {
            crate::interp::containers::call_container_method(tx, v, name, args, kwargs)
        }
    };
}
pub(crate) use container_methods;

pub mod bound_method;
pub mod builtin_function;
pub mod builtin_method;
pub mod cell;
pub mod constant;
pub mod dict;
pub mod exception;
pub mod function;
pub mod generator;
pub mod grad_mode;
pub mod iterator;
pub mod lazy;
pub mod list;
pub mod marker;
pub mod named_tuple;
pub mod nn_module;
pub mod null;
pub mod numpy_function;
pub mod python_module;
pub mod python_object;
pub mod slice;
pub mod stdlib;
pub mod super_object;
pub mod tensor;
pub mod torch_op;
pub mod tuple;
pub mod unsupported;
pub mod user_class;
pub mod user_object;

/// Positional and keyword arguments of a call, as traced values.
pub type Args = Vec<Value>;
pub type Kwargs = Vec<(String, Value)>;

/// The verb set every family implements. `v` is always a value of the implementing family.
pub trait Family: Sync {
    /// The family's name, used in graph-break reasons.
    fn name(&self) -> &'static str;

    /// `v.name`.
    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        let _ = (tx, v);
        Err(Exit::brk(format!(
            "attribute '{name}' of a {}",
            self.name()
        )))
    }

    /// `v.name = value`, or `del v.name` when `value` is None.
    fn setattr(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        name: &str,
        value: Option<Value>,
    ) -> TResult<()> {
        let _ = (tx, v, value);
        Err(Exit::brk(format!(
            "storing attribute '{name}' on a {}",
            self.name()
        )))
    }

    /// `v(*args, **kwargs)`.
    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        let _ = (tx, v, args, kwargs);
        Err(Exit::brk(format!("call to a {}", self.name())))
    }

    /// `v.name(*args, **kwargs)` for a method the family models on its own values (the
    /// callee was read as a `Value::BuiltinMethod`).
    fn call_method(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        name: &str,
        args: Args,
        kwargs: Kwargs,
    ) -> TResult<Value> {
        let _ = (tx, v, args, kwargs);
        Err(Exit::brk(format!("method '{name}' of a {}", self.name())))
    }

    /// `iter(v)`.
    fn iter(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        let _ = (tx, v);
        Err(Exit::brk(format!("iteration over a {}", self.name())))
    }

    /// `bool(v)`.
    fn truthy(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<bool> {
        let _ = (tx, v);
        Err(Exit::brk(format!("truth value of a {}", self.name())))
    }

    /// `type(v)`: the type eager would see.
    fn python_type<'py>(&self, tx: &Tracer<'py>, v: &Value) -> TResult<Bound<'py, PyAny>> {
        let _ = (tx, v);
        Err(Exit::brk(format!("type() of a {}", self.name())))
    }

    /// The constant Python object equal to `v`, when it is made only of constants.
    fn as_constant<'py>(&self, tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
        let _ = (tx, v);
        None
    }

    /// How `v` is rebuilt after the graph (returned, or live across a break): a template
    /// over the graph's outputs, constants and objects fetched by source (`out`). Objects
    /// with identity made or changed in the trace never reach this (the side-effect
    /// store's object table rebuilds them).
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let _ = out;
        Err(Exit::brk(format!(
            "returning a '{}' from the compiled region",
            v.type_name(tx.py)
        )))
    }
}

/// The family of a value.
pub fn family_of(v: &Value) -> &'static dyn Family {
    match v {
        Value::Null => &null::Null,
        Value::Const(_) => &constant::Constant,
        Value::Tensor(_) => &tensor::Tensor,
        Value::Tuple(_) => &tuple::Tuple,
        Value::NamedTuple(_) => &named_tuple::NamedTuple,
        Value::List(_) => &list::List,
        Value::Dict(_) => &dict::Dict,
        Value::Slice(_) => &slice::Slice,
        Value::Function(_) => &function::UserFunction,
        Value::BoundMethod(_) => &bound_method::BoundMethod,
        Value::BuiltinMethod(_) => &builtin_method::BuiltinMethod,
        Value::Object(o) => match o.kind {
            KIND_NN_MODULE => &nn_module::NnModule,
            KIND_TORCH_OP => &torch_op::TorchOp,
            KIND_NUMPY_FN => &numpy_function::NumpyFunction,
            KIND_PURE | KIND_OPERATOR => &builtin_function::BuiltinFunction,
            KIND_PY_MODULE | KIND_TORCH_MODULE => &python_module::PythonModule,
            KIND_CLASS => &user_class::UserClass,
            KIND_OBJECT => &user_object::UserObject,
            KIND_MARKER => &marker::Marker,
            // KIND_UNSUPPORTED, and any kind realization never gives an object.
            _ => &unsupported::Unsupported,
        },
        Value::Iter(_) => &iterator::Iterator,
        Value::Cell(_) | Value::ExternalCell(_) => &cell::Cell,
        Value::Super(_) => &super_object::Super,
        Value::GradMode(_) => &grad_mode::GradMode,
        Value::Generator(_) => &generator::Generator,
        Value::Exception(_) => &exception::Exception,
        Value::Std(_) => &stdlib::Stdlib,
        Value::Lazy(_) => &lazy::Lazy,
    }
}

/// `v.name`.
pub fn getattr(tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
    family_of(v).getattr(tx, v, name)
}

/// `v.name = value` (`value` None: `del v.name`).
pub fn setattr(tx: &mut Tracer<'_>, v: &Value, name: &str, value: Option<Value>) -> TResult<()> {
    family_of(v).setattr(tx, v, name, value)
}

/// `v(*args, **kwargs)`. Calls that mean raising or constructing an exception are
/// recognised first, whatever the callee's family.
pub fn call(tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
    if let Some(r) = super::exceptions::intercept_call(tx, v, &args, &kwargs)? {
        return Ok(r);
    }
    family_of(v).call(tx, v, args, kwargs)
}

/// `v.name(*args, **kwargs)` for a method bound by `getattr` as a `BuiltinMethod`.
pub fn call_method(
    tx: &mut Tracer<'_>,
    v: &Value,
    name: &str,
    args: Args,
    kwargs: Kwargs,
) -> TResult<Value> {
    family_of(v).call_method(tx, v, name, args, kwargs)
}

/// `iter(v)`. A pre-existing tuple or list iterator is its own iterator, whatever family
/// mirrors it.
pub fn iter(tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
    if super::iter::seq_iterator_mirror(tx, v)?.is_some() {
        return Ok(v.clone());
    }
    family_of(v).iter(tx, v)
}

/// How `v` is rebuilt after the graph (see `output::template_for`, which calls this).
pub fn reconstruct(tx: &mut Tracer<'_>, v: &Value, out: &mut Rebuild<'_>) -> TResult<OutTemplate> {
    family_of(v).reconstruct(tx, v, out)
}

/// `bool(v)`, for branches.
pub fn truthy(tx: &mut Tracer<'_>, v: &Value) -> TResult<bool> {
    let _depth = tx.nesting()?;
    family_of(v).truthy(tx, v)
}

/// `type(v)`. A polyfill's stand-in (`polyfills.TRACE_ONLY`) has another type than the
/// object eager makes: asking for it breaks.
pub fn python_type<'py>(tx: &Tracer<'py>, v: &Value) -> TResult<Bound<'py, PyAny>> {
    let py = tx.py;
    let stand_in = match v {
        Value::Object(o) => Some(o.obj.bind(py).get_type().into_any()),
        Value::Function(f) => Some(f.spec.code.bind(py).clone()),
        _ => None,
    };
    if let Some(k) = stand_in {
        if tx.hooks.trace_only.bind(py).contains(&k).unwrap_or(true) {
            return Err(Exit::brk("the type of an object the trace stands in for"));
        }
    }
    family_of(v).python_type(tx, v)
}

/// A constant Python object for a value made only of constants, if it is one.
pub fn as_constant<'py>(tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
    let _depth = tx.nesting().ok()?;
    family_of(v).as_constant(tx, v)
}
