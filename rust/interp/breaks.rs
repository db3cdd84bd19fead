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
use super::value::{IterMark, Value};
use crate::bytecode::resume::{is_method_load, jump_skips_end_for, null_after_callable, Slot};
use crate::bytecode::{Opcode, PyVersion};
use crate::guards::Source;

/// How the root frame splits at one instruction: the stack entries it consumes, and how
/// many values it pushes on its fall-through edge and (for a branch) on its jump edge.
/// (Checked before every root-frame instruction, so it allocates nothing.)
#[derive(Clone, Copy)]
pub struct SplitEffect {
    pub pops: usize,
    pub fall: usize,
    pub jump: Option<usize>,
}

/// The instructions at which the root frame can be split (the glue runs them natively):
/// every instruction whose effect on the stack is known statically (a method load, whose
/// layout depends on the value, runs as an attribute load there). Not splittable: stack
/// and local shuffles that cannot fail, and those inside comprehension/exception machinery
/// that reach below the top of the stack.
pub fn split_effect(op: Opcode, arg: u32) -> Option<SplitEffect> {
    use Opcode::*;
    let n = arg as usize;
    let (pops, fall, jump) = match op {
        CALL => (n + 2, 1, None),
        // 3.13: the keyword names are a tuple on top of the arguments.
        CALL_KW => (n + 3, 1, None),
        CALL_FUNCTION_EX => (3 + (n & 1), 1, None),
        POP_JUMP_FORWARD_IF_TRUE
        | POP_JUMP_FORWARD_IF_FALSE
        | POP_JUMP_BACKWARD_IF_TRUE
        | POP_JUMP_BACKWARD_IF_FALSE
        | POP_JUMP_FORWARD_IF_NONE
        | POP_JUMP_FORWARD_IF_NOT_NONE
        | POP_JUMP_BACKWARD_IF_NONE
        | POP_JUMP_BACKWARD_IF_NOT_NONE
        | POP_JUMP_IF_TRUE
        | POP_JUMP_IF_FALSE
        | POP_JUMP_IF_NONE
        | POP_JUMP_IF_NOT_NONE => (1, 0, Some(0)),
        // The jump keeps the tested value on the stack; the fall-through pops it.
        JUMP_IF_TRUE_OR_POP | JUMP_IF_FALSE_OR_POP => (1, 0, Some(1)),
        // Exhausted: the iterator is popped and control leaves the loop.
        FOR_ITER => (1, 2, Some(0)),
        BINARY_SUBSCR | BINARY_OP | COMPARE_OP | IS_OP | CONTAINS_OP => (2, 1, None),
        // Split as `PUSH_NULL; SWAP 2; LOAD_ATTR` (see `bytecode::resume::Redirect`), so
        // NULL and the attribute replace the object.
        LOAD_METHOD => (1, 2, None),
        LOAD_ATTR if is_method_load(PyVersion::CURRENT, op, arg) => (1, 2, None),
        LOAD_ATTR | GET_ITER | UNARY_POSITIVE | UNARY_NEGATIVE | UNARY_NOT | UNARY_INVERT => {
            (1, 1, None)
        }
        // 3.13: truth tests and the parts of an f-string's FORMAT_VALUE.
        TO_BOOL | FORMAT_SIMPLE | CONVERT_VALUE => (1, 1, None),
        FORMAT_WITH_SPEC => (2, 1, None),
        FORMAT_VALUE => (1 + usize::from(n & 0x04 != 0), 1, None),
        BUILD_STRING => (n, 1, None),
        STORE_ATTR | DELETE_SUBSCR => (2, 0, None),
        STORE_SUBSCR | BINARY_SLICE => (3, usize::from(op == BINARY_SLICE), None),
        STORE_SLICE => (4, 0, None),
        DELETE_ATTR => (1, 0, None),
        IMPORT_NAME => (2, 1, None),
        // The module stays below the imported name.
        IMPORT_FROM => (1, 2, None),
        UNPACK_SEQUENCE => (1, n, None),
        // 3.12: the start of an inlined comprehension, split as the whole comprehension
        // (the iterator in, the built container out; see `comprehension_end`).
        LOAD_FAST_AND_CLEAR => (1, 1, None),
        UNPACK_EX => (1, (n & 0xff) + (n >> 8) + 1, None),
        _ => return None,
    };
    Some(SplitEffect { pops, fall, jump })
}

