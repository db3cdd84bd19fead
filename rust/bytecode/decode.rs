//! Decoding raw bytecode (of any `PyVersion`) into instructions with resolved jump targets,
//! exception-table entries and source locations.

use std::fmt;

use super::exception_table::{self, ExceptionEntry, ExceptionTableError};
use super::line_table::{self, LineEntry, LineTableError, Location};
use super::opcodes::{JumpKind, Opcode, PyVersion};

/// The raw byte strings of a code object plus `co_firstlineno`.
#[derive(Clone, Copy, Debug)]
pub struct CodeBytes<'a> {
    pub co_code: &'a [u8],
    pub exception_table: &'a [u8],
    pub line_table: &'a [u8],
    pub first_line: u32,
}

/// One logical instruction: EXTENDED_ARG prefixes folded in, CACHE units skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// Byte offset of the first EXTENDED_ARG prefix (== `offset` if none).
    pub start: u32,
    /// Byte offset of the opcode itself.
    pub offset: u32,
    pub op: Opcode,
    /// Full argument including EXTENDED_ARG prefixes. For opcodes without an argument this
    /// is the raw argument byte, which compilers always write as 0.
    pub arg: u32,
    /// Byte offset of the following instruction (after inline caches).
    pub next: u32,
    /// For jumps: index into `Decoded::instructions` of the jump target.
    pub target: Option<u32>,
    /// Source line (None where the table records no line).
    pub line: Option<u32>,
    /// Full source position of the opcode's code unit.
    pub location: Location,
}

impl Instruction {
    /// Number of EXTENDED_ARG prefixes.
    pub fn prefixes(&self) -> u32 {
        (self.offset - self.start) / 2
    }
}

/// A decoded code object.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The version whose table decoded it (the assembler re-encodes for the same one).
    pub version: PyVersion,
    pub instructions: Vec<Instruction>,
    pub exception_table: Vec<ExceptionEntry>,
    /// The location table's entries as stored (for exact reproduction and inspection).
    pub line_entries: Vec<LineEntry>,
    pub first_line: u32,
    /// Length of `co_code` in bytes.
    pub code_len: u32,
    /// Instruction index for each code unit (u32::MAX for CACHE units).
    unit_index: Vec<u32>,
}

const NO_INDEX: u32 = u32::MAX;

impl Decoded {
    /// Index of the instruction whose prefix or opcode occupies byte `offset`.
    /// None for offsets inside inline caches, odd offsets, and offsets past the end.
    pub fn index_at(&self, offset: u32) -> Option<usize> {
        if !offset.is_multiple_of(2) {
            return None;
        }
        match self.unit_index.get((offset / 2) as usize) {
            Some(&i) if i != NO_INDEX => Some(i as usize),
            _ => None,
        }
    }

