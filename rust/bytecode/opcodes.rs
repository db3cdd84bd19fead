//! Opcode tables, one per supported CPython version.
//!
//! `Opcode` names an operation independently of its byte value: it is the union of the
//! operations of every supported version, declared once below (`opcodes!`). Each version's
//! table is written once, as rows of `name = byte, caches, arg, jump` in its own file
//! (`opcodes_3_11.rs`, `opcodes_3_12.rs`, `opcodes_3_13.rs`, through `opcode_rows!`), and
//! everything byte-level is derived from those rows by `build_table`: byte -> `Opcode`,
//! `Opcode` -> byte, names, inline-cache counts, argument flags and jump kinds. A version
//! lacking an operation has no row for it (`OpcodeTable::info` is None), so decoding its byte
//! or assembling it for that version is an error rather than a wrong byte.
//!
//! A `PyVersion` selects an `OpcodeTable`. The decoder, assembler, stack-effect and
//! stack-depth code take the version (from `Decoded::version` or an explicit argument) and
//! ask its table. The convenience methods on `Opcode` itself (`from_u8`, `cache_entries`,
//! ...) answer for `PyVersion::CURRENT`, the version of the interpreter this build links
//! (chosen at compile time from pyo3's `Py_3_12` / `Py_3_13` cfgs).
//! Adding a version: a `PyVersion` variant, a rows file, new names in `opcodes!`, its stack
//! effects in `stack_effect.rs`, and the control-flow facts below if they change.

use std::fmt;

use super::{opcodes_3_11, opcodes_3_12, opcodes_3_13};

/// How an instruction's argument encodes its jump target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JumpKind {
    /// Not a jump.
    None,
    /// Target is `next + 2 * arg` (byte offsets; `next` is after the inline caches).
    Forward,
    /// Target is `next - 2 * arg`.
    Backward,
    /// Target is `2 * arg` (unused in 3.11..=3.13; kept for other versions' tables).
    Absolute,
}

/// Static facts about one opcode in one version's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpInfo {
    pub op: Opcode,
    pub byte: u8,
    pub name: &'static str,
    /// Number of 2-byte CACHE code units that follow the instruction.
    pub cache_entries: u8,
    pub has_arg: bool,
    pub jump: JumpKind,
}

/// The CPython versions whose bytecode this module understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PyVersion {
    V3_11,
    V3_12,
    V3_13,
}

impl PyVersion {
    /// The version of the interpreter this build links.
    #[cfg(not(Py_3_12))]
    pub const CURRENT: PyVersion = PyVersion::V3_11;
    #[cfg(all(Py_3_12, not(Py_3_13)))]
    pub const CURRENT: PyVersion = PyVersion::V3_12;
    #[cfg(Py_3_13)]
    pub const CURRENT: PyVersion = PyVersion::V3_13;

    /// Every supported version, oldest first.
    pub const ALL: [PyVersion; 3] = [PyVersion::V3_11, PyVersion::V3_12, PyVersion::V3_13];

    pub fn table(self) -> &'static OpcodeTable {
        match self {
            PyVersion::V3_11 => &TABLE_3_11,
            PyVersion::V3_12 => &TABLE_3_12,
            PyVersion::V3_13 => &TABLE_3_13,
        }
    }

    /// The version for `sys.version_info[:2]`, if supported.
    pub fn from_minor(major: u8, minor: u8) -> Option<PyVersion> {
        match (major, minor) {
            (3, 11) => Some(PyVersion::V3_11),
            (3, 12) => Some(PyVersion::V3_12),
            (3, 13) => Some(PyVersion::V3_13),
            _ => None,
        }
    }

    /// `(major, minor)`.
    pub fn numbers(self) -> (u8, u8) {
        match self {
            PyVersion::V3_11 => (3, 11),
            PyVersion::V3_12 => (3, 12),
            PyVersion::V3_13 => (3, 13),
        }
    }
}

impl fmt::Display for PyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (major, minor) = self.numbers();
        write!(f, "{major}.{minor}")
    }
}

/// One version's mapping between bytes and `Opcode`s plus per-opcode facts.
pub struct OpcodeTable {
    version: PyVersion,
    by_byte: [Option<Opcode>; 256],
    by_op: [Option<OpInfo>; Opcode::COUNT],
}

