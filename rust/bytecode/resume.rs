//! Code objects that continue a function from the middle: the glue that re-enters a frame at
//! a graph break, and the resume functions that trace the rest.
//!
//! A continuation takes the bound locals and then the live stack (minus NULL markers) as
//! its arguments. Its prologue copies free variables, pushes the stack back (PUSH_NULL where a
//! NULL was), and jumps to the start instruction of an otherwise unchanged copy of the
//! original code, so exception tables and source locations stay the user's. Optionally,
//! the control-flow edges leaving one instruction are redirected to postludes that call a
//! constant continuation with the new stack and the locals and return its result.

use super::decode::Decoded;
use super::encode::{assemble, to_asm, AsmInstr, AssembleError, AssembledCode};
use super::line_table::Location;
use super::opcodes::{Opcode, PyVersion};

/// One entry of the value stack at the entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Null,
    Value,
}

/// A postlude: where control leaving `from` goes instead of its original successor.
#[derive(Clone, Debug)]
pub struct Exit {
    /// The stack layout at the successor (after `from` has run).
    pub stack: Vec<Slot>,
    /// Index into the new code's co_consts of the continuation to call.
    pub callee_const: u32,
    /// Original `co_varnames` slots passed to it (bound at the successor), in order.
    pub bound: Vec<usize>,
}

/// For glue: the edges redirected to postludes. The jump of instruction `at` (if it
/// branches) goes to `jump`; the fall-through of instruction `fall_at` (`at`, or a later
/// instruction of the straight line after it) goes to `fall`.
#[derive(Clone, Debug)]
pub struct Redirect {
    pub at: usize,
    /// Instruction `at` is a method load (`is_method_load`) run as `PUSH_NULL; SWAP 2;
    /// LOAD_ATTR` (the same call, but its stack layout, NULL then the attribute, no longer
    /// depends on the value; 3.13: `LOAD_ATTR; PUSH_NULL`, the attribute then NULL).
    pub method_as_attr: bool,
    pub jump: Option<Exit>,
    pub fall_at: usize,
    pub fall: Exit,
}

pub struct ContinuationSpec<'a> {
    pub decoded: &'a Decoded,
    /// Original instruction index where execution continues.
    pub start: usize,
    pub stack: Vec<Slot>,
    /// Original `co_varnames` indices bound at `start` (passed as arguments, in order).
    pub bound_locals: Vec<usize>,
    /// Original `co_varnames` length, and number of free variables.
    pub n_varnames: usize,
    pub n_free: usize,
    /// For glue: the breaking instruction's successors, redirected to postludes.
    pub redirect: Option<Redirect>,
}

pub struct Continuation {
    pub code: AssembledCode,
    /// New `co_varnames`: names for the original slots plus generated temporaries.
    pub varnames: Vec<String>,
    pub argcount: usize,
    /// Instruction index where the copy of the original code starts: without a redirect,
    /// new instruction `body_start + i` is original instruction `i`.
    pub body_start: usize,
    /// For each new `co_varnames` slot, the original slot it holds (None: a temporary).
    pub slot_origin: Vec<Option<usize>>,
}

/// Prefix of the continuation's own temporaries in `co_varnames` (stack values, postlude
/// scratch). Not an identifier (like CPython's `.0`), so no user name collides, and
/// `locals()` leaves them out.
pub const TEMP_PREFIX: &str = ".resume_";

fn ins(op: Opcode, arg: u32, loc: Location) -> AsmInstr {
    AsmInstr {
        op,
        arg,
        target: None,
        location: loc,
        handler: None,
    }
}

/// Opcodes whose argument is a "localsplus" index.
fn uses_local_slot(op: Opcode) -> bool {
    use Opcode::*;
    matches!(
        op,
        LOAD_FAST
            | STORE_FAST
            | DELETE_FAST
            | LOAD_CLOSURE
            | LOAD_DEREF
            | STORE_DEREF
            | DELETE_DEREF
            | LOAD_CLASSDEREF
            | MAKE_CELL
            | LOAD_FAST_CHECK
            | LOAD_FAST_AND_CLEAR
            | LOAD_FROM_DICT_OR_DEREF
    )
}

/// Whether `op` with `arg` loads a method: pushes NULL and the attribute, or the function and
/// its receiver (3.11's LOAD_METHOD; from 3.12, LOAD_ATTR with the low argument bit set).
pub fn is_method_load(version: PyVersion, op: Opcode, arg: u32) -> bool {
    match op {
        Opcode::LOAD_METHOD => true,
        Opcode::LOAD_ATTR => version != PyVersion::V3_11 && arg & 1 == 1,
        _ => false,
    }
}

/// How many instructions at its target the jump of `op` skips: 3.12's exhausted FOR_ITER
/// pops the iterator and continues after the END_FOR at its target; 3.13's after the
/// END_FOR and the POP_TOP that follows it.
pub fn jump_skips_end_for(version: PyVersion, op: Opcode) -> usize {
    match (op, version) {
        (Opcode::FOR_ITER, PyVersion::V3_12) => 1,
        (Opcode::FOR_ITER, PyVersion::V3_13) => 2,
        _ => 0,
    }
}

