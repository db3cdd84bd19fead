//! CPython 3.12's opcode table (Lib/opcode.py of 3.12).
//!
//! What changed from 3.11, as far as the byte layer sees it: conditional jumps are
//! forward-only (`POP_JUMP_IF_*`; loops use `JUMP_BACKWARD`), `FOR_ITER` and `SEND` gained a
//! cache unit and their exhausted branch lands on `END_FOR` / `END_SEND`; `PRECALL`,
//! `LOAD_METHOD` (folded into `LOAD_ATTR`'s low oparg bit), `JUMP_IF_*_OR_POP` and the 3.11
//! intrinsics (`PRINT_EXPR`, `IMPORT_STAR`, ...) are gone, replaced by `CALL_INTRINSIC_1/2`;
//! new are `RETURN_CONST`, `LOAD_SUPER_ATTR`, `LOAD_FAST_CHECK`, `LOAD_FAST_AND_CLEAR`,
//! `BINARY_SLICE`/`STORE_SLICE`, `LOAD_FROM_DICT_OR_*`, `YIELD_VALUE` takes an argument, and
//! cache sizes shrank (`BINARY_SUBSCR` 1, `LOAD_GLOBAL` 4, `CALL` 3, `LOAD_ATTR` 9).
//! `INSTRUMENTED_*` bytes (237..=254) are listed for naming only: they exist in a code's
//! adaptive copy while `sys.monitoring` is active, never in `co_code`, and the decoder
//! refuses them (see `Opcode::only_in_adaptive_code`).

use super::opcodes::{opcode_rows, JumpKind, OpInfo, Opcode};