pub struct Snapshot {
    pub index: usize,
    /// How many split points of the root frame came before this one in the trace (its
    /// identity for a re-trace that stops here: see `Tracer::forced_break`).
    pub ordinal: u64,
    pub stack: Vec<Value>,
    pub locals: Vec<Option<Value>>,
    pub pending: Vec<Option<Py<PyAny>>>,
    pub pending_sources: std::collections::HashMap<usize, Arc<Source>>,
    graph_mark: usize,
    /// The side-effect store's generation before the instruction.
    pub side_effects_generation: u64,
    /// Where the side-effect store stood before the instruction (for a rollback).
    pub side_effects_mark: crate::side_effects::store::StoreMark,
    /// How many guards the trace had before the instruction: a break inside a callee that
    /// added more (reading what the callee read) traces again, stopping before the call.
    pub guards_len: usize,
    /// Traced iterators on the stack or in locals, and where they stood: a call that breaks
    /// after advancing one (a comprehension) rewinds it before it is rebuilt for the glue.
    pub iters: Vec<(
        std::rc::Rc<std::cell::RefCell<crate::interp::value::IterVal>>,
        IterMark,
    )>,
}

impl Snapshot {
    pub fn take(tx: &mut Tracer<'_>, frame: &Frame, index: usize) -> TResult<Snapshot> {
        // The graph position only moves when a node may have been added.
        let graph_mark = match tx.graph_mark {
            Some((calls, mark)) if calls == tx.graph_calls => mark,
            _ => {
                let mark: usize = tx
                    .gb
                    .call_method0("mark")
                    .and_then(|m| m.extract())
                    .map_err(|e| tx.err(e))?;
                tx.graph_mark = Some((tx.graph_calls, mark));
                mark
            }
        };
        let mut iters = Vec::new();
        for v in frame.stack.iter().chain(frame.locals.iter().flatten()) {
            if let (Value::Iter(it), Some(m)) = (v, IterMark::of(v)) {
                if !iters.iter().any(|(i, _)| std::rc::Rc::ptr_eq(i, it)) {
                    iters.push((it.clone(), m));
                }
            }
        }
        super::value::iters_snapshot_taken(&iters);
        tx.root_split_points += 1;
        if frame.spec.decoded.instructions[index].op == Opcode::LOAD_FAST_AND_CLEAR {
            tx.comprehension_starts.push((index, tx.root_split_points));
        }
        Ok(Snapshot {
            iters,
            index,
            ordinal: tx.root_split_points,
            stack: frame.stack.clone(),
            locals: frame.locals.clone(),
            pending: frame
                .pending
                .iter()
                .map(|p| p.as_ref().map(|o| o.clone_ref(tx.py)))
                .collect(),
            pending_sources: frame.pending_sources.clone(),
            graph_mark,
            side_effects_generation: tx.side_effects.generation(),
            side_effects_mark: tx.side_effects.mark(),
            guards_len: tx.guards.len(),
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
    /// The last instruction the glue runs on the fall-through path: the breaking
    /// instruction, or the STORE_FASTs right after it that store what it pushed (so a loop
    /// variable or call result reaches the resume function as a lazily guarded local).
    pub fall_at: usize,
    /// Original `co_varnames` slots bound after `fall_at` (passed to its resume function).
    pub fall_bound: Vec<usize>,
    /// Slots passed to the jump target's resume function (those of `locals` live there).
    pub jump_bound: Vec<usize>,
    /// Stack layouts after the instruction (fall-through: after `fall_at`), and at the jump
    /// target if any.
    pub after_fall: Vec<Slot>,
    pub after_jump: Option<Vec<Slot>>,
    /// Jump target of a branching instruction (original instruction index).
    pub jump_target: Option<usize>,
    pub reason: String,
    pub at: Location,
    /// For a call that broke inside an inlined user function: the stack index of the
    /// callee, which the runtime wraps in a compiled wrapper.
    pub wrap_callee: Option<usize>,
    /// The rest of the frame after the breaking call runs eagerly, not in a compiled
    /// resume function (`torch._dynamo.step_unsupported()`).
    pub eager_rest: bool,
}

impl SplitPoint {
    /// Re-expresses this split in the original code a resume function continues:
    /// instruction indices shift by `body_start`, local slots map back through
    /// `slot_origin` (prologue temporaries are dropped). Returns false, changing nothing,
    /// if the split lies in the prologue or a slot is unknown.
    pub fn map_to_origin(&mut self, body_start: usize, slot_origin: &[Option<usize>]) -> bool {
        let ok = self.index >= body_start
            && self.start >= body_start
            && self.jump_target.is_none_or(|t| t >= body_start)
            && self.locals.iter().all(|(s, _)| *s < slot_origin.len())
            && self.fall_bound.iter().all(|s| *s < slot_origin.len())
            && self.jump_bound.iter().all(|s| *s < slot_origin.len());
        if !ok {
            return false;
        }
        self.index -= body_start;
        self.fall_at -= body_start;
        self.start -= body_start;
        self.jump_target = self.jump_target.map(|t| t - body_start);
        // Stack temporaries of the prologue are dead once it has run.
        self.locals = std::mem::take(&mut self.locals)
            .into_iter()
            .filter_map(|(slot, t)| slot_origin[slot].map(|o| (o, t)))
            .collect();
        self.fall_bound = self
            .fall_bound
            .iter()
            .filter_map(|s| slot_origin[*s])
            .collect();
        self.jump_bound = self
            .jump_bound
            .iter()
            .filter_map(|s| slot_origin[*s])
            .collect();
        true
    }
}

/// 3.13 tests a condition in two steps: `TO_BOOL` (or a `COMPARE_OP` whose argument asks
/// for a bool) makes an exact bool, then `POP_JUMP_IF_TRUE`/`FALSE` jumps on it. A break at
/// the test splits at the jump: the glue runs both natively and each successor gets its own
/// resume function, as a break at 3.11's jump does (rather than one resume function
/// guarded on the bool). Returns the jump's index.
pub fn truth_test_jump(decoded: &crate::bytecode::Decoded, index: usize) -> Option<usize> {
    use Opcode::*;
    let test = decoded.instructions.get(index)?;
    let makes_bool = match test.op {
        TO_BOOL => true,
        COMPARE_OP => decoded.version >= PyVersion::V3_13 && test.arg & 16 != 0,
        _ => false,
    };
    let jump = decoded.instructions.get(index + 1)?;
    (makes_bool && matches!(jump.op, POP_JUMP_IF_TRUE | POP_JUMP_IF_FALSE)).then_some(index + 1)
}

/// Why and where the trace broke, and whether inside an inlined callee.
pub struct BreakCause {
    pub reason: String,
    pub at: Location,
    pub inlined: bool,
    /// See `SplitPoint::eager_rest`.
    pub eager_rest: bool,
}

/// Every break whose cause is a value computed from tensor data (a branch on a tensor,
/// `.item()`, `nonzero`, one-argument `where`, ...) has a reason starting with this.
pub const DATA_DEPENDENT: &str = "data-dependent";

/// Whether a break at instruction `index` of `decoded` gives up on the frame instead of
/// splitting it: a data-dependent break (in this frame's code or in a callee it inlined)
/// while this frame is inside a loop (some later instruction jumps back to `index` or
/// before it). Each iteration would follow the data down another path, so resume functions
/// there recompile per iteration and per size (Mixtral's experts made 7 graphs where
/// torch.compile makes 3). Like torch.compile, the frame runs eagerly and the calls in it
/// are compiled as frames of their own. Other breaks in loops (`graph_break()`, an
/// unsupported call, I/O) still resume inside the loop.
pub fn skips_frame(decoded: &crate::bytecode::Decoded, index: usize, reason: &str) -> bool {
    reason.starts_with(DATA_DEPENDENT)
        && decoded.instructions[index..]
            .iter()
            .any(|ins| matches!(ins.target, Some(t) if (t as usize) <= index))
}

/// 3.12 inlines comprehensions (PEP 709): from `start`, `LOAD_FAST_AND_CLEAR` of each of its
/// n variables, `SWAP n+1`, an empty `BUILD_LIST`/`BUILD_SET`/`BUILD_MAP`, `SWAP 2`, the
/// `FOR_ITER` loop to its `END_FOR` (3.13: and a `POP_TOP`), then `SWAP n+1` and n
/// `STORE_FAST`s restoring the variables. Returns the last of those stores: the stack then
/// holds the built container where the iterator was. None: not such a comprehension's
/// start.
pub fn comprehension_end(decoded: &crate::bytecode::Decoded, start: usize) -> Option<usize> {
    use Opcode::*;
    let ins = &decoded.instructions;
    if start > 0 && ins[start - 1].op == LOAD_FAST_AND_CLEAR {
        return None;
    }
    let n = ins[start..]
        .iter()
        .take_while(|i| i.op == LOAD_FAST_AND_CLEAR)
        .count();
    let at = |k: usize| ins.get(start + n + k);
    let swap_n = |i: Option<&crate::bytecode::Instruction>| {
        i.is_some_and(|i| i.op == SWAP && i.arg as usize == n + 1)
    };
    let builds =
        at(1).is_some_and(|i| matches!(i.op, BUILD_LIST | BUILD_SET | BUILD_MAP) && i.arg == 0);
    let swap2 = at(2).is_some_and(|i| i.op == SWAP && i.arg == 2);
    let for_iter = at(3).filter(|i| i.op == FOR_ITER)?;
    if n == 0 || !swap_n(at(0)) || !builds || !swap2 {
        return None;
    }
    let end_for = for_iter.target? as usize;
    // 3.13: the loop's exit is END_FOR and a POP_TOP of the iterator.
    let swap_at = end_for + crate::bytecode::resume::jump_skips_end_for(decoded.version, FOR_ITER);
    if ins.get(end_for)?.op != END_FOR
        || (swap_at > end_for + 1 && ins.get(end_for + 1)?.op != POP_TOP)
        || !swap_n(ins.get(swap_at))
    {
        return None;
    }
    let last = swap_at + n;
    ins.get(swap_at + 1..=last)?
        .iter()
        .all(|i| i.op == STORE_FAST)
        .then_some(last)
}

/// For a break at `index` inside an inlined comprehension of the root frame: the split point
/// (its ordinal) at the start of the outermost such comprehension, last time the trace
/// passed it. Splitting there runs the whole comprehension natively, as 3.11 ran a
/// comprehension's own frame (and torch.compile on 3.12 does).
pub fn comprehension_around(
    tx: &Tracer<'_>,
    decoded: &crate::bytecode::Decoded,
    index: usize,
) -> Option<u64> {
    let mut best: Option<(usize, u64)> = None;
    for &(start, ordinal) in &tx.comprehension_starts {
        let Some(end) = comprehension_end(decoded, start) else {
            continue;
        };
        if start < index && index <= end && best.is_none_or(|(s, _)| start <= s) {
            best = Some((start, ordinal));
        }
    }
    best.map(|(_, ordinal)| ordinal)
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
        eager_rest,
    } = why;
    // Locals, cells and (usually) free variables travel to the continuation; a cell
    // travels as the cell object itself, so inner functions keep sharing it.
    let n_varnames = spec.passed_slots();
    tx.gb
        .call_method1("rollback", (snap.graph_mark,))
        .map_err(|e| tx.err(e))?;
    // The breaking step re-runs natively from the snapshot: iterators it advanced while
    // being traced go back to where they stood.
    for (it, mark) in &snap.iters {
        mark.restore(it);
    }
    let instrs = &spec.decoded.instructions;
    let mut ins = instrs
        .get(snap.index)
        .ok_or_else(|| Exit::internal("bad break index"))?;
    // Start at KW_NAMES if the call has keyword names (they live outside the stack).
    let mut start = snap.index;
    while ins.op == Opcode::CALL
        && start > 0
        && matches!(instrs[start - 1].op, Opcode::PRECALL | Opcode::KW_NAMES)
    {
        start -= 1;
    }
    let mut effect = split_effect(ins.op, ins.arg)
        .ok_or_else(|| Exit::internal("graph break at an instruction that cannot be split"))?;
    // The instruction whose successors the glue redirects: the breaking one, or (3.13) the
    // conditional jump a truth test feeds.
    let mut index = snap.index;
    if let Some(j) = truth_test_jump(&spec.decoded, snap.index) {
        index = j;
        ins = &instrs[j];
        effect = SplitEffect {
            pops: effect.pops,
            fall: 0,
            jump: Some(0),
        };
    }
    let roots: Vec<&Value> = snap
        .stack
        .iter()
        .chain(snap.locals.iter().flatten())
        .collect();
    super::output::note_shared_tuples(tx, &roots);
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
        // A local no path from here reads again stays behind (its value may be a tensor
        // that would otherwise become a graph output).
        if !spec.is_live(snap.index, i) {
            continue;
        }
        let t = match (
            snap.locals.get(i).cloned().flatten(),
            snap.pending.get(i).and_then(|p| p.as_ref()),
        ) {
            // A cell that existed before the trace (a resume function's cell argument):
            // pass the real cell, one step up from its contents' source.
            (Some(Value::ExternalCell(ec)), _) => {
                let cell_src = ec
                    .source
                    .as_ref()
                    .and_then(|s| s.base().cloned())
                    .ok_or_else(|| Exit::brk("graph break with an unreachable cell variable"))?;
                let pos = extra
                    .iter()
                    .position(|e| *e == cell_src)
                    .unwrap_or_else(|| {
                        extra.push(cell_src.clone());
                        extra.len() - 1
                    });
                OutTemplate::Fetched(pos)
            }
            (Some(v), _) => template_for(tx, &v, outputs, extra)?,
            (None, Some(_)) => {
                // Read at the call's start, as the trace read it (the object it came from
                // was not changed in the trace before it was unpacked).
                let src = snap.pending_sources.get(&i).cloned().unwrap_or_else(|| {
                    Arc::new(Source::Local {
                        index: i as u32,
                        name: spec.localsplus[i].clone(),
                    })
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
    if let Some(&c) = spec
        .passed_cells()
        .iter()
        .find(|c| !locals.iter().any(|(i, _)| i == *c))
    {
        return Err(Exit::brk(format!(
            "graph break before cell variable '{}' exists",
            spec.localsplus.get(c).cloned().unwrap_or_default()
        )));
    }
    let consumed = effect.pops;
    if consumed > layout.len() {
        return Err(Exit::internal("stack underflow at a graph break"));
    }
    let kept = &layout[..layout.len() - consumed];
    let mut after_fall: Vec<Slot> = kept.to_vec();
    let version = spec.decoded.version;
    if is_method_load(version, ins.op, ins.arg) {
        // Split as an attribute load and a NULL (see `Redirect::method_as_attr`).
        if null_after_callable(version) {
            after_fall.push(Slot::Value);
        }
        after_fall.push(Slot::Null);
    }
    after_fall.resize(kept.len() + effect.fall, Slot::Value);
    // Let the glue also run the STORE_FASTs that store the pushed values (after an inlined
    // comprehension: the whole comprehension runs in the glue).
    let mut fall_at = if ins.op == Opcode::LOAD_FAST_AND_CLEAR {
        comprehension_end(&spec.decoded, snap.index)
            .ok_or_else(|| Exit::brk("a graph break at a comprehension of an unknown shape"))?
    } else {
        index
    };
    let mut fall_bound: Vec<usize> = locals.iter().map(|(i, _)| *i).collect();
    let mut pushed_left = effect.fall;
    while pushed_left > 0 {
        match instrs.get(fall_at + 1) {
            Some(next)
                if next.op == Opcode::STORE_FAST
                    && (next.arg as usize) < n_varnames
                    && after_fall.last() == Some(&Slot::Value) =>
            {
                after_fall.pop();
                pushed_left -= 1;
                fall_at += 1;
                let slot = next.arg as usize;
                if !fall_bound.contains(&slot) {
                    fall_bound.push(slot);
                    fall_bound.sort_unstable();
                }
            }
            _ => break,
        }
    }
    fall_bound.retain(|s| spec.is_live(fall_at + 1, *s));
    let skip = jump_skips_end_for(version, ins.op);
    let jump_target = ins.target.map(|t| t as usize + skip);
    let jump_bound: Vec<usize> = match jump_target {
        Some(t) => locals
            .iter()
            .map(|(i, _)| *i)
            .filter(|s| spec.is_live(t, *s))
            .collect(),
        None => Vec::new(),
    };
    let after_jump = match (jump_target, effect.jump) {
        (Some(_), Some(pushed)) => {
            let mut j = kept.to_vec();
            j.resize(kept.len() + pushed, Slot::Value);
            Some(j)
        }
        _ => None,
    };
    let base = layout.len() - consumed;
    let wrap_callee = match ins.op {
        // 3.13: [callable, self or NULL, args...] (CALL_FUNCTION_EX: [callable, NULL, ...]).
        Opcode::CALL | Opcode::CALL_KW | Opcode::CALL_FUNCTION_EX
            if inlined && null_after_callable(version) =>
        {
            Some(base)
        }
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
        eager_rest,
        index,
        fall_at,
        fall_bound,
        jump_bound,
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
