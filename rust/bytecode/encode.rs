//! The assembler: instructions with symbolic jump targets and handlers in, `co_code`,
//! `co_exceptiontable`, `co_linetable` and `co_stacksize` out.

use std::fmt;

use super::decode::Decoded;
use super::exception_table::{self, ExceptionEntry};
use super::line_table::{LineTableWriter, Location};
use super::opcodes::{JumpKind, Opcode, OpcodeTable, PyVersion};
use super::stack_depth::{max_stack_depth_for, StackDepthError};

/// The exception handler protecting an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AsmHandler {
    /// Index of the handler's first instruction.
    pub target: usize,
    /// Stack depth to unwind to before pushing the exception.
    pub depth: u32,
    /// Whether the raising instruction's offset is pushed too.
    pub lasti: bool,
}

/// One instruction to assemble. EXTENDED_ARG and CACHE are never given explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsmInstr {
    pub op: Opcode,
    /// The argument; ignored for jumps, whose argument is computed from `target`.
    pub arg: u32,
    /// For jumps: index of the target instruction.
    pub target: Option<usize>,
    pub location: Location,
    pub handler: Option<AsmHandler>,
}

/// The assembler's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssembledCode {
    pub co_code: Vec<u8>,
    pub exception_table: Vec<u8>,
    pub line_table: Vec<u8>,
    pub stack_size: u32,
    pub first_line: u32,
    /// Byte offset at which each input instruction starts (including its prefixes).
    pub offsets: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssembleError {
    /// EXTENDED_ARG, CACHE, an opcode the target version lacks, or one only found in
    /// adaptive code.
    UnsupportedOpcode {
        index: usize,
        op: Opcode,
    },
    MissingTarget {
        index: usize,
    },
    BadTarget {
        index: usize,
    },
    /// A forward jump to an earlier instruction or a backward jump to a later one.
    WrongDirection {
        index: usize,
    },
    /// A handler whose target index is out of range.
    BadHandler {
        index: usize,
    },
    /// Decoded input whose handler does not start at an instruction.
    HandlerNotAtInstruction {
        offset: u32,
    },
    /// The first line does not fit the line table's signed arithmetic.
    BadFirstLine,
    TooLarge,
    Stack(StackDepthError),
}