/// Columns: name = byte, inline cache units, `arg`/`noarg`, jump kind.
pub(super) const ROWS: &[OpInfo] = opcode_rows! {
    CACHE = 0, 0, noarg, None;
    POP_TOP = 1, 0, noarg, None;
    PUSH_NULL = 2, 0, noarg, None;
    INTERPRETER_EXIT = 3, 0, noarg, None;
    END_FOR = 4, 0, noarg, None;
    END_SEND = 5, 0, noarg, None;
    NOP = 9, 0, noarg, None;
    UNARY_NEGATIVE = 11, 0, noarg, None;
    UNARY_NOT = 12, 0, noarg, None;
    UNARY_INVERT = 15, 0, noarg, None;
    RESERVED = 17, 0, noarg, None;
    BINARY_SUBSCR = 25, 1, noarg, None;
    BINARY_SLICE = 26, 0, noarg, None;
    STORE_SLICE = 27, 0, noarg, None;
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
    CLEANUP_THROW = 55, 0, noarg, None;
    STORE_SUBSCR = 60, 1, noarg, None;
    DELETE_SUBSCR = 61, 0, noarg, None;
    GET_ITER = 68, 0, noarg, None;
    GET_YIELD_FROM_ITER = 69, 0, noarg, None;
    LOAD_BUILD_CLASS = 71, 0, noarg, None;
    LOAD_ASSERTION_ERROR = 74, 0, noarg, None;
    RETURN_GENERATOR = 75, 0, noarg, None;
    RETURN_VALUE = 83, 0, noarg, None;
    SETUP_ANNOTATIONS = 85, 0, noarg, None;
    LOAD_LOCALS = 87, 0, noarg, None;
    POP_EXCEPT = 89, 0, noarg, None;
    STORE_NAME = 90, 0, arg, None;
    DELETE_NAME = 91, 0, arg, None;
    UNPACK_SEQUENCE = 92, 1, arg, None;
    FOR_ITER = 93, 1, arg, Forward;
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
    LOAD_ATTR = 106, 9, arg, None;
    COMPARE_OP = 107, 1, arg, None;
    IMPORT_NAME = 108, 0, arg, None;
    IMPORT_FROM = 109, 0, arg, None;
    JUMP_FORWARD = 110, 0, arg, Forward;
    POP_JUMP_IF_FALSE = 114, 0, arg, Forward;
    POP_JUMP_IF_TRUE = 115, 0, arg, Forward;
    LOAD_GLOBAL = 116, 4, arg, None;
    IS_OP = 117, 0, arg, None;
    CONTAINS_OP = 118, 0, arg, None;
    RERAISE = 119, 0, arg, None;
    COPY = 120, 0, arg, None;
    RETURN_CONST = 121, 0, arg, None;
    BINARY_OP = 122, 1, arg, None;
    SEND = 123, 1, arg, Forward;
    LOAD_FAST = 124, 0, arg, None;
    STORE_FAST = 125, 0, arg, None;
    DELETE_FAST = 126, 0, arg, None;
    LOAD_FAST_CHECK = 127, 0, arg, None;
    POP_JUMP_IF_NOT_NONE = 128, 0, arg, Forward;
    POP_JUMP_IF_NONE = 129, 0, arg, Forward;
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
    LOAD_SUPER_ATTR = 141, 1, arg, None;
    CALL_FUNCTION_EX = 142, 0, arg, None;
    LOAD_FAST_AND_CLEAR = 143, 0, arg, None;
    EXTENDED_ARG = 144, 0, arg, None;
    LIST_APPEND = 145, 0, arg, None;
    SET_ADD = 146, 0, arg, None;
    MAP_ADD = 147, 0, arg, None;
    COPY_FREE_VARS = 149, 0, arg, None;
    YIELD_VALUE = 150, 0, arg, None;
    RESUME = 151, 0, arg, None;
    MATCH_CLASS = 152, 0, arg, None;
    FORMAT_VALUE = 155, 0, arg, None;
    BUILD_CONST_KEY_MAP = 156, 0, arg, None;
    BUILD_STRING = 157, 0, arg, None;
    LIST_EXTEND = 162, 0, arg, None;
    SET_UPDATE = 163, 0, arg, None;
    DICT_MERGE = 164, 0, arg, None;
    DICT_UPDATE = 165, 0, arg, None;
    CALL = 171, 3, arg, None;
    KW_NAMES = 172, 0, arg, None;
    CALL_INTRINSIC_1 = 173, 0, arg, None;
    CALL_INTRINSIC_2 = 174, 0, arg, None;
    LOAD_FROM_DICT_OR_GLOBALS = 175, 0, arg, None;
    LOAD_FROM_DICT_OR_DEREF = 176, 0, arg, None;
    INSTRUMENTED_LOAD_SUPER_ATTR = 237, 0, arg, None;
    INSTRUMENTED_POP_JUMP_IF_NONE = 238, 0, arg, None;
    INSTRUMENTED_POP_JUMP_IF_NOT_NONE = 239, 0, arg, None;
    INSTRUMENTED_RESUME = 240, 0, arg, None;
    INSTRUMENTED_CALL = 241, 0, arg, None;
    INSTRUMENTED_RETURN_VALUE = 242, 0, arg, None;
    INSTRUMENTED_YIELD_VALUE = 243, 0, arg, None;
    INSTRUMENTED_CALL_FUNCTION_EX = 244, 0, arg, None;
    INSTRUMENTED_JUMP_FORWARD = 245, 0, arg, None;
    INSTRUMENTED_JUMP_BACKWARD = 246, 0, arg, None;
    INSTRUMENTED_RETURN_CONST = 247, 0, arg, None;
    INSTRUMENTED_FOR_ITER = 248, 0, arg, None;
    INSTRUMENTED_POP_JUMP_IF_FALSE = 249, 0, arg, None;
    INSTRUMENTED_POP_JUMP_IF_TRUE = 250, 0, arg, None;
    INSTRUMENTED_END_FOR = 251, 0, arg, None;
    INSTRUMENTED_END_SEND = 252, 0, arg, None;
    INSTRUMENTED_INSTRUCTION = 253, 0, arg, None;
    INSTRUMENTED_LINE = 254, 0, arg, None;
};
