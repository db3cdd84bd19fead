//! Live fast locals: at each instruction, the `co_varnames` slots that some path from it may
//! read before writing. A graph break passes only these to its resume function (as Dynamo
//! does), so iterations of a loop that bound different dead temporaries share one resume
//! function, and dead values never become graph outputs.
//!
//! Backward data flow over the control-flow graph, with an edge from every instruction a
//! `try` region covers to its handler. `DELETE_FAST` counts as a read (it raises if the
//! slot is unbound), as do 3.12's `LOAD_FAST_CHECK` and `LOAD_FAST_AND_CLEAR`. Cells are
//! not tracked here: callers keep every cell.

use super::decode::Decoded;
use super::opcodes::Opcode;

/// Live-in sets, one bit per slot, per instruction.
pub struct Liveness {
    words: usize,
    bits: Vec<u64>,
}

impl Liveness {
    /// Whether `slot` may be read at or after instruction `index` before being written.
    /// Out-of-range questions answer true (keep the value).
    pub fn is_live(&self, index: usize, slot: usize) -> bool {
        if slot >= self.words * 64 {
            return true;
        }
        match self.bits.get(index * self.words + slot / 64) {
            Some(w) => w & (1u64 << (slot % 64)) != 0,
            None => true,
        }
    }
}

/// Computes the live-in sets of the first `n_slots` fast slots of `decoded`.
pub fn live_locals(decoded: &Decoded, n_slots: usize) -> Liveness {
    let instrs = &decoded.instructions;
    let n = instrs.len();
    let words = n_slots.div_ceil(64).max(1);
    let mut bits = vec![0u64; n * words];
    // Successors of each instruction (fall-through, jump target, handler).
    let succ: Vec<[Option<usize>; 3]> = instrs
        .iter()
        .enumerate()
        .map(|(i, ins)| {
            let falls = !(ins.op.is_unconditional_jump() || ins.op.is_scope_exit());
            [
                (falls && i + 1 < n).then_some(i + 1),
                ins.target.map(|t| t as usize).filter(|t| *t < n),
                decoded
                    .handler_for(ins.offset)
                    .and_then(|h| decoded.index_at(h.target)),
            ]
        })
        .collect();
    let mut changed = true;
    let mut out = vec![0u64; words];
    while changed {
        changed = false;
        for i in (0..n).rev() {
            out.iter_mut().for_each(|w| *w = 0);
            for s in succ[i].iter().flatten() {
                for (o, b) in out.iter_mut().zip(&bits[s * words..(s + 1) * words]) {
                    *o |= b;
                }
            }
            let ins = &instrs[i];
            let slot = ins.arg as usize;
            if slot < n_slots {
                let (w, m) = (slot / 64, 1u64 << (slot % 64));
                match ins.op {
                    Opcode::STORE_FAST => out[w] &= !m,
                    // 3.12's checked load, and the comprehension prologue's save of the
                    // outer value (restored after the loop), read the slot too.
                    Opcode::LOAD_FAST
                    | Opcode::LOAD_FAST_CHECK
                    | Opcode::LOAD_FAST_AND_CLEAR
                    | Opcode::DELETE_FAST => out[w] |= m,
                    _ => {}
                }
            }
            let row = &mut bits[i * words..(i + 1) * words];
            if row != out.as_slice() {
                row.copy_from_slice(&out);
                changed = true;
            }
        }
    }
    Liveness { words, bits }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytecode::decode::{decode_for, CodeBytes};
    use crate::bytecode::opcodes::PyVersion;

    /// 3.11 bytecode (the tracer's version) from (byte, arg) pairs.
    fn code(units: &[(u8, u8)]) -> Decoded {
        let table = PyVersion::V3_11.table();
        let bytes: Vec<u8> = units
            .iter()
            .flat_map(|&(byte, arg)| {
                let op = table.decode_byte(byte).unwrap();
                let mut v = vec![byte, arg];
                v.extend(std::iter::repeat_n(0, 2 * table.cache_entries(op) as usize));
                v
            })
            .collect();
        decode_for(
            PyVersion::V3_11,
            &CodeBytes {
                co_code: &bytes,
                exception_table: &[],
                line_table: &[],
                first_line: 1,
            },
        )
        .unwrap()
    }

    #[test]
    fn a_local_written_before_it_is_read_is_dead() {
        // 0 LOAD_FAST 0; 1 STORE_FAST 1; 2 LOAD_FAST 1; 3 RETURN_VALUE
        let d = code(&[(124, 0), (125, 1), (124, 1), (83, 0)]);
        let l = live_locals(&d, 2);
        assert!(l.is_live(0, 0));
        assert!(!l.is_live(0, 1), "slot 1 is stored before it is read");
        assert!(l.is_live(2, 1));
        assert!(!l.is_live(2, 0), "slot 0 is never read again");
    }

    #[test]
    fn loops_carry_liveness_around_the_back_edge() {
        // 0 LOAD_FAST 0; 1 POP_TOP; 2 LOAD_FAST 1; 3 STORE_FAST 0; 4 JUMP_BACKWARD -> 0
        let d = code(&[(124, 0), (1, 0), (124, 1), (125, 0), (140, 5)]);
        let l = live_locals(&d, 2);
        assert!(l.is_live(2, 1));
        assert!(l.is_live(4, 0), "read again at the loop head");
        assert!(
            !l.is_live(3, 0),
            "slot 0 is stored at 3 before the loop head reads it"
        );
    }
}
