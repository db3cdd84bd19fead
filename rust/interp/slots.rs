//! A frame's fast slots: reading a local (an argument is realized, and guarded, on first
//! load), the cell behind a cell or free variable, and `locals()`.

use std::sync::Arc;

use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::tracer::Tracer;
use super::value::Value;
use crate::guards::Source;

/// `frame`'s slot `i` at entry, as a guard source.
fn slot_source(frame: &Frame, i: usize) -> Arc<Source> {
    Arc::new(Source::Local {
        index: i as u32,
        name: frame.spec.localsplus.get(i).cloned().unwrap_or_default(),
    })
}

/// LOAD_FAST: the slot's value; an argument not loaded yet is realized from its object.
pub fn load_fast(tx: &mut Tracer<'_>, frame: &mut Frame, i: usize) -> TResult<Value> {
    if let Some(Some(v)) = frame.locals.get(i) {
        return Ok(v.clone());
    }
    if let Some(Some(obj)) = frame.pending.get_mut(i).map(|p| p.take()) {
        let src = frame
            .pending_sources
            .remove(&i)
            .unwrap_or_else(|| slot_source(frame, i));
        let v = tx.realize(obj.bind(tx.py), Some(src))?;
        frame.locals[i] = Some(v.clone());
        return Ok(v);
    }
    let name = frame.spec.localsplus.get(i).cloned().unwrap_or_default();
    Err(Exit::brk(format!(
        "local variable '{name}' referenced before assignment"
    )))
}

/// The cell in slot `i` for LOAD_DEREF/STORE_DEREF/LOAD_CLOSURE. A resume function receives
/// the original frame's cells as arguments: such a slot still holds the real cell object,
/// which becomes an external cell whose contents are read through `cell_contents` (and
/// stay shared with the inner functions that close over it).
pub fn cell_at(tx: &mut Tracer<'_>, frame: &mut Frame, i: usize) -> TResult<Option<Value>> {
    if let Some(Some(v)) = frame.locals.get(i) {
        return Ok(Some(v.clone()));
    }
    let Some(Some(obj)) = frame.pending.get(i) else {
        return Ok(None);
    };
    if frame.pending_sources.contains_key(&i) {
        return Ok(None); // an unpacked item, not a cell argument
    }
    // SAFETY: a type check of a live object.
    if unsafe { pyo3::ffi::PyCell_Check(obj.as_ptr()) } == 0 {
        return Ok(None);
    }
    let obj = obj.clone_ref(tx.py);
    if let Some(p) = frame.pending.get_mut(i) {
        *p = None;
    }
    let src = Arc::new(Source::Attr {
        base: slot_source(frame, i),
        name: "cell_contents".into(),
    });
    let v = crate::interp::tracer::external_cell(obj, Some(src));
    frame.locals[i] = Some(v.clone());
    Ok(Some(v))
}

/// `locals()`: a new dict of the frame's bound variables in slot order (cells and free
/// variables by their contents), as CPython 3.11 builds it. A continuation's own
/// temporaries are left out.
pub fn frame_locals(tx: &mut Tracer<'_>, frame: &mut Frame) -> TResult<Value> {
    let py = tx.py;
    let mut items = Vec::new();
    for i in 0..frame.spec.localsplus.len() {
        let bound = matches!(frame.locals.get(i), Some(Some(_)))
            || matches!(frame.pending.get(i), Some(Some(_)));
        if !bound || frame.spec.localsplus[i].starts_with(crate::bytecode::resume::TEMP_PREFIX) {
            continue;
        }
        let slot = if frame.spec.cell_slots.contains(&i) {
            cell_at(tx, frame, i)?
        } else {
            None
        };
        let v = match slot.map_or_else(|| load_fast(tx, frame, i), Ok)? {
            Value::Cell(c) => c.borrow().clone(),
            Value::ExternalCell(c) => tx.load_external_cell(&c)?,
            v => Some(v),
        };
        if let Some(v) = v {
            let name = pyo3::types::PyString::new(py, &frame.spec.localsplus[i]);
            items.push((name.into_any().unbind(), v));
        }
    }
    Ok(Value::new_dict_from(items))
}
