//! Decoding and assembling CPython code objects (3.11 first; one opcode table per version).

pub mod decode;
pub mod exception_table;
pub mod line_table;
pub mod opcodes;
pub mod stack_effect;

pub use decode::{decode, CodeBytes, DecodeError, Decoded, Instruction};
pub use exception_table::{handler_for, ExceptionEntry, ExceptionTableError};
pub use line_table::{LineEntry, LineTableError, Location};
pub use opcodes::{JumpKind, OpInfo, Opcode, OpcodeTable, PyVersion};
pub use stack_effect::stack_effect;