    /// The innermost exception-table entry covering byte `offset`.
    pub fn handler_for(&self, offset: u32) -> Option<&ExceptionEntry> {
        exception_table::handler_for(&self.exception_table, offset)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    OddLength {
        len: usize,
    },
    /// The code is too long for 32-bit offsets.
    TooLong {
        len: usize,
    },
    UnknownOpcode {
        offset: u32,
        byte: u8,
    },
    /// An opcode that only exists in adaptive code (`Opcode::only_in_adaptive_code`).
    AdaptiveOpcode {
        offset: u32,
        op: Opcode,
    },
    /// An instruction (or its EXTENDED_ARG prefixes or inline caches) runs past the end.
    Truncated {
        offset: u32,
    },
    /// More EXTENDED_ARG prefixes than fit in a 32-bit argument.
    ArgOverflow {
        offset: u32,
    },
    /// A jump whose target is outside the code or not at an instruction boundary.
    BadJumpTarget {
        offset: u32,
        target: i64,
    },
    ExceptionTable(ExceptionTableError),
    LineTable(LineTableError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OddLength { len } => write!(f, "bytecode length {len} is odd"),
            Self::TooLong { len } => write!(f, "bytecode length {len} is too large"),
            Self::UnknownOpcode { offset, byte } => {
                write!(f, "unknown opcode {byte} at offset {offset}")
            }
            Self::AdaptiveOpcode { offset, op } => {
                write!(f, "{op} at offset {offset} only exists in adaptive code")
            }
            Self::Truncated { offset } => write!(f, "instruction at offset {offset} is truncated"),
            Self::ArgOverflow { offset } => {
                write!(f, "too many EXTENDED_ARG prefixes before offset {offset}")
            }
            Self::BadJumpTarget { offset, target } => {
                write!(f, "jump at offset {offset} targets invalid offset {target}")
            }
            Self::ExceptionTable(e) => e.fmt(f),
            Self::LineTable(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<ExceptionTableError> for DecodeError {
    fn from(e: ExceptionTableError) -> Self {
        Self::ExceptionTable(e)
    }
}

impl From<LineTableError> for DecodeError {
    fn from(e: LineTableError) -> Self {
        Self::LineTable(e)
    }
}

/// Byte offset a jump at `instr` targets, per the jump kind (may be out of range).
pub(crate) fn jump_target_offset(kind: JumpKind, next: u32, arg: u32) -> Option<i64> {
    let (next, arg) = (i64::from(next), i64::from(arg));
    match kind {
        JumpKind::None => None,
        JumpKind::Forward => Some(next + 2 * arg),
        JumpKind::Backward => Some(next - 2 * arg),
        JumpKind::Absolute => Some(2 * arg),
    }
}

impl Decoded {
    /// Rewrites 3.13's two-slot superinstructions (`LOAD_FAST_LOAD_FAST`,
    /// `STORE_FAST_LOAD_FAST`, `STORE_FAST_STORE_FAST`, both slots packed in four bits each)
    /// as the two single-slot instructions they stand for, in the order CPython runs them.
    /// The pair keeps the original's offsets and location (so handlers and source lines are
    /// unchanged), jumps to the original land on the first of the pair, and `index_at`
    /// answers the first. For the tracer: every analysis and rewrite of local slots
    /// (liveness, continuation slot remapping, unpacking into locals) then sees one slot per
    /// instruction, and continuations may renumber slots past 15. The result no longer
    /// reproduces `co_code` byte for byte (it assembles to equivalent code).
    pub fn split_superinstructions(&mut self) {
        use Opcode::*;
        let pair = |op: Opcode| match op {
            LOAD_FAST_LOAD_FAST => Some((LOAD_FAST, LOAD_FAST)),
            STORE_FAST_LOAD_FAST => Some((STORE_FAST, LOAD_FAST)),
            STORE_FAST_STORE_FAST => Some((STORE_FAST, STORE_FAST)),
            _ => None,
        };
        if !self.instructions.iter().any(|i| pair(i.op).is_some()) {
            return;
        }
        // New index of each old instruction (the first of a pair).
        let mut new_index = Vec::with_capacity(self.instructions.len());
        let mut out = Vec::with_capacity(self.instructions.len() + 8);
        for ins in &self.instructions {
            new_index.push(out.len() as u32);
            match pair(ins.op) {
                Some((first, second)) => {
                    out.push(Instruction {
                        op: first,
                        arg: ins.arg >> 4,
                        ..*ins
                    });
                    out.push(Instruction {
                        op: second,
                        arg: ins.arg & 15,
                        ..*ins
                    });
                }
                None => out.push(*ins),
            }
        }
        for ins in &mut out {
            if let Some(t) = ins.target.as_mut() {
                *t = new_index.get(*t as usize).copied().unwrap_or(*t);
            }
        }
        for u in &mut self.unit_index {
            if *u != NO_INDEX {
                *u = new_index.get(*u as usize).copied().unwrap_or(NO_INDEX);
            }
        }
        self.instructions = out;
    }
}

/// Decodes bytecode of `PyVersion::CURRENT` (the linked interpreter's).
pub fn decode(code: &CodeBytes) -> Result<Decoded, DecodeError> {
    decode_for(PyVersion::CURRENT, code)
}

/// Decodes bytecode of `version`, with that version's opcode table. The exception-table and
/// location-table formats are the same in 3.11..=3.13.
pub fn decode_for(version: PyVersion, code: &CodeBytes) -> Result<Decoded, DecodeError> {
    let bytes = code.co_code;
    let len = bytes.len();
    if !len.is_multiple_of(2) {
        return Err(DecodeError::OddLength { len });
    }
    let code_len = u32::try_from(len).map_err(|_| DecodeError::TooLong { len })?;
    let table = version.table();
    let first_line =
        i32::try_from(code.first_line).map_err(|_| LineTableError::Overflow { at: 0 })?;
    let line_entries = line_table::parse(code.line_table, first_line)?;
    let locations = line_table::unit_locations(&line_entries);
    let exception_table = exception_table::parse(code.exception_table)?;

    let mut instructions = Vec::new();
    let mut unit_index = vec![NO_INDEX; len / 2];
    let mut pos = 0u32;
    let mut start: Option<u32> = None;
    let mut ext: u32 = 0;
    while pos < code_len {
        let at = pos as usize;
        let (byte, raw_arg) = (bytes[at], bytes[at + 1]);
        let op = table
            .decode_byte(byte)
            .ok_or(DecodeError::UnknownOpcode { offset: pos, byte })?;
        if op.only_in_adaptive_code() {
            return Err(DecodeError::AdaptiveOpcode { offset: pos, op });
        }
        let index = instructions.len() as u32;
        unit_index[at / 2] = index;
        if ext > 0x00ff_ffff {
            return Err(DecodeError::ArgOverflow { offset: pos });
        }
        let arg = (ext << 8) | u32::from(raw_arg);
        if op == Opcode::EXTENDED_ARG {
            start.get_or_insert(pos);
            ext = arg;
            pos += 2;
            continue;
        }
        let next = pos + 2 + 2 * u32::from(table.cache_entries(op));
        if next > code_len {
            return Err(DecodeError::Truncated { offset: pos });
        }
        let location = locations.get(at / 2).copied().unwrap_or(Location::NONE);
        instructions.push(Instruction {
            start: start.take().unwrap_or(pos),
            offset: pos,
            op,
            arg,
            next,
            target: None,
            line: location.line.and_then(|l| u32::try_from(l).ok()),
            location,
        });
        ext = 0;
        pos = next;
    }
    if let Some(offset) = start {
        return Err(DecodeError::Truncated { offset });
    }

    let mut decoded = Decoded {
        version,
        instructions,
        exception_table,
        line_entries,
        first_line: code.first_line,
        code_len,
        unit_index,
    };
    resolve_jumps(&mut decoded)?;
    Ok(decoded)
}

fn resolve_jumps(decoded: &mut Decoded) -> Result<(), DecodeError> {
    let table = decoded.version.table();
    for i in 0..decoded.instructions.len() {
        let instr = decoded.instructions[i];
        let Some(target) = jump_target_offset(table.jump(instr.op), instr.next, instr.arg) else {
            continue;
        };
        let bad = DecodeError::BadJumpTarget {
            offset: instr.offset,
            target,
        };
        let index = u32::try_from(target)
            .ok()
            .and_then(|t| decoded.index_at(t))
            .ok_or(bad)?;
        decoded.instructions[i].target = Some(index as u32);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These tests use 3.11 bytes.
    fn decode(code: &CodeBytes) -> Result<Decoded, DecodeError> {
        decode_for(PyVersion::V3_11, code)
    }

    fn code(co_code: &[u8]) -> CodeBytes<'_> {
        CodeBytes {
            co_code,
            exception_table: &[],
            line_table: &[],
            first_line: 1,
        }
    }

    const RESUME: u8 = 151;
    const LOAD_FAST: u8 = 124;
    const RETURN_VALUE: u8 = 83;
    const EXT: u8 = 144;
    const JUMP_FORWARD: u8 = 110;
    const JUMP_BACKWARD: u8 = 140;
    const LOAD_GLOBAL: u8 = 116;

    #[test]
    fn folds_extended_arg_and_skips_caches() {
        let bytes = [
            RESUME,
            0,
            EXT,
            1,
            EXT,
            2,
            LOAD_FAST,
            3,
            LOAD_GLOBAL,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            RETURN_VALUE,
            0,
        ];
        let d = decode(&code(&bytes)).unwrap();
        assert_eq!(d.instructions.len(), 4);
        let lf = d.instructions[1];
        assert_eq!((lf.start, lf.offset, lf.arg, lf.next), (2, 6, 0x010203, 8));
        assert_eq!(lf.prefixes(), 2);
        let lg = d.instructions[2];
        assert_eq!((lg.offset, lg.next), (8, 20));
        assert_eq!(d.index_at(2), Some(1));
        assert_eq!(d.index_at(6), Some(1));
        assert_eq!(d.index_at(10), None);
        assert_eq!(d.index_at(20), Some(3));
        assert_eq!(d.index_at(22), None);
        assert_eq!(d.index_at(3), None);
    }

    #[test]
    fn resolves_jumps_both_ways() {
        let bytes = [
            RESUME,
            0,
            JUMP_FORWARD,
            1,
            LOAD_FAST,
            0,
            JUMP_BACKWARD,
            4,
            RETURN_VALUE,
            0,
        ];
        let d = decode(&code(&bytes)).unwrap();
        assert_eq!(d.instructions[1].target, Some(3));
        assert_eq!(d.instructions[3].target, Some(0));
    }

    #[test]
    fn bad_input_is_an_error() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![RESUME], "odd"),
            (vec![3, 0], "unknown"),
            (vec![RESUME, 0, EXT, 1], "dangling ext"),
            (vec![LOAD_GLOBAL, 0, 0, 0], "truncated caches"),
            (
                vec![EXT, 1, EXT, 1, EXT, 1, EXT, 1, LOAD_FAST, 0],
                "arg overflow",
            ),
            (vec![JUMP_FORWARD, 5], "jump past end"),
            (vec![JUMP_BACKWARD, 5], "jump before start"),
            (
                vec![
                    LOAD_GLOBAL,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    JUMP_BACKWARD,
                    5,
                ],
                "into caches",
            ),
        ];
        for (bytes, what) in cases {
            assert!(decode(&code(&bytes)).is_err(), "{what}");
        }
        let bad_tables = CodeBytes {
            co_code: &[RESUME, 0],
            exception_table: &[0x80, 0x41],
            line_table: &[],
            first_line: 1,
        };
        assert!(matches!(
            decode(&bad_tables),
            Err(DecodeError::ExceptionTable(_))
        ));
        let bad_lines = CodeBytes {
            co_code: &[RESUME, 0],
            exception_table: &[],
            line_table: &[0xf0, 0x41],
            first_line: 1,
        };
        assert!(matches!(decode(&bad_lines), Err(DecodeError::LineTable(_))));
    }

    /// Cache layouts and jump encodings that differ between versions.
    #[test]
    fn later_versions_use_their_own_tables() {
        // 3.12: `for _ in x: pass; return None`. FOR_ITER (93) has one cache unit and its
        // exhausted branch lands on END_FOR (4); JUMP_BACKWARD (140); RETURN_CONST (121).
        let bytes = [124, 0, 68, 0, 93, 2, 0, 0, 1, 0, 140, 4, 4, 0, 121, 0];
        let d = decode_for(PyVersion::V3_12, &code(&bytes)).unwrap();
        let ops: Vec<Opcode> = d.instructions.iter().map(|i| i.op).collect();
        use Opcode::*;
        assert_eq!(
            ops,
            [
                LOAD_FAST,
                GET_ITER,
                FOR_ITER,
                POP_TOP,
                JUMP_BACKWARD,
                END_FOR,
                RETURN_CONST
            ]
        );
        assert_eq!(d.instructions[2].target, Some(5));
        assert_eq!(d.instructions[4].target, Some(2));
        assert_eq!(d.version, PyVersion::V3_12);
        let out = crate::bytecode::encode::reencode(&d).unwrap();
        assert_eq!(out.co_code, bytes);
        assert_eq!(out.stack_size, 2);
        // 3.13: JUMP_BACKWARD (77) has a cache unit, counted before the jump is applied.
        let bytes = [149, 0, 30, 0, 77, 3, 0, 0];
        let d = decode_for(PyVersion::V3_13, &code(&bytes)).unwrap();
        assert_eq!(d.instructions[2].op, JUMP_BACKWARD);
        assert_eq!(d.instructions[2].target, Some(1));
        // Byte 124 (LOAD_FAST up to 3.12) is unassigned in 3.13.
        assert!(decode_for(PyVersion::V3_13, &code(&[124, 0])).is_err());
        // Instrumented opcodes never appear in co_code.
        assert_eq!(
            decode_for(PyVersion::V3_12, &code(&[241, 0])).unwrap_err(),
            DecodeError::AdaptiveOpcode {
                offset: 0,
                op: INSTRUMENTED_CALL
            }
        );
    }

    /// 3.13's two-slot superinstructions become two single-slot instructions each; jumps
    /// and `index_at` follow the first of a pair.
    #[test]
    fn splits_3_13_superinstructions() {
        // RESUME; LOAD_FAST_LOAD_FAST (1, 2); STORE_FAST_STORE_FAST (3, 4);
        // JUMP_BACKWARD (one cache unit) to the LOAD_FAST_LOAD_FAST; RETURN_VALUE.
        let bytes = [149, 0, 88, 0x12, 112, 0x34, 77, 4, 0, 0, 36, 0];
        let mut d = decode_for(PyVersion::V3_13, &code(&bytes)).unwrap();
        assert_eq!(d.instructions[3].target, Some(1));
        d.split_superinstructions();
        let ops: Vec<(Opcode, u32)> = d.instructions.iter().map(|i| (i.op, i.arg)).collect();
        assert_eq!(
            ops,
            vec![
                (Opcode::RESUME, 0),
                (Opcode::LOAD_FAST, 1),
                (Opcode::LOAD_FAST, 2),
                (Opcode::STORE_FAST, 3),
                (Opcode::STORE_FAST, 4),
                (Opcode::JUMP_BACKWARD, 4),
                (Opcode::RETURN_VALUE, 0),
            ]
        );
        assert_eq!(d.instructions[5].target, Some(1));
        assert_eq!(d.instructions[2].offset, 2);
        assert_eq!(
            [2, 4, 6, 10].map(|o| d.index_at(o)),
            [Some(1), Some(3), Some(5), Some(6)]
        );
        // Code without superinstructions is left as it is.
        let mut plain = decode_for(PyVersion::V3_13, &code(&[149, 0, 36, 0])).unwrap();
        plain.split_superinstructions();
        assert_eq!(plain.instructions.len(), 2);
    }

    /// Random byte strings must never panic.
    #[test]
    fn fuzz_no_panic() {
        let mut state: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let interesting = [
            0u8, 1, 83, 93, 110, 116, 124, 140, 144, 151, 160, 171, 176, 255,
        ];
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| {
                    let r = next();
                    if i % 2 == 0 {
                        interesting[(r % interesting.len() as u64) as usize]
                    } else {
                        (r % 7) as u8
                    }
                })
                .collect();
            let table: Vec<u8> = (0..(next() % 12)).map(|_| next() as u8).collect();
            let decoded = decode(&CodeBytes {
                co_code: &bytes,
                exception_table: &table,
                line_table: &table,
                first_line: (next() % 5) as u32,
            });
            if let Ok(decoded) = decoded {
                let _ = crate::bytecode::encode::reencode(&decoded);
            }
        }
    }
}
