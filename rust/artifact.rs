//! What a cache entry runs: the compiled graph alone, the graph then glue that continues a
//! split frame, or the function eagerly; and helpers of the hit path's calls into Python
//! (the graph by vectorcall; the glue's code, for the frame hook).

use pyo3::prelude::*;

use crate::interp::output::OutTemplate;
use crate::side_effects::ReplayPlan;

/// A cache entry's compiled result (run by `CompiledCode::run_artifact`).
pub enum Artifact {
    Graph {
        compiled: Py<PyAny>,
        n_inputs: usize,
        template: OutTemplate,
        /// Side effects replayed after the graph (side_effects/replay.rs).
        replay: ReplayPlan,
    },
    /// The trace stopped (graph break, unsupported step): run the function eagerly.
    Eager { reason: String },
    /// A graph break in the frame: the graph runs what came before it, then the glue runs
    /// the breaking step natively and continues in a compiled resume function.
    Split {
        compiled: Py<PyAny>,
        n_inputs: usize,
        /// Templates for the stack before the break (None: a NULL, not passed).
        stack: Vec<Option<OutTemplate>>,
        /// Templates for the bound locals, in the glue's argument order.
        locals: Vec<OutTemplate>,
        glue: Py<PyAny>,
        /// Mutations recorded before the break.
        replay: crate::side_effects::ReplayPlan,
    },
}

/// `f(*args)` through vectorcall: the graph's inputs go straight from the fetched values,
/// without building an argument tuple. Up to 16 inputs are copied after a spare slot and
/// passed with `PY_VECTORCALL_ARGUMENTS_OFFSET`, so a bound method (the FX `forward`) puts
/// its `self` there instead of allocating a new argument array.
pub(crate) fn call_with<'py>(
    py: Python<'py>,
    f: &Py<PyAny>,
    args: &[Py<PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    const SPARE: usize = 16;
    let mut buf: [*mut pyo3::ffi::PyObject; SPARE + 1] = [std::ptr::null_mut(); SPARE + 1];
    // SAFETY: `Py<PyAny>` is a transparent non-null object pointer, so `args` (or its copy
    // in `buf`, after the spare slot 0 the callee may overwrite) is a valid array of
    // `args.len()` borrowed references for the duration of the call; the result is a new
    // reference or NULL with an exception set.
    unsafe {
        let (ptr, nargsf) = if args.len() <= SPARE {
            for (slot, a) in buf[1..].iter_mut().zip(args) {
                *slot = a.as_ptr();
            }
            (
                buf.as_mut_ptr().add(1),
                args.len() | pyo3::ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
            )
        } else {
            (
                args.as_ptr().cast::<*mut pyo3::ffi::PyObject>().cast_mut(),
                args.len(),
            )
        };
        let r = pyo3::ffi::PyObject_Vectorcall(f.as_ptr(), ptr, nargsf, std::ptr::null_mut());
        Bound::from_owned_ptr_or_err(py, r)
    }
}

/// The code object of a glue function (borrowed; null if it is not a function).
pub(crate) fn glue_code(glue: &Bound<'_, PyAny>) -> *mut pyo3::ffi::PyObject {
    // SAFETY: checked to be a function first; the code is only compared by address.
    unsafe {
        if pyo3::ffi::PyFunction_Check(glue.as_ptr()) == 0 {
            return std::ptr::null_mut();
        }
        pyo3::ffi::PyFunction_GetCode(glue.as_ptr())
    }
}