impl OpcodeTable {
    pub fn version(&self) -> PyVersion {
        self.version
    }

    /// The opcode a byte denotes in this version (None for unassigned or specialized bytes).
    pub fn decode_byte(&self, byte: u8) -> Option<Opcode> {
        self.by_byte[usize::from(byte)]
    }

    /// Facts about an opcode in this version (None if the version lacks it).
    pub fn info(&self, op: Opcode) -> Option<&OpInfo> {
        self.by_op[op as usize].as_ref()
    }

    /// The byte encoding an opcode in this version.
    pub fn byte_of(&self, op: Opcode) -> Option<u8> {
        self.info(op).map(|i| i.byte)
    }

    /// Inline CACHE units after `op` (0 where the version lacks it).
    pub fn cache_entries(&self, op: Opcode) -> u8 {
        self.info(op).map_or(0, |i| i.cache_entries)
    }

    pub fn has_arg(&self, op: Opcode) -> bool {
        self.info(op).is_some_and(|i| i.has_arg)
    }

    pub fn jump(&self, op: Opcode) -> JumpKind {
        self.info(op).map_or(JumpKind::None, |i| i.jump)
    }

    pub fn is_jump(&self, op: Opcode) -> bool {
        self.jump(op) != JumpKind::None
    }

    /// Every row of this version, in byte order.
    pub fn rows(&self) -> impl Iterator<Item = &OpInfo> {
        self.by_byte
            .iter()
            .flatten()
            .filter_map(|&op| self.info(op))
    }
}

impl Opcode {
    /// Decode a byte with the current version's table.
    pub fn from_u8(byte: u8) -> Option<Opcode> {
        PyVersion::CURRENT.table().decode_byte(byte)
    }

    /// The byte for this opcode in the current version (0, CACHE, where the current version
    /// lacks the opcode; the assembler refuses such opcodes before asking).
    pub fn to_u8(self) -> u8 {
        PyVersion::CURRENT.table().byte_of(self).unwrap_or(0)
    }

