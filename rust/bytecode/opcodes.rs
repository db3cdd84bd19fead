//! Opcode tables, one per supported CPython version.
//!
//! Each version's table is written once (see `opcode_table!` below) and everything else is
//! derived from it: the `Opcode` enum, byte <-> opcode mapping, names, inline-cache counts,
//! argument flags and jump kinds.
//!
//! `Opcode` names an operation independently of its byte value. A `PyVersion` selects an
//! `OpcodeTable`, and all byte-level questions (which byte is `LOAD_FAST`, how many CACHE units
//! follow `CALL`) go through that table. Only 3.11 exists today; adding 3.12 means adding a
//! `PyVersion` variant and a second table, and extending `Opcode` with the new names, without
//! changing callers that go through `PyVersion::table()`. The convenience methods on `Opcode`
//! itself (`from_u8`, `cache_entries`, ...) answer for `PyVersion::CURRENT`.

use std::fmt;

/// How an instruction's argument encodes its jump target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JumpKind {
    /// Not a jump.
    None,
    /// Target is `next + 2 * arg` (byte offsets; `next` is after the inline caches).
    Forward,
    /// Target is `next - 2 * arg`.
    Backward,
    /// Target is `2 * arg` (unused in 3.11; kept for other versions' tables).
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PyVersion {
    V3_11,
}

impl PyVersion {
    /// The version the rest of ferrodyn targets.
    pub const CURRENT: PyVersion = PyVersion::V3_11;

    pub fn table(self) -> &'static OpcodeTable {
        match self {
            PyVersion::V3_11 => &TABLE_3_11,
        }
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
}

impl Opcode {
    /// Decode a byte with the current version's table.
    pub fn from_u8(byte: u8) -> Option<Opcode> {
        PyVersion::CURRENT.table().decode_byte(byte)
    }