impl fmt::Display for AssembleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedOpcode { index, op } => {
                write!(f, "instruction {index}: {op} cannot be assembled")
            }
            Self::MissingTarget { index } => write!(f, "jump {index} has no target"),
            Self::BadTarget { index } => write!(f, "jump {index} has an out-of-range target"),
            Self::WrongDirection { index } => write!(f, "jump {index} points the wrong way"),
            Self::BadHandler { index } => write!(f, "instruction {index} has a bad handler"),
            Self::HandlerNotAtInstruction { offset } => {
                write!(
                    f,
                    "exception handler at offset {offset} is not an instruction"
                )
            }
            Self::BadFirstLine => f.write_str("first line out of range"),
            Self::TooLarge => f.write_str("code too large"),
            Self::Stack(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AssembleError {}

impl From<StackDepthError> for AssembleError {
    fn from(e: StackDepthError) -> Self {
        Self::Stack(e)
    }
}

/// EXTENDED_ARG prefixes needed for `arg`.
fn prefixes_for(arg: u32) -> u32 {
    match arg {
        0..=0xff => 0,
        0x100..=0xffff => 1,
        0x1_0000..=0xff_ffff => 2,
        _ => 3,
    }
}

/// Code units of one instruction, excluding prefixes.
fn body_units(table: &OpcodeTable, op: Opcode) -> u32 {
    1 + u32::from(table.cache_entries(op))
}

fn check(table: &OpcodeTable, instrs: &[AsmInstr]) -> Result<(), AssembleError> {
    for (index, instr) in instrs.iter().enumerate() {
        let op = instr.op;
        if matches!(op, Opcode::EXTENDED_ARG | Opcode::CACHE)
            || op.only_in_adaptive_code()
            || table.info(op).is_none()
        {
            return Err(AssembleError::UnsupportedOpcode { index, op });
        }
        if table.is_jump(op) {
            let target = instr.target.ok_or(AssembleError::MissingTarget { index })?;
            if target >= instrs.len() {
                return Err(AssembleError::BadTarget { index });
            }
            let ok = match table.jump(op) {
                JumpKind::Forward => target > index,
                JumpKind::Backward => target <= index,
                JumpKind::None | JumpKind::Absolute => true,
            };
            if !ok {
                return Err(AssembleError::WrongDirection { index });
            }
        }
        if let Some(h) = instr.handler {
            if h.target >= instrs.len() {
                return Err(AssembleError::BadHandler { index });
            }
        }
    }
    Ok(())
}

/// Start offsets (in code units) of every instruction given the prefix counts, plus the end.
fn layout(table: &OpcodeTable, instrs: &[AsmInstr], prefixes: &[u32]) -> Vec<u64> {
    let mut starts = Vec::with_capacity(instrs.len() + 1);
    let mut pos = 0u64;
    for (instr, &p) in instrs.iter().zip(prefixes) {
        starts.push(pos);
        pos += u64::from(p + body_units(table, instr.op));
    }
    starts.push(pos);
    starts
}

/// Computes each instruction's final argument (jumps resolved against `starts`).
fn resolve_arg(
    table: &OpcodeTable,
    instrs: &[AsmInstr],
    starts: &[u64],
    index: usize,
) -> Result<u32, AssembleError> {
    let instr = &instrs[index];
    let Some(target) = instr.target.filter(|_| table.is_jump(instr.op)) else {
        return Ok(instr.arg);
    };
    let next = starts[index + 1];
    let dest = starts[target];
    let units = match table.jump(instr.op) {
        JumpKind::Forward => dest - next,
        JumpKind::Backward => next - dest,
        JumpKind::Absolute => dest,
        JumpKind::None => return Ok(instr.arg),
    };
    u32::try_from(units).map_err(|_| AssembleError::TooLarge)
}

/// Assembles instructions for `PyVersion::CURRENT`.
pub fn assemble(instrs: &[AsmInstr], first_line: u32) -> Result<AssembledCode, AssembleError> {
    assemble_for(PyVersion::CURRENT, instrs, first_line)
}

/// Assembles instructions for `version`. Jump arguments and EXTENDED_ARG prefixes are
/// computed by iterating until offsets stop changing; caches are written as zeros (as
/// `co_code` shows them); handlers and locations are encoded the way that version's compiler
/// encodes them (locations: `LineTableWriter::for_version`).
pub fn assemble_for(
    version: PyVersion,
    instrs: &[AsmInstr],
    first_line: u32,
) -> Result<AssembledCode, AssembleError> {
    let table = version.table();
    check(table, instrs)?;
    let first = i32::try_from(first_line).map_err(|_| AssembleError::BadFirstLine)?;
    let mut prefixes = vec![0u32; instrs.len()];
    let mut args = vec![0u32; instrs.len()];
    let mut rounds = 0;
    let starts = loop {
        let starts = layout(table, instrs, &prefixes);
        let mut changed = false;
        for index in 0..instrs.len() {
            let arg = resolve_arg(table, instrs, &starts, index)?;
            args[index] = arg;
            let mut wanted = prefixes_for(arg);
            // After a few rounds only let sizes grow, which guarantees termination.
            if rounds > 8 {
                wanted = wanted.max(prefixes[index]);
            }
            if wanted != prefixes[index] {
                prefixes[index] = wanted;
                changed = true;
            }
        }
        rounds += 1;
        if !changed {
            break starts;
        }
    };
    let end = *starts.last().unwrap_or(&0);
    if end.saturating_mul(2) > u64::from(u32::MAX) {
        return Err(AssembleError::TooLarge);
    }
    let offsets: Vec<u32> = starts.iter().map(|&u| (u * 2) as u32).collect();

    let mut co_code = Vec::with_capacity(offsets[instrs.len()] as usize);
    let mut lines = LineTableWriter::for_version(first, version);
    for (index, instr) in instrs.iter().enumerate() {
        let arg = args[index];
        let ext = table.byte_of(Opcode::EXTENDED_ARG).unwrap_or(0);
        for shift in (1..=prefixes[index]).rev() {
            co_code.extend([ext, (arg >> (8 * shift)) as u8]);
        }
        // `check` made sure the version has the opcode.
        co_code.extend([table.byte_of(instr.op).unwrap_or(0), arg as u8]);
        co_code.resize(
            co_code.len() + 2 * usize::from(table.cache_entries(instr.op)),
            0,
        );
        lines.push(
            &instr.location,
            prefixes[index] + body_units(table, instr.op),
        );
    }

    let entries = handler_ranges(instrs, &offsets);
    Ok(AssembledCode {
        co_code,
        exception_table: exception_table::encode(&entries),
        line_table: lines.finish(),
        stack_size: max_stack_depth_for(version, instrs)?,
        first_line,
        offsets,
    })
}

/// Groups runs of consecutive instructions with the same handler into table entries.
fn handler_ranges(instrs: &[AsmInstr], offsets: &[u32]) -> Vec<ExceptionEntry> {
    let mut entries: Vec<ExceptionEntry> = Vec::new();
    let mut current: Option<(AsmHandler, u32)> = None;
    for (index, instr) in instrs.iter().enumerate() {
        if current.map(|(h, _)| h) == instr.handler {
            continue;
        }
        if let Some((h, start)) = current {
            entries.push(entry(h, start, offsets[index], offsets));
        }
        current = instr.handler.map(|h| (h, offsets[index]));
    }
    if let Some((h, start)) = current {
        entries.push(entry(h, start, offsets[instrs.len()], offsets));
    }
    entries
}

fn entry(h: AsmHandler, start: u32, end: u32, offsets: &[u32]) -> ExceptionEntry {
    ExceptionEntry {
        start,
        end,
        target: offsets[h.target],
        depth: h.depth,
        lasti: h.lasti,
    }
}

/// Converts decoded instructions to assembler input (targets and handlers become indices).
pub fn to_asm(decoded: &Decoded) -> Result<Vec<AsmInstr>, AssembleError> {
    let table = decoded.version.table();
    decoded
        .instructions
        .iter()
        .map(|instr| {
            let handler = match decoded.handler_for(instr.start) {
                Some(e) => Some(AsmHandler {
                    target: decoded
                        .index_at(e.target)
                        .ok_or(AssembleError::HandlerNotAtInstruction { offset: e.target })?,
                    depth: e.depth,
                    lasti: e.lasti,
                }),
                None => None,
            };
            Ok(AsmInstr {
                op: instr.op,
                arg: if table.has_arg(instr.op) {
                    instr.arg
                } else {
                    0
                },
                target: instr.target.map(|t| t as usize),
                location: instr.location,
                handler,
            })
        })
        .collect()
}

/// Re-assembles decoded code for the version it was decoded with: for compiler-produced code
/// objects this reproduces `co_code` (with caches zeroed), `co_exceptiontable` and
/// `co_linetable` byte for byte.
pub fn reencode(decoded: &Decoded) -> Result<AssembledCode, AssembleError> {
    assemble_for(decoded.version, &to_asm(decoded)?, decoded.first_line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytecode::decode::{decode_for, CodeBytes, DecodeError};

    /// These tests assemble 3.11 programs.
    const V: PyVersion = PyVersion::V3_11;

    fn assemble(instrs: &[AsmInstr], first_line: u32) -> Result<AssembledCode, AssembleError> {
        assemble_for(V, instrs, first_line)
    }

    fn decode(code: &CodeBytes) -> Result<Decoded, DecodeError> {
        decode_for(V, code)
    }

    fn ins(op: Opcode, arg: u32, target: Option<usize>) -> AsmInstr {
        AsmInstr {
            op,
            arg,
            target,
            location: Location::line_only(1),
            handler: None,
        }
    }

    #[test]
    fn long_forward_jump_gets_prefix() {
        use Opcode::*;
        let mut code = vec![ins(RESUME, 0, None), ins(JUMP_FORWARD, 0, Some(302))];
        code.extend((0..300).map(|_| ins(NOP, 0, None)));
        code.push(ins(LOAD_CONST, 0x12345, None));
        code.push(ins(RETURN_VALUE, 0, None));
        code.push(ins(JUMP_BACKWARD, 0, Some(0)));
        let out = assemble(&code, 1).unwrap();
        assert_eq!(&out.co_code[2..6], &[144, 1, 110, 44]);
        let decoded = decode(&CodeBytes {
            co_code: &out.co_code,
            exception_table: &out.exception_table,
            line_table: &out.line_table,
            first_line: 1,
        })
        .unwrap();
        assert_eq!(decoded.instructions.len(), code.len());
        assert_eq!(decoded.instructions[1].target, Some(302));
        assert_eq!(decoded.instructions[302].arg, 0x12345);
        assert_eq!(decoded.instructions[302].prefixes(), 2);
        assert_eq!(decoded.instructions[304].target, Some(0));
        assert_eq!(out.stack_size, 1);
    }

    #[test]
    fn caches_and_handlers() {
        use Opcode::*;
        let handler = Some(AsmHandler {
            target: 4,
            depth: 0,
            lasti: false,
        });
        let mut code = vec![
            ins(RESUME, 0, None),
            ins(LOAD_GLOBAL, 1, None),
            ins(BINARY_SUBSCR, 0, None),
            ins(RETURN_VALUE, 0, None),
            ins(RERAISE, 0, None),
        ];
        code[1].handler = handler;
        code[2].handler = handler;
        let out = assemble(&code, 3).unwrap();
        assert_eq!(out.co_code.len(), 2 * (1 + 6 + 5 + 1 + 1));
        assert_eq!(out.offsets, vec![0, 2, 14, 24, 26, 28]);
        let entries = exception_table::parse(&out.exception_table).unwrap();
        assert_eq!(
            entries,
            vec![ExceptionEntry {
                start: 2,
                end: 24,
                target: 26,
                depth: 0,
                lasti: false
            }]
        );
    }

    #[test]
    fn bad_programs_are_errors() {
        use Opcode::*;
        let cases = [
            vec![ins(EXTENDED_ARG, 1, None)],
            vec![ins(CACHE, 0, None)],
            vec![ins(JUMP_FORWARD, 0, None)],
            vec![ins(JUMP_FORWARD, 0, Some(5))],
            vec![ins(JUMP_FORWARD, 0, Some(0))],
            vec![
                ins(NOP, 0, None),
                ins(JUMP_BACKWARD, 0, Some(2)),
                ins(NOP, 0, None),
            ],
            // Not in 3.11's table; only in adaptive code.
            vec![ins(CALL_KW, 0, None)],
            vec![ins(INSTRUMENTED_CALL, 0, None)],
        ];
        for (n, code) in cases.iter().enumerate() {
            assert!(assemble(code, 1).is_err(), "case {n}");
        }
    }

    /// Random programs (random opcodes, arguments, targets, handlers, locations) must give a
    /// result or an error, never a panic; successful output must decode back.
    #[test]
    fn fuzz_no_panic() {
        let mut state: u64 = 0x2545f4914f6cdd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let big = [0u32, 1, 255, 256, 65535, 65536, 1 << 24, u32::MAX];
        // Mostly stack-neutral opcodes, so that many programs pass the stack analysis.
        let neutral = [
            Opcode::NOP,
            Opcode::JUMP_FORWARD,
            Opcode::JUMP_BACKWARD,
            Opcode::LOAD_ATTR,
        ];
        // Every opcode of the version (others are refused before layout; see bad_programs).
        let all: Vec<Opcode> = V.table().rows().map(|r| r.op).collect();
        let mut assembled = 0;
        for _ in 0..5_000 {
            let len = (next() % 30) as usize + 1;
            let code: Vec<AsmInstr> = (0..len)
                .map(|_| {
                    let pick = next();
                    let op = if pick % 4 == 0 {
                        all[(pick >> 8) as usize % all.len()]
                    } else {
                        neutral[(pick >> 8) as usize % neutral.len()]
                    };
                    let r = next();
                    AsmInstr {
                        op,
                        arg: if r % 5 == 0 {
                            big[(r >> 8) as usize % big.len()]
                        } else {
                            (r % 4) as u32
                        },
                        target: (r % 3 != 0).then_some((next() % (len as u64 + 2)) as usize),
                        location: Location {
                            line: (r % 7 != 0).then_some((next() % 2000) as i32 - 5),
                            end_line: (r % 11 != 0).then_some((next() % 2000) as i32),
                            col: (r % 13 != 0).then_some((next() % 300) as u32),
                            end_col: (r % 17 != 0).then_some((next() % 300) as u32),
                        },
                        handler: (r % 4 == 0).then(|| AsmHandler {
                            target: (next() % (len as u64 + 1)) as usize,
                            depth: (next() % 4) as u32,
                            lasti: r % 8 == 0,
                        }),
                    }
                })
                .collect();
            let first_line = (next() % 100) as u32;
            if let Ok(out) = assemble(&code, first_line) {
                let decoded = decode(&CodeBytes {
                    co_code: &out.co_code,
                    exception_table: &out.exception_table,
                    line_table: &out.line_table,
                    first_line,
                })
                .expect("assembled code must decode");
                assert_eq!(decoded.instructions.len(), code.len());
                for (got, want) in decoded.instructions.iter().zip(&code) {
                    assert_eq!(got.op, want.op);
                    if V.table().is_jump(want.op) {
                        assert_eq!(got.target.map(|t| t as usize), want.target);
                    } else if V.table().has_arg(want.op) {
                        assert_eq!(got.arg, want.arg);
                    }
                }
                assembled += 1;
            }
        }
        assert!(
            assembled > 100,
            "only {assembled} random programs assembled"
        );
    }
}
