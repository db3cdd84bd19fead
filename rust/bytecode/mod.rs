//! Decoding and assembling CPython code objects of 3.11, 3.12 and 3.13 (the tracer itself
//! runs all three).
//!
//! Versions: each version's opcode table is written once, as rows
//! `NAME = byte, inline caches, arg/noarg, jump kind` in `opcodes_3_11.rs`,
//! `opcodes_3_12.rs`, `opcodes_3_13.rs`; `Opcode` is the union of their names (declared once
//! in `opcodes.rs`), and `build_table` derives each `OpcodeTable` (byte <-> opcode, caches,
//! argument flag, jump direction) at compile time. Everything that depends on the version
//! asks the table of a `PyVersion`: `decode_for(version, ..)` records it in
//! `Decoded::version`, `reencode` assembles for that version (`assemble_for`), and
//! `stack_effect_for` / `max_stack_depth_for` take it explicitly. Facts not in the rows live
//! beside the code that uses them, matched on the version: stack effects
//! (`stack_effect.rs`, one function per version), 3.13's minimum `co_stacksize` of 1 and
//! RETURN_GENERATOR's resume slot (`stack_depth.rs`), and 3.12+ merging runs of equal
//! locations in the line table (`LineTableWriter::for_version`). The exception-table and
//! location-table formats are the same in all three. The functions without `_for`
//! (`decode`, `assemble`, `Opcode::cache_entries`, ...) answer for `PyVersion::CURRENT`, the
//! version this build links (pyo3's `Py_3_12`/`Py_3_13` cfgs, exposed by `build.rs`).
//!
//! * `opcodes`: per-version opcode tables (`PyVersion::table()`), the `Opcode` enum.
//! * `decode`: `co_code` + tables -> `Decoded` (EXTENDED_ARG folded, caches skipped, jump
//!   targets as instruction indices, per-instruction source locations).
//! * `exception_table`, `line_table`: codecs for `co_exceptiontable` / `co_linetable`.
//! * `encode`: the assembler (`AsmInstr` with symbolic targets and handlers -> bytes), and
//!   `reencode`, which reproduces compiler output byte for byte.
//! * `stack_effect`, `stack_depth`: `dis.stack_effect` and `co_stacksize`.
//! * `liveness`: the locals each instruction may still read (what a resume function gets).
//! * `code_object`: reading and building Python code objects.
//! * `resume`: continuation code objects (graph-break glue and resume functions).

pub mod code_object;
pub mod decode;
pub mod encode;
pub mod exception_table;
pub mod line_table;
pub mod liveness;
pub mod opcodes;
mod opcodes_3_11;
mod opcodes_3_12;
mod opcodes_3_13;
pub mod resume;
pub mod stack_depth;
pub mod stack_effect;

#[cfg(test)]
mod roundtrip_dumped_tests;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod test_interpreters;

pub use code_object::{decode_code_object, make_code_object, CodeOverrides};
pub use decode::{decode, decode_for, CodeBytes, DecodeError, Decoded, Instruction};
pub use encode::{
    assemble, assemble_for, reencode, to_asm, AsmHandler, AsmInstr, AssembleError, AssembledCode,
};
pub use exception_table::{handler_for, ExceptionEntry, ExceptionTableError};
pub use line_table::{LineEntry, LineTableError, Location};
pub use opcodes::{JumpKind, OpInfo, Opcode, OpcodeTable, PyVersion};
pub use stack_depth::{max_stack_depth, max_stack_depth_for, StackDepthError};
pub use stack_effect::{stack_effect, stack_effect_for};