    pub fn name(self) -> &'static str {
        OPCODE_NAMES[self as usize]
    }

    pub fn cache_entries(self) -> u8 {
        PyVersion::CURRENT.table().cache_entries(self)
    }

    pub fn has_arg(self) -> bool {
        PyVersion::CURRENT.table().has_arg(self)
    }

    pub fn jump(self) -> JumpKind {
        PyVersion::CURRENT.table().jump(self)
    }

    pub fn is_jump(self) -> bool {
        self.jump() != JumpKind::None
    }

    /// Jumps after which control never falls through to the next instruction (the same
    /// names in every supported version).
    pub fn is_unconditional_jump(self) -> bool {
        matches!(
            self,
            Opcode::JUMP_FORWARD | Opcode::JUMP_BACKWARD | Opcode::JUMP_BACKWARD_NO_INTERRUPT
        )
    }

    /// Instructions that leave the frame (or the handler) and never fall through.
    /// (`RETURN_CONST` exists from 3.12.)
    pub fn is_scope_exit(self) -> bool {
        matches!(
            self,
            Opcode::RETURN_VALUE | Opcode::RETURN_CONST | Opcode::RAISE_VARARGS | Opcode::RERAISE
        )
    }

    /// Opcodes that only appear in a code object's adaptive (quickened) copy, never in
    /// `co_code`: `sys.monitoring`'s `INSTRUMENTED_*` replacements (whose real cache layout
    /// is that of the instruction they replace, kept in side tables for
    /// `INSTRUMENTED_LINE`/`INSTRUMENTED_INSTRUCTION`) and 3.13's `ENTER_EXECUTOR`. The
    /// decoder and assembler refuse them.
    pub fn only_in_adaptive_code(self) -> bool {
        use Opcode::*;
        matches!(
            self,
            ENTER_EXECUTOR
                | INSTRUMENTED_LOAD_SUPER_ATTR
                | INSTRUMENTED_POP_JUMP_IF_NONE
                | INSTRUMENTED_POP_JUMP_IF_NOT_NONE
                | INSTRUMENTED_RESUME
                | INSTRUMENTED_CALL
                | INSTRUMENTED_CALL_KW
                | INSTRUMENTED_RETURN_VALUE
                | INSTRUMENTED_YIELD_VALUE
                | INSTRUMENTED_CALL_FUNCTION_EX
                | INSTRUMENTED_JUMP_FORWARD
                | INSTRUMENTED_JUMP_BACKWARD
                | INSTRUMENTED_RETURN_CONST
                | INSTRUMENTED_FOR_ITER
                | INSTRUMENTED_POP_JUMP_IF_FALSE
                | INSTRUMENTED_POP_JUMP_IF_TRUE
                | INSTRUMENTED_END_FOR
                | INSTRUMENTED_END_SEND
                | INSTRUMENTED_INSTRUCTION
                | INSTRUMENTED_LINE
        )
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const fn build_table(version: PyVersion, rows: &[OpInfo]) -> OpcodeTable {
    let mut by_byte = [None; 256];
    let mut by_op = [None; Opcode::COUNT];
    let mut i = 0;
    while i < rows.len() {
        let row = rows[i];
        // A byte or an opcode listed twice is a typo in a table: fail the build.
        assert!(by_byte[row.byte as usize].is_none(), "byte listed twice");
        assert!(by_op[row.op as usize].is_none(), "opcode listed twice");
        by_byte[row.byte as usize] = Some(row.op);
        by_op[row.op as usize] = Some(row);
        i += 1;
    }
    OpcodeTable {
        version,
        by_byte,
        by_op,
    }
}

/// Declares `Opcode` (one variant per name, in order), `Opcode::COUNT`, `Opcode::ALL` and
/// the names.
macro_rules! opcodes {
    ($( $name:ident, )*) => {
        /// A CPython bytecode operation, independent of its byte value in any version.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Opcode { $( $name, )* }

        impl Opcode {
            /// Number of `Opcode` variants.
            pub const COUNT: usize = [$( stringify!($name), )*].len();
            /// Every variant, in declaration order.
            pub const ALL: [Opcode; Opcode::COUNT] = [$( Opcode::$name, )*];
        }

        const OPCODE_NAMES: [&str; Opcode::COUNT] = [$( stringify!($name), )*];
    };
}

/// One version's rows. Columns: name = byte, inline cache units, `arg`/`noarg`, jump kind.
macro_rules! opcode_rows {
    ($( $name:ident = $byte:literal, $caches:literal, $arg:ident, $jump:ident; )*) => {
        &[$(
            OpInfo {
                op: Opcode::$name,
                byte: $byte,
                name: stringify!($name),
                cache_entries: $caches,
                has_arg: opcode_rows!(@arg $arg),
                jump: JumpKind::$jump,
            },
        )*]
    };
    (@arg arg) => { true };
    (@arg noarg) => { false };
}
pub(super) use opcode_rows;

opcodes! {
    // Present in 3.11.
    CACHE, POP_TOP, PUSH_NULL, NOP, UNARY_POSITIVE, UNARY_NEGATIVE, UNARY_NOT, UNARY_INVERT,
    BINARY_SUBSCR, GET_LEN, MATCH_MAPPING, MATCH_SEQUENCE, MATCH_KEYS, PUSH_EXC_INFO,
    CHECK_EXC_MATCH, CHECK_EG_MATCH, WITH_EXCEPT_START, GET_AITER, GET_ANEXT, BEFORE_ASYNC_WITH,
    BEFORE_WITH, END_ASYNC_FOR, STORE_SUBSCR, DELETE_SUBSCR, GET_ITER, GET_YIELD_FROM_ITER,
    PRINT_EXPR, LOAD_BUILD_CLASS, LOAD_ASSERTION_ERROR, RETURN_GENERATOR, LIST_TO_TUPLE,
    RETURN_VALUE, IMPORT_STAR, SETUP_ANNOTATIONS, YIELD_VALUE, ASYNC_GEN_WRAP,
    PREP_RERAISE_STAR, POP_EXCEPT, STORE_NAME, DELETE_NAME, UNPACK_SEQUENCE, FOR_ITER,
    UNPACK_EX, STORE_ATTR, DELETE_ATTR, STORE_GLOBAL, DELETE_GLOBAL, SWAP, LOAD_CONST,
    LOAD_NAME, BUILD_TUPLE, BUILD_LIST, BUILD_SET, BUILD_MAP, LOAD_ATTR, COMPARE_OP,
    IMPORT_NAME, IMPORT_FROM, JUMP_FORWARD, JUMP_IF_FALSE_OR_POP, JUMP_IF_TRUE_OR_POP,
    POP_JUMP_FORWARD_IF_FALSE, POP_JUMP_FORWARD_IF_TRUE, LOAD_GLOBAL, IS_OP, CONTAINS_OP,
    RERAISE, COPY, BINARY_OP, SEND, LOAD_FAST, STORE_FAST, DELETE_FAST,
    POP_JUMP_FORWARD_IF_NOT_NONE, POP_JUMP_FORWARD_IF_NONE, RAISE_VARARGS, GET_AWAITABLE,
    MAKE_FUNCTION, BUILD_SLICE, JUMP_BACKWARD_NO_INTERRUPT, MAKE_CELL, LOAD_CLOSURE, LOAD_DEREF,
    STORE_DEREF, DELETE_DEREF, JUMP_BACKWARD, CALL_FUNCTION_EX, EXTENDED_ARG, LIST_APPEND,
    SET_ADD, MAP_ADD, LOAD_CLASSDEREF, COPY_FREE_VARS, RESUME, MATCH_CLASS, FORMAT_VALUE,
    BUILD_CONST_KEY_MAP, BUILD_STRING, LOAD_METHOD, LIST_EXTEND, SET_UPDATE, DICT_MERGE,
    DICT_UPDATE, PRECALL, CALL, KW_NAMES, POP_JUMP_BACKWARD_IF_NOT_NONE,
    POP_JUMP_BACKWARD_IF_NONE, POP_JUMP_BACKWARD_IF_FALSE, POP_JUMP_BACKWARD_IF_TRUE,
    // New in 3.12.
    INTERPRETER_EXIT, END_FOR, END_SEND, RESERVED, BINARY_SLICE, STORE_SLICE, CLEANUP_THROW,
    LOAD_LOCALS, POP_JUMP_IF_FALSE, POP_JUMP_IF_TRUE, RETURN_CONST, LOAD_FAST_CHECK,
    POP_JUMP_IF_NOT_NONE, POP_JUMP_IF_NONE, LOAD_SUPER_ATTR, LOAD_FAST_AND_CLEAR,
    CALL_INTRINSIC_1, CALL_INTRINSIC_2, LOAD_FROM_DICT_OR_GLOBALS, LOAD_FROM_DICT_OR_DEREF,
    INSTRUMENTED_LOAD_SUPER_ATTR, INSTRUMENTED_POP_JUMP_IF_NONE,
    INSTRUMENTED_POP_JUMP_IF_NOT_NONE, INSTRUMENTED_RESUME, INSTRUMENTED_CALL,
    INSTRUMENTED_RETURN_VALUE, INSTRUMENTED_YIELD_VALUE, INSTRUMENTED_CALL_FUNCTION_EX,
    INSTRUMENTED_JUMP_FORWARD, INSTRUMENTED_JUMP_BACKWARD, INSTRUMENTED_RETURN_CONST,
    INSTRUMENTED_FOR_ITER, INSTRUMENTED_POP_JUMP_IF_FALSE, INSTRUMENTED_POP_JUMP_IF_TRUE,
    INSTRUMENTED_END_FOR, INSTRUMENTED_END_SEND, INSTRUMENTED_INSTRUCTION, INSTRUMENTED_LINE,
    // New in 3.13.
    EXIT_INIT_CHECK, FORMAT_SIMPLE, FORMAT_WITH_SPEC, TO_BOOL, CALL_KW, CONVERT_VALUE,
    ENTER_EXECUTOR, LOAD_FAST_LOAD_FAST, SET_FUNCTION_ATTRIBUTE, STORE_FAST_LOAD_FAST,
    STORE_FAST_STORE_FAST, INSTRUMENTED_CALL_KW,
}

static TABLE_3_11: OpcodeTable = build_table(PyVersion::V3_11, opcodes_3_11::ROWS);
static TABLE_3_12: OpcodeTable = build_table(PyVersion::V3_12, opcodes_3_12::ROWS);
static TABLE_3_13: OpcodeTable = build_table(PyVersion::V3_13, opcodes_3_13::ROWS);

#[cfg(test)]
#[path = "opcodes_tests.rs"]
mod tests;
