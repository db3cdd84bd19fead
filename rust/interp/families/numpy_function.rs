//! NumPy functions (`np.sin`, `np.sum`, `np.maximum`, ...): a call is a graph node running
//! the function's `torch._numpy` twin on tensors, its tensors NumPy arrays again
//! (`interp/numpy_arrays.rs`); without a twin, or with `trace_numpy` off, a graph break.

use super::python_object::{obj, python_object_verbs};
use super::{Args, Family, Kwargs};
use crate::interp::exit::TResult;
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct NumpyFunction;

impl Family for NumpyFunction {
    fn name(&self) -> &'static str {
        "NumPy function"
    }

    python_object_verbs!(
        getattr,
        setattr,
        call_method,
        truthy,
        python_type,
        as_constant,
        reconstruct
    );

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        let f = obj(v)?.obj.bind(tx.py).clone();
        crate::interp::numpy_arrays::call_function(tx, &f, &args, &kwargs)
    }
}
