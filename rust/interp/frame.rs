//! One symbolic frame: the code being interpreted, its fast slots (locals, cells, free
//! variables), its value stack and its instruction pointer.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::exit::Location;
use super::value::{GlobalsAccess, Value};
use crate::spec_cache::CodeSpec;

pub struct Frame {
    pub spec: Arc<CodeSpec>,
    pub locals: Vec<Option<Value>>,
    /// Real objects not read yet, realized (and guarded) on first load: the root frame's
    /// arguments, and items of a list-like object from the inputs unpacked into locals.
    pub pending: Vec<Option<Py<PyAny>>>,
    /// Where a pending object other than an argument comes from (`row[1]` for `a, b =
    /// row`); an argument's source is its own slot.
    pub pending_sources: std::collections::HashMap<usize, std::sync::Arc<crate::guards::Source>>,
    pub stack: Vec<Value>,
    /// Index into `spec.decoded.instructions` of the next instruction.
    pub ip: usize,
    pub kw_names: Option<Vec<String>>,
    pub globals: Py<PyAny>,
    /// Where this frame's globals dict can be reached from for guards (None: unguarded).
    pub globals_source: GlobalsAccess,
    /// Free-variable cells for COPY_FREE_VARS.
    pub closure: Vec<Value>,
    /// Instruction index currently executing (for locations).
    pub current: usize,
    /// The compiled function's own frame (graph breaks split it; inlined frames do not).
    pub is_root: bool,
    /// A generator paused inside an `except` block: its own handled exception, and the
    /// caller's at that `yield` (CPython keeps a generator's exception state apart from its
    /// caller's; see `iter::generator_resume`).
    pub gen_exc: Option<(Option<Value>, Option<Value>)>,
}

impl Frame {
    /// The frame's globals dict.
    pub fn globals_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        Ok(self.globals.bind(py).cast::<PyDict>()?.clone())
    }

    pub fn location(&self) -> Location {
        let line = self
            .spec
            .decoded
            .instructions
            .get(self.current)
            .and_then(|i| i.line)
            .unwrap_or(self.spec.first_line);
        Location {
            file: self.spec.filename.clone(),
            line,
            function: self.spec.qualname.clone(),
        }
    }

    pub fn pop(&mut self) -> Value {
        self.stack.pop().unwrap_or(Value::Null)
    }

    pub fn popn(&mut self, n: usize) -> Vec<Value> {
        let at = self.stack.len().saturating_sub(n);
        self.stack.split_off(at)
    }

    pub fn top(&self) -> Option<&Value> {
        self.stack.last()
    }

    pub fn peek(&self, depth: usize) -> Option<&Value> {
        self.stack
            .len()
            .checked_sub(depth)
            .and_then(|i| self.stack.get(i))
    }
}
