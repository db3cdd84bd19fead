//! Decoding and assembling CPython code objects (3.11 first; one opcode table per version).

pub mod code_object;
pub mod decode;
pub mod encode;
pub mod exception_table;
pub mod line_table;
pub mod opcodes;
pub mod stack_depth;
pub mod stack_effect;

#[cfg(test)]
mod roundtrip_tests;

pub use code_object::{decode_code_object, make_code_object, CodeOverrides};
pub use decode::{decode, CodeBytes, DecodeError, Decoded, Instruction};
pub use encode::{assemble, reencode, to_asm, AsmHandler, AsmInstr, AssembleError, AssembledCode};
pub use exception_table::{handler_for, ExceptionEntry, ExceptionTableError};
pub use line_table::{LineEntry, LineTableError, Location};
pub use opcodes::{JumpKind, OpInfo, Opcode, OpcodeTable, PyVersion};
pub use stack_depth::{max_stack_depth, StackDepthError};
pub use stack_effect::stack_effect;
