//! Graph breaks in the compiled function's own frame: the state before the breaking
//! instruction is captured, and turned into templates that rebuild the live stack and
//! locals from the graph's outputs, so glue code can run the instruction natively and
//! continue in a resume function.

use std::sync::Arc;

use pyo3::prelude::*;

use super::exit::{Exit, Location, TResult};
use super::frame::Frame;
use super::output::{template_for, OutTemplate};
use super::tracer::Tracer;
use super::value::Value;
use crate::bytecode::resume::Slot;
use crate::bytecode::Opcode;
use crate::guards::Source;

/// Instructions at which the root frame can be split: calls (the callee runs natively, or
/// through its own compiled wrapper) and branches on values (e.g. data-dependent `if`).
pub fn splittable_op(op: Opcode) -> bool {
    use Opcode::*;
    matches!(
        op,
        CALL | CALL_FUNCTION_EX
            | POP_JUMP_FORWARD_IF_TRUE
            | POP_JUMP_FORWARD_IF_FALSE
            | POP_JUMP_BACKWARD_IF_TRUE
            | POP_JUMP_BACKWARD_IF_FALSE
    )
}

pub struct Snapshot {
    pub index: usize,
    pub stack: Vec<Value>,
    pub locals: Vec<Option<Value>>,
    pub pending: Vec<Option<Py<PyAny>>>,
    graph_mark: usize,
    /// The side-effect store's generation before the instruction.
    pub side_effects_generation: u64,
}

impl Snapshot {
    pub fn take(tx: &Tracer<'_>, frame: &Frame, index: usize) -> TResult<Snapshot> {
        let graph_mark = tx
            .gb
            .call_method0("mark")
            .and_then(|m| m.extract())
            .map_err(|e| tx.err(e))?;
        super::value::iters_snapshot_taken();
        Ok(Snapshot {
            index,
            stack: frame.stack.clone(),
            locals: frame.locals.clone(),
            pending: frame
                .pending
                .iter()
                .map(|p| p.as_ref().map(|o| o.clone_ref(tx.py)))
                .collect(),
            graph_mark,
            side_effects_generation: tx.side_effects.generation(),
        })
    }
}

/// Where and how the root frame is split.
pub struct SplitPoint {
    /// The breaking instruction.
    pub index: usize,
    /// Where the glue starts: the instruction, or the KW_NAMES/PRECALL leading to it.
    pub start: usize,
    /// Stack before `start`; None marks a NULL.
    pub stack: Vec<Option<OutTemplate>>,
    /// Bound `co_varnames` slots and how to rebuild each.
    pub locals: Vec<(usize, OutTemplate)>,
    /// Stack layouts after the instruction: fall-through, and the jump target if any.
    pub after_fall: Vec<Slot>,
    pub after_jump: Option<Vec<Slot>>,
    /// Jump target of a branching instruction (original instruction index).
    pub jump_target: Option<usize>,
    pub reason: String,
    pub at: Location,
    /// For a call that broke inside an inlined user function: the stack index of the
    /// callee, which the runtime wraps in a compiled wrapper.
    pub wrap_callee: Option<usize>,
}

/// Why and where the trace broke, and whether inside an inlined callee.
pub struct BreakCause {
    pub reason: String,
    pub at: Location,
    pub inlined: bool,
}

/// Build the split point for a break in the root frame, or explain why it can't be split.
pub fn split_point(
    tx: &mut Tracer<'_>,
    snap: Snapshot,
    frame_spec: &crate::spec_cache::CodeSpec,
    why: BreakCause,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<SplitPoint> {
    let spec = frame_spec;
    let BreakCause {
        reason,
        at,
        inlined,
    } = why;
    let n_varnames = spec.varnames.len();
    if spec.localsplus.len() != n_varnames + spec.nfree {
        return Err(Exit::brk(
            "graph break in a function whose locals are captured by inner functions",
        ));
    }
    tx.gb
        .call_method1("rollback", (snap.graph_mark,))
        .map_err(|e| tx.err(e))?;
    let instrs = &spec.decoded.instructions;
    let ins = instrs
        .get(snap.index)
        .ok_or_else(|| Exit::internal("bad break index"))?;
    // Start at KW_NAMES if the call has keyword names (they live outside the stack).
    let mut start = snap.index;
    while start > 0 && matches!(instrs[start - 1].op, Opcode::PRECALL | Opcode::KW_NAMES) {
        start -= 1;
    }
    let mut stack = Vec::with_capacity(snap.stack.len());
    let mut layout = Vec::with_capacity(snap.stack.len());
    for v in &snap.stack {
        if let Value::Null = v {
            stack.push(None);
            layout.push(Slot::Null);
        } else {
            stack.push(Some(template_for(tx, v, outputs, extra)?));
            layout.push(Slot::Value);
        }
    }
    let mut locals = Vec::new();
    for i in 0..n_varnames {
        let t = match (
            snap.locals.get(i).cloned().flatten(),
            snap.pending.get(i).and_then(|p| p.as_ref()),
        ) {
            (Some(v), _) => template_for(tx, &v, outputs, extra)?,
            (None, Some(_)) => {
                let src = Arc::new(Source::Local {
                    index: i as u32,
                    name: spec.localsplus[i].clone(),
                });
                let pos = extra.iter().position(|e| *e == src).unwrap_or_else(|| {
                    extra.push(src.clone());
                    extra.len() - 1
                });
                OutTemplate::Fetched(pos)
            }
            (None, None) => continue,
        };
        locals.push((i, t));
    }
    let (consumed, pushes_result) = match ins.op {
        Opcode::CALL => (ins.arg as usize + 2, true),
        Opcode::CALL_FUNCTION_EX => (3 + (ins.arg as usize & 1), true),
        _ => (1, false),
    };
    if consumed > layout.len() {
        return Err(Exit::internal("stack underflow at a graph break"));
    }
    let mut after_fall: Vec<Slot> = layout[..layout.len() - consumed].to_vec();
    if pushes_result {
        after_fall.push(Slot::Value);
    }
    let jump_target = ins.target.map(|t| t as usize);
    let after_jump = jump_target.map(|_| after_fall.clone());
    let base = layout.len() - consumed;
    let wrap_callee = match ins.op {
        // [NULL, callable, args...] or [method, self, args...]
        Opcode::CALL if inlined => Some(if layout[base] == Slot::Null {
            base + 1
        } else {
            base
        }),
        Opcode::CALL_FUNCTION_EX if inlined => Some(base + 1),
        _ => None,
    };
    Ok(SplitPoint {
        wrap_callee,
        index: snap.index,
        start,
        stack,
        locals,
        after_fall,
        after_jump,
        jump_target,
        reason,
        at,
    })
}