/// Whether a method load pushes the attribute first and NULL (or the receiver) after it
/// (3.13), rather than NULL first (3.11, 3.12). The same order holds for `LOAD_GLOBAL`'s
/// NULL and for the callable and `self`-or-NULL below a call's arguments.
pub fn null_after_callable(version: PyVersion) -> bool {
    version >= PyVersion::V3_13
}

/// Build a continuation. `orig_varnames` are the original `co_varnames`.
pub fn build_continuation(
    spec: &ContinuationSpec<'_>,
    orig_varnames: &[String],
) -> Result<Continuation, AssembleError> {
    let orig = to_asm(spec.decoded)?;
    let loc = orig
        .get(spec.start)
        .map(|i| i.location)
        .unwrap_or(Location::NONE);

    // New local layout: [bound locals] [stack temps] [other locals] [postlude temps].
    // Bound locals come first and keep their order, so `self` stays in slot 0, where
    // zero-argument `super()` looks for it.
    let n_stack_args = spec.stack.iter().filter(|s| **s == Slot::Value).count();
    let mut varnames: Vec<String> = Vec::new();
    let mut new_index = vec![usize::MAX; spec.n_varnames];
    for &b in &spec.bound_locals {
        new_index[b] = varnames.len();
        varnames.push(orig_varnames[b].clone());
    }
    let stack_base = varnames.len();
    varnames.extend((0..n_stack_args).map(|i| format!("{TEMP_PREFIX}stack{i}")));
    for (i, name) in orig_varnames.iter().enumerate().take(spec.n_varnames) {
        if new_index[i] == usize::MAX {
            new_index[i] = varnames.len();
            varnames.push(name.clone());
        }
    }
    let argcount = n_stack_args + spec.bound_locals.len();
    // Postlude temporaries (only used by glue).
    let max_post = spec
        .redirect
        .as_ref()
        .map(|r| {
            r.fall
                .stack
                .len()
                .max(r.jump.as_ref().map(|e| e.stack.len()).unwrap_or(0))
        })
        .unwrap_or(0);
    let post_base = varnames.len();
    for i in 0..max_post {
        varnames.push(format!("{TEMP_PREFIX}post{i}"));
    }
    let args_slot = varnames.len();
    if spec.redirect.is_some() {
        varnames.push(format!("{TEMP_PREFIX}args"));
    }
    let shift = varnames.len() as isize - spec.n_varnames as isize;
    let remap = |slot: u32| -> u32 {
        let s = slot as usize;
        if s < spec.n_varnames {
            new_index[s] as u32
        } else {
            (s as isize + shift) as u32
        }
    };

    let to_new = |bound: &[usize]| -> Vec<usize> { bound.iter().map(|&b| new_index[b]).collect() };

    // Prologue.
    let mut out: Vec<AsmInstr> = Vec::new();
    if spec.n_free > 0 {
        out.push(ins(Opcode::COPY_FREE_VARS, spec.n_free as u32, loc));
    }
    out.push(ins(Opcode::RESUME, 0, loc));
    let mut k = stack_base as u32;
    for s in &spec.stack {
        match s {
            Slot::Null => out.push(ins(Opcode::PUSH_NULL, 0, loc)),
            Slot::Value => {
                out.push(ins(Opcode::LOAD_FAST, k, loc));
                k += 1;
            }
        }
    }
    let jump_at = out.len();
    out.push(AsmInstr {
        op: Opcode::JUMP_FORWARD,
        arg: 0,
        target: None,
        location: loc,
        handler: None,
    });

    // Body: the original code, with local slots remapped and (for glue) the breaking
    // instruction's successors redirected to postludes placed right after it.
    let body_start = out.len();
    let mut index_map = vec![0usize; orig.len()];
    let mut pos = body_start;
    let version = spec.decoded.version;
    let as_attr = |i: usize| {
        spec.redirect.as_ref().is_some_and(|r| {
            r.method_as_attr && r.at == i && is_method_load(version, orig[i].op, orig[i].arg)
        })
    };
    // A redirected FOR_ITER jump of 3.12 lands on an END_FOR placed before its postlude
    // (3.13: END_FOR and POP_TOP), which it skips as it would skip the original ones.
    let end_for_first = match &spec.redirect {
        Some(r) if r.jump.is_some() => orig
            .get(r.at)
            .map_or(0, |a| jump_skips_end_for(version, a.op)),
        _ => 0,
    };
    // A method load split as an attribute load: `PUSH_NULL; SWAP 2; LOAD_ATTR` (NULL below
    // the attribute), or on 3.13 `LOAD_ATTR; PUSH_NULL` (NULL above it).
    let null_after = null_after_callable(version);
    let attr_len = if null_after { 2 } else { 3 };
    for (i, _) in orig.iter().enumerate() {
        index_map[i] = pos;
        pos += if as_attr(i) { attr_len } else { 1 };
        if let Some(r) = &spec.redirect {
            if r.fall_at == i {
                pos += postlude_len(&r.fall);
            }
        }
    }
    let jump_postlude_start = pos;
    let mut fixups: Vec<(usize, usize)> = Vec::new(); // (new instr index, original target)
    for (i, a) in orig.iter().enumerate() {
        let mut a = *a;
        if uses_local_slot(a.op) {
            a.arg = remap(a.arg);
        }
        if let Some(h) = a.handler.as_mut() {
            h.target = index_map[h.target];
        }
        let here = out.len();
        match (&spec.redirect, a.target) {
            (Some(r), Some(_)) if r.at == i && r.jump.is_some() => {
                a.target = Some(jump_postlude_start)
            }
            (_, Some(t)) => fixups.push((here, t)),
            _ => {}
        }
        let mut null_after_attr = None;
        if as_attr(i) {
            let mut null = a;
            null.op = Opcode::PUSH_NULL;
            null.arg = 0;
            null.target = None;
            let mut swap = null;
            swap.op = Opcode::SWAP;
            swap.arg = 2;
            a.op = Opcode::LOAD_ATTR;
            if version != PyVersion::V3_11 {
                a.arg &= !1; // the plain attribute (the low bit asks for a method)
            }
            if null_after {
                null_after_attr = Some(null);
            } else {
                out.push(null);
                out.push(swap);
            }
        }
        out.push(a);
        out.extend(null_after_attr);
        if let Some(r) = &spec.redirect {
            if r.fall_at == i {
                let bound = to_new(&r.fall.bound);
                let post = Postlude {
                    post_base,
                    args_slot,
                    null_after,
                };
                emit_postlude(&mut out, &r.fall, &bound, &post, a.location);
            }
        }
    }
    for (here, t) in fixups {
        out[here].target = Some(index_map[t]);
    }
    if let Some(Redirect {
        jump: Some(jump), ..
    }) = &spec.redirect
    {
        let l = out.last().map(|i| i.location).unwrap_or(loc);
        if end_for_first > 0 {
            out.push(ins(Opcode::END_FOR, 0, l));
        }
        if end_for_first > 1 {
            out.push(ins(Opcode::POP_TOP, 0, l));
        }
        let bound = to_new(&jump.bound);
        let post = Postlude {
            post_base,
            args_slot,
            null_after,
        };
        emit_postlude(&mut out, jump, &bound, &post, l);
    }
    out[jump_at].target = Some(index_map[spec.start]);
    let code = assemble(&out, spec.decoded.first_line)?;
    let mut slot_origin = vec![None; varnames.len()];
    for (orig_slot, &new_slot) in new_index.iter().enumerate() {
        if let Some(o) = slot_origin.get_mut(new_slot) {
            *o = Some(orig_slot);
        }
    }
    Ok(Continuation {
        code,
        varnames,
        argcount,
        body_start,
        slot_origin,
    })
}