    fn current(self) -> Option<&'static OpInfo> {
        PyVersion::CURRENT.table().info(self)
    }

    /// The byte for this opcode in the current version. Every `Opcode` variant exists in the
    /// current table, so the fallback is unreachable in practice.
    pub fn to_u8(self) -> u8 {
        self.current().map_or(0, |i| i.byte)
    }

    pub fn name(self) -> &'static str {
        OPCODE_NAMES[self as usize]
    }

    pub fn cache_entries(self) -> u8 {
        self.current().map_or(0, |i| i.cache_entries)
    }

    pub fn has_arg(self) -> bool {
        self.current().is_some_and(|i| i.has_arg)
    }

    pub fn jump(self) -> JumpKind {
        self.current().map_or(JumpKind::None, |i| i.jump)
    }

    pub fn is_jump(self) -> bool {
        self.jump() != JumpKind::None
    }

    /// Jumps after which control never falls through to the next instruction.
    pub fn is_unconditional_jump(self) -> bool {
        matches!(
            self,
            Opcode::JUMP_FORWARD | Opcode::JUMP_BACKWARD | Opcode::JUMP_BACKWARD_NO_INTERRUPT
        )
    }

    /// Instructions that leave the frame (or the handler) and never fall through.
    pub fn is_scope_exit(self) -> bool {
        matches!(
            self,
            Opcode::RETURN_VALUE | Opcode::RAISE_VARARGS | Opcode::RERAISE
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

/// Defines `Opcode` (one variant per row, in row order), its names, and the rows of the
/// 3.11 table. Columns: name = byte, inline cache units, `arg`/`noarg`, jump kind.
macro_rules! opcode_table {
    ($( $name:ident = $byte:literal, $caches:literal, $arg:ident, $jump:ident; )*) => {
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

        const ROWS_3_11: &[OpInfo] = &[$(
            OpInfo {
                op: Opcode::$name,
                byte: $byte,
                name: stringify!($name),
                cache_entries: $caches,
                has_arg: opcode_table!(@arg $arg),
                jump: JumpKind::$jump,
            },
        )*];
    };
    (@arg arg) => { true };
    (@arg noarg) => { false };
}

opcode_table! {
    CACHE = 0, 0, noarg, None;
    POP_TOP = 1, 0, noarg, None;
    PUSH_NULL = 2, 0, noarg, None;
    NOP = 9, 0, noarg, None;
    UNARY_POSITIVE = 10, 0, noarg, None;
    UNARY_NEGATIVE = 11, 0, noarg, None;
    UNARY_NOT = 12, 0, noarg, None;
    UNARY_INVERT = 15, 0, noarg, None;
    BINARY_SUBSCR = 25, 4, noarg, None;
    GET_LEN = 30, 0, noarg, None;
    MATCH_MAPPING = 31, 0, noarg, None;
    MATCH_SEQUENCE = 32, 0, noarg, None;
    MATCH_KEYS = 33, 0, noarg, None;
    PUSH_EXC_INFO = 35, 0, noarg, None;
    CHECK_EXC_MATCH = 36, 0, noarg, None;
    CHECK_EG_MATCH = 37, 0, noarg, None;
    WITH_EXCEPT_START = 49, 0, noarg, None;
    GET_AITER = 50, 0, noarg, None;
    GET_ANEXT = 51, 0, noarg, None;
    BEFORE_ASYNC_WITH = 52, 0, noarg, None;
    BEFORE_WITH = 53, 0, noarg, None;
    END_ASYNC_FOR = 54, 0, noarg, None;
    STORE_SUBSCR = 60, 1, noarg, None;
    DELETE_SUBSCR = 61, 0, noarg, None;
    GET_ITER = 68, 0, noarg, None;
    GET_YIELD_FROM_ITER = 69, 0, noarg, None;
    PRINT_EXPR = 70, 0, noarg, None;
    LOAD_BUILD_CLASS = 71, 0, noarg, None;
    LOAD_ASSERTION_ERROR = 74, 0, noarg, None;
    RETURN_GENERATOR = 75, 0, noarg, None;
    LIST_TO_TUPLE = 82, 0, noarg, None;
    RETURN_VALUE = 83, 0, noarg, None;
    IMPORT_STAR = 84, 0, noarg, None;
    SETUP_ANNOTATIONS = 85, 0, noarg, None;
    YIELD_VALUE = 86, 0, noarg, None;
    ASYNC_GEN_WRAP = 87, 0, noarg, None;
    PREP_RERAISE_STAR = 88, 0, noarg, None;
    POP_EXCEPT = 89, 0, noarg, None;
    STORE_NAME = 90, 0, arg, None;
    DELETE_NAME = 91, 0, arg, None;
    UNPACK_SEQUENCE = 92, 1, arg, None;
    FOR_ITER = 93, 0, arg, Forward;
    UNPACK_EX = 94, 0, arg, None;
    STORE_ATTR = 95, 4, arg, None;
    DELETE_ATTR = 96, 0, arg, None;
    STORE_GLOBAL = 97, 0, arg, None;
    DELETE_GLOBAL = 98, 0, arg, None;
    SWAP = 99, 0, arg, None;
    LOAD_CONST = 100, 0, arg, None;
    LOAD_NAME = 101, 0, arg, None;
    BUILD_TUPLE = 102, 0, arg, None;
    BUILD_LIST = 103, 0, arg, None;
    BUILD_SET = 104, 0, arg, None;
    BUILD_MAP = 105, 0, arg, None;
    LOAD_ATTR = 106, 4, arg, None;
    COMPARE_OP = 107, 2, arg, None;
    IMPORT_NAME = 108, 0, arg, None;
    IMPORT_FROM = 109, 0, arg, None;
    JUMP_FORWARD = 110, 0, arg, Forward;
    JUMP_IF_FALSE_OR_POP = 111, 0, arg, Forward;
    JUMP_IF_TRUE_OR_POP = 112, 0, arg, Forward;
    POP_JUMP_FORWARD_IF_FALSE = 114, 0, arg, Forward;
    POP_JUMP_FORWARD_IF_TRUE = 115, 0, arg, Forward;
    LOAD_GLOBAL = 116, 5, arg, None;
    IS_OP = 117, 0, arg, None;
    CONTAINS_OP = 118, 0, arg, None;
    RERAISE = 119, 0, arg, None;
    COPY = 120, 0, arg, None;
    BINARY_OP = 122, 1, arg, None;
    SEND = 123, 0, arg, Forward;
    LOAD_FAST = 124, 0, arg, None;
    STORE_FAST = 125, 0, arg, None;
    DELETE_FAST = 126, 0, arg, None;
    POP_JUMP_FORWARD_IF_NOT_NONE = 128, 0, arg, Forward;
    POP_JUMP_FORWARD_IF_NONE = 129, 0, arg, Forward;
    RAISE_VARARGS = 130, 0, arg, None;
    GET_AWAITABLE = 131, 0, arg, None;
    MAKE_FUNCTION = 132, 0, arg, None;
    BUILD_SLICE = 133, 0, arg, None;
    JUMP_BACKWARD_NO_INTERRUPT = 134, 0, arg, Backward;
    MAKE_CELL = 135, 0, arg, None;
    LOAD_CLOSURE = 136, 0, arg, None;
    LOAD_DEREF = 137, 0, arg, None;
    STORE_DEREF = 138, 0, arg, None;
    DELETE_DEREF = 139, 0, arg, None;
    JUMP_BACKWARD = 140, 0, arg, Backward;
    CALL_FUNCTION_EX = 142, 0, arg, None;
    EXTENDED_ARG = 144, 0, arg, None;
    LIST_APPEND = 145, 0, arg, None;
    SET_ADD = 146, 0, arg, None;
    MAP_ADD = 147, 0, arg, None;
    LOAD_CLASSDEREF = 148, 0, arg, None;
    COPY_FREE_VARS = 149, 0, arg, None;
    RESUME = 151, 0, arg, None;
    MATCH_CLASS = 152, 0, arg, None;
    FORMAT_VALUE = 155, 0, arg, None;
    BUILD_CONST_KEY_MAP = 156, 0, arg, None;
    BUILD_STRING = 157, 0, arg, None;
    LOAD_METHOD = 160, 10, arg, None;
    LIST_EXTEND = 162, 0, arg, None;
    SET_UPDATE = 163, 0, arg, None;
    DICT_MERGE = 164, 0, arg, None;
    DICT_UPDATE = 165, 0, arg, None;
    PRECALL = 166, 1, arg, None;
    CALL = 171, 4, arg, None;
    KW_NAMES = 172, 0, arg, None;
    POP_JUMP_BACKWARD_IF_NOT_NONE = 173, 0, arg, Backward;
    POP_JUMP_BACKWARD_IF_NONE = 174, 0, arg, Backward;
    POP_JUMP_BACKWARD_IF_FALSE = 175, 0, arg, Backward;
    POP_JUMP_BACKWARD_IF_TRUE = 176, 0, arg, Backward;
}

static TABLE_3_11: OpcodeTable = build_table(PyVersion::V3_11, ROWS_3_11);

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::prelude::*;

    #[test]
    fn every_variant_is_in_current_table() {
        let table = PyVersion::CURRENT.table();
        for op in Opcode::ALL {
            let info = table.info(op).expect("variant missing from table");
            assert_eq!(info.name, op.name());
            assert_eq!(table.decode_byte(info.byte), Some(op));
            assert_eq!(Opcode::from_u8(op.to_u8()), Some(op));
        }
    }

    #[test]
    fn unknown_bytes_are_none() {
        assert_eq!(Opcode::from_u8(3), None);
        assert_eq!(Opcode::from_u8(255), None);
        assert_eq!(Opcode::from_u8(141), None);
    }

    /// Compare every byte against CPython's own `opcode` module.
    #[test]
    fn matches_cpython_opcode_module() {
        Python::attach(|py| {
            let opcode = py.import("opcode").unwrap();
            let opname: Vec<String> = opcode.getattr("opname").unwrap().extract().unwrap();
            let caches: Vec<u8> = opcode
                .getattr("_inline_cache_entries")
                .unwrap()
                .extract()
                .unwrap();
            let have_arg: u8 = opcode.getattr("HAVE_ARGUMENT").unwrap().extract().unwrap();
            let jrel: Vec<u8> = opcode.getattr("hasjrel").unwrap().extract().unwrap();
            let jabs: Vec<u8> = opcode.getattr("hasjabs").unwrap().extract().unwrap();
            for byte in 0..=255u8 {
                let name = &opname[usize::from(byte)];
                match Opcode::from_u8(byte) {
                    Some(op) => {
                        assert_eq!(op.name(), name);
                        assert_eq!(op.cache_entries(), caches[usize::from(byte)], "{name}");
                        assert_eq!(op.has_arg(), byte >= have_arg, "{name}");
                        let is_rel = jrel.contains(&byte);
                        assert_eq!(op.is_jump(), is_rel || jabs.contains(&byte), "{name}");
                        assert!(!jabs.contains(&byte));
                    }
                    None => assert!(name.starts_with('<'), "missing opcode {name}"),
                }
            }
        });
    }
}