fn postlude_len(e: &Exit) -> usize {
    let n_bound = e.bound.len();
    let values = e.stack.iter().filter(|s| **s == Slot::Value).count();
    // one store per stack entry, reloads of the values and bound locals, then BUILD_TUPLE,
    // STORE_FAST, PUSH_NULL, LOAD_CONST, LOAD_FAST, CALL_FUNCTION_EX, RETURN_VALUE
    e.stack.len() + values + n_bound + 7
}

/// Where a postlude keeps its scratch values, and the version's call layout.
struct Postlude {
    post_base: usize,
    args_slot: usize,
    /// 3.13: `CALL_FUNCTION_EX` wants the callable below the NULL.
    null_after: bool,
}

/// Postlude: save the stack (NULLs land in their scratch slot, leaving it unbound), then
/// call the continuation with (stack values..., bound locals...) and return its result.
fn emit_postlude(out: &mut Vec<AsmInstr>, e: &Exit, bound: &[usize], p: &Postlude, loc: Location) {
    let (post_base, args_slot) = (p.post_base, p.args_slot);
    for i in (0..e.stack.len()).rev() {
        out.push(ins(Opcode::STORE_FAST, (post_base + i) as u32, loc));
    }
    let mut count = 0u32;
    for slot in bound {
        out.push(ins(Opcode::LOAD_FAST, *slot as u32, loc));
        count += 1;
    }
    for (i, s) in e.stack.iter().enumerate() {
        if *s == Slot::Value {
            out.push(ins(Opcode::LOAD_FAST, (post_base + i) as u32, loc));
            count += 1;
        }
    }
    out.push(ins(Opcode::BUILD_TUPLE, count, loc));
    out.push(ins(Opcode::STORE_FAST, args_slot as u32, loc));
    if p.null_after {
        out.push(ins(Opcode::LOAD_CONST, e.callee_const, loc));
        out.push(ins(Opcode::PUSH_NULL, 0, loc));
    } else {
        out.push(ins(Opcode::PUSH_NULL, 0, loc));
        out.push(ins(Opcode::LOAD_CONST, e.callee_const, loc));
    }
    out.push(ins(Opcode::LOAD_FAST, args_slot as u32, loc));
    out.push(ins(Opcode::CALL_FUNCTION_EX, 0, loc));
    out.push(ins(Opcode::RETURN_VALUE, 0, loc));
}
