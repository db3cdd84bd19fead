//! Net stack effect of one instruction, as each version's `dis.stack_effect` reports it.

use super::opcodes::{Opcode, PyVersion};

/// Net change in stack depth from executing `op` with `arg` on `PyVersion::CURRENT`.
pub fn stack_effect(op: Opcode, arg: u32, jump: bool) -> Option<i32> {
    stack_effect_for(PyVersion::CURRENT, op, arg, jump)
}

/// Net change in stack depth from executing `op` with `arg` in `version`. `jump` selects the
/// effect on the branch that jumps (for jumping instructions; others ignore it, and from 3.12
/// both branches have the same effect). None for opcodes the version lacks and for those
/// only found in adaptive code (`Opcode::only_in_adaptive_code`).
pub fn stack_effect_for(version: PyVersion, op: Opcode, arg: u32, jump: bool) -> Option<i32> {
    version.table().info(op)?;
    if op.only_in_adaptive_code() {
        return None;
    }
    // Arguments are at most 32 bits; clamp so the arithmetic below cannot overflow.
    let n = i32::try_from(arg).unwrap_or(i32::MAX / 2);
    match version {
        PyVersion::V3_11 => effect_3_11(op, n, jump),
        PyVersion::V3_12 => effect_3_12(op, n),
        PyVersion::V3_13 => effect_3_13(op, n),
    }
}

/// Items popped by `MAKE_FUNCTION` (3.11, 3.12): one per flag in the argument's low nibble
/// (defaults, keyword defaults, annotations, closure).
fn make_function_pops(n: i32) -> i32 {
    (n & 1) + ((n >> 1) & 1) + ((n >> 2) & 1) + ((n >> 3) & 1)
}

fn build_slice(n: i32) -> i32 {
    if n == 3 {
        -2
    } else {
        -1
    }
}

fn effect_3_11(op: Opcode, n: i32, jump: bool) -> Option<i32> {
    use Opcode::*;
    let effect = match op {
        CACHE
        | NOP
        | EXTENDED_ARG
        | RESUME
        | SWAP
        | UNARY_POSITIVE
        | UNARY_NEGATIVE
        | UNARY_NOT
        | UNARY_INVERT
        | GET_ITER
        | SETUP_ANNOTATIONS
        | ASYNC_GEN_WRAP
        | YIELD_VALUE
        | DELETE_NAME
        | DELETE_GLOBAL
        | LOAD_ATTR
        | CHECK_EXC_MATCH
        | CHECK_EG_MATCH
        | DELETE_FAST
        | RETURN_GENERATOR
        | KW_NAMES
        | MAKE_CELL
        | COPY_FREE_VARS
        | DELETE_DEREF
        | GET_AWAITABLE
        | GET_AITER
        | GET_YIELD_FROM_ITER
        | LIST_TO_TUPLE
        | JUMP_FORWARD
        | JUMP_BACKWARD
        | JUMP_BACKWARD_NO_INTERRUPT => 0,
        POP_TOP | SET_ADD | LIST_APPEND | BINARY_SUBSCR | PRINT_EXPR | RETURN_VALUE
        | IMPORT_STAR | POP_EXCEPT | STORE_NAME | STORE_GLOBAL | DELETE_ATTR | COMPARE_OP
        | IS_OP | CONTAINS_OP | IMPORT_NAME | PREP_RERAISE_STAR | RERAISE | STORE_FAST | CALL
        | STORE_DEREF | LIST_EXTEND | SET_UPDATE | DICT_MERGE | DICT_UPDATE | BINARY_OP => -1,
        PUSH_NULL | LOAD_BUILD_CLASS | LOAD_CONST | LOAD_NAME | IMPORT_FROM | PUSH_EXC_INFO
        | WITH_EXCEPT_START | LOAD_FAST | LOAD_CLOSURE | LOAD_DEREF | LOAD_CLASSDEREF
        | BEFORE_ASYNC_WITH | BEFORE_WITH | GET_ANEXT | LOAD_METHOD | LOAD_ASSERTION_ERROR
        | GET_LEN | MATCH_MAPPING | MATCH_SEQUENCE | MATCH_KEYS | COPY => 1,
        MAP_ADD | DELETE_SUBSCR | STORE_ATTR | END_ASYNC_FOR | MATCH_CLASS => -2,
        STORE_SUBSCR => -3,
        UNPACK_SEQUENCE => n - 1,
        UNPACK_EX => (n & 0xff) + (n >> 8),
        FOR_ITER => {
            if jump {
                -1
            } else {
                1
            }
        }
        SEND => {
            if jump {
                -1
            } else {
                0
            }
        }
        BUILD_TUPLE | BUILD_LIST | BUILD_SET | BUILD_STRING => 1 - n,
        BUILD_MAP => 1 - 2 * n,
        BUILD_CONST_KEY_MAP => -n,
        JUMP_IF_TRUE_OR_POP | JUMP_IF_FALSE_OR_POP => {
            if jump {
                0
            } else {
                -1
            }
        }
        POP_JUMP_FORWARD_IF_FALSE
        | POP_JUMP_FORWARD_IF_TRUE
        | POP_JUMP_FORWARD_IF_NONE
        | POP_JUMP_FORWARD_IF_NOT_NONE
        | POP_JUMP_BACKWARD_IF_FALSE
        | POP_JUMP_BACKWARD_IF_TRUE
        | POP_JUMP_BACKWARD_IF_NONE
        | POP_JUMP_BACKWARD_IF_NOT_NONE => -1,
        LOAD_GLOBAL => (n & 1) + 1,
        RAISE_VARARGS | PRECALL => -n,
        CALL_FUNCTION_EX => -2 - (n & 1),
        MAKE_FUNCTION => -((n & 1) + ((n >> 1) & 1) + ((n >> 2) & 1) + ((n >> 3) & 1)),
        BUILD_SLICE => {
            if n == 3 {
                -2
            } else {
                -1
            }
        }
        FORMAT_VALUE => {
            // FVS_HAVE_SPEC: a format spec is popped as well.
            if n & 0x04 == 0x04 {
                -1
            } else {
                0
            }
        }
        _ => return None,
    };
    Some(effect)
}

fn effect_3_12(op: Opcode, n: i32) -> Option<i32> {
    use Opcode::*;
    let effect = match op {
        CACHE
        | NOP
        | RESERVED
        | EXTENDED_ARG
        | RESUME
        | SWAP
        | UNARY_NEGATIVE
        | UNARY_NOT
        | UNARY_INVERT
        | CHECK_EXC_MATCH
        | CHECK_EG_MATCH
        | GET_AITER
        | GET_ITER
        | GET_YIELD_FROM_ITER
        | GET_AWAITABLE
        | RETURN_GENERATOR
        | SETUP_ANNOTATIONS
        | DELETE_NAME
        | DELETE_GLOBAL
        | DELETE_FAST
        | DELETE_DEREF
        | MAKE_CELL
        | COPY_FREE_VARS
        | RETURN_CONST
        | SEND
        | YIELD_VALUE
        | KW_NAMES
        | CALL_INTRINSIC_1
        | LOAD_FROM_DICT_OR_GLOBALS
        | LOAD_FROM_DICT_OR_DEREF
        | JUMP_FORWARD
        | JUMP_BACKWARD
        | JUMP_BACKWARD_NO_INTERRUPT => 0,
        POP_TOP | INTERPRETER_EXIT | END_SEND | BINARY_SUBSCR | CLEANUP_THROW | RETURN_VALUE
        | POP_EXCEPT | STORE_NAME | STORE_GLOBAL | STORE_FAST | STORE_DEREF | DELETE_ATTR
        | COMPARE_OP | IS_OP | CONTAINS_OP | IMPORT_NAME | RERAISE | BINARY_OP
        | POP_JUMP_IF_FALSE | POP_JUMP_IF_TRUE | POP_JUMP_IF_NONE | POP_JUMP_IF_NOT_NONE
        | LIST_APPEND | SET_ADD | LIST_EXTEND | SET_UPDATE | DICT_MERGE | DICT_UPDATE
        | CALL_INTRINSIC_2 => -1,
        PUSH_NULL | GET_LEN | MATCH_MAPPING | MATCH_SEQUENCE | MATCH_KEYS | PUSH_EXC_INFO
        | WITH_EXCEPT_START | GET_ANEXT | BEFORE_ASYNC_WITH | BEFORE_WITH | LOAD_BUILD_CLASS
        | LOAD_ASSERTION_ERROR | LOAD_LOCALS | LOAD_CONST | LOAD_NAME | IMPORT_FROM | COPY
        | LOAD_FAST | LOAD_FAST_CHECK | LOAD_FAST_AND_CLEAR | LOAD_CLOSURE | LOAD_DEREF => 1,
        // The exhausted branch lands on END_FOR, which pops the iterator and the pushed slot.
        FOR_ITER => 1,
        END_FOR | BINARY_SLICE | END_ASYNC_FOR | DELETE_SUBSCR | STORE_ATTR | MAP_ADD
        | MATCH_CLASS => -2,
        STORE_SUBSCR => -3,
        STORE_SLICE => -4,
        UNPACK_SEQUENCE => n - 1,
        UNPACK_EX => (n & 0xff) + (n >> 8),
        BUILD_TUPLE | BUILD_LIST | BUILD_SET | BUILD_STRING => 1 - n,
        BUILD_MAP => 1 - 2 * n,
        BUILD_CONST_KEY_MAP | RAISE_VARARGS => -n,
        BUILD_SLICE => build_slice(n),
        // Low bit: also push NULL/self (the method-call form).
        LOAD_ATTR => n & 1,
        LOAD_GLOBAL => 1 + (n & 1),
        LOAD_SUPER_ATTR => -2 + (n & 1),
        CALL => -1 - n,
        CALL_FUNCTION_EX => -2 - (n & 1),
        MAKE_FUNCTION => -make_function_pops(n),
        // FVS_HAVE_SPEC: a format spec is popped as well.
        FORMAT_VALUE => -((n >> 2) & 1),
        _ => return None,
    };
    Some(effect)
}

fn effect_3_13(op: Opcode, n: i32) -> Option<i32> {
    use Opcode::*;
    let effect = match op {
        CACHE
        | NOP
        | RESERVED
        | EXTENDED_ARG
        | RESUME
        | SWAP
        | UNARY_NEGATIVE
        | UNARY_NOT
        | UNARY_INVERT
        | TO_BOOL
        | CHECK_EXC_MATCH
        | CHECK_EG_MATCH
        | FORMAT_SIMPLE
        | CONVERT_VALUE
        | MAKE_FUNCTION
        | GET_AITER
        | GET_ITER
        | GET_YIELD_FROM_ITER
        | GET_AWAITABLE
        | SETUP_ANNOTATIONS
        | DELETE_NAME
        | DELETE_GLOBAL
        | DELETE_FAST
        | DELETE_DEREF
        | MAKE_CELL
        | COPY_FREE_VARS
        | RETURN_CONST
        | SEND
        | YIELD_VALUE
        | STORE_FAST_LOAD_FAST
        | CALL_INTRINSIC_1
        | LOAD_FROM_DICT_OR_GLOBALS
        | LOAD_FROM_DICT_OR_DEREF
        | JUMP_FORWARD
        | JUMP_BACKWARD
        | JUMP_BACKWARD_NO_INTERRUPT => 0,
        POP_TOP
        | INTERPRETER_EXIT
        | END_FOR
        | END_SEND
        | EXIT_INIT_CHECK
        | FORMAT_WITH_SPEC
        | BINARY_SUBSCR
        | CLEANUP_THROW
        | RETURN_VALUE
        | POP_EXCEPT
        | STORE_NAME
        | STORE_GLOBAL
        | STORE_FAST
        | STORE_DEREF
        | DELETE_ATTR
        | COMPARE_OP
        | IS_OP
        | CONTAINS_OP
        | IMPORT_NAME
        | RERAISE
        | BINARY_OP
        | POP_JUMP_IF_FALSE
        | POP_JUMP_IF_TRUE
        | POP_JUMP_IF_NONE
        | POP_JUMP_IF_NOT_NONE
        | LIST_APPEND
        | SET_ADD
        | LIST_EXTEND
        | SET_UPDATE
        | DICT_MERGE
        | DICT_UPDATE
        | CALL_INTRINSIC_2
        | SET_FUNCTION_ATTRIBUTE => -1,
        // RETURN_GENERATOR: the generator's frame resumes with the sent value pushed.
        PUSH_NULL | GET_LEN | MATCH_MAPPING | MATCH_SEQUENCE | MATCH_KEYS | PUSH_EXC_INFO
        | WITH_EXCEPT_START | GET_ANEXT | BEFORE_ASYNC_WITH | BEFORE_WITH | LOAD_BUILD_CLASS
        | LOAD_ASSERTION_ERROR | LOAD_LOCALS | LOAD_CONST | LOAD_NAME | IMPORT_FROM | COPY
        | LOAD_FAST | LOAD_FAST_CHECK | LOAD_FAST_AND_CLEAR | LOAD_DEREF | RETURN_GENERATOR
        | FOR_ITER => 1,
        LOAD_FAST_LOAD_FAST => 2,
        BINARY_SLICE
        | END_ASYNC_FOR
        | DELETE_SUBSCR
        | STORE_ATTR
        | MAP_ADD
        | MATCH_CLASS
        | STORE_FAST_STORE_FAST => -2,
        STORE_SUBSCR => -3,
        STORE_SLICE => -4,
        UNPACK_SEQUENCE => n - 1,
        UNPACK_EX => (n & 0xff) + (n >> 8),
        BUILD_TUPLE | BUILD_LIST | BUILD_SET | BUILD_STRING => 1 - n,
        BUILD_MAP => 1 - 2 * n,
        BUILD_CONST_KEY_MAP | RAISE_VARARGS => -n,
        BUILD_SLICE => build_slice(n),
        LOAD_ATTR => n & 1,
        LOAD_GLOBAL => 1 + (n & 1),
        LOAD_SUPER_ATTR => -2 + (n & 1),
        CALL => -1 - n,
        // CALL_KW also pops the tuple of keyword names.
        CALL_KW => -2 - n,
        CALL_FUNCTION_EX => -2 - (n & 1),
        _ => return None,
    };
    Some(effect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::prelude::*;
    use pyo3::types::PyDict;

    /// Every opcode of the linked interpreter's version and a spread of arguments, both
    /// branches, against its `dis.stack_effect` (other versions: `opcodes_tests.rs`, which
    /// asks those interpreters in a subprocess).
    #[test]
    fn matches_dis_stack_effect() {
        Python::attach(|py| {
            let dis = py.import("dis").unwrap();
            let f = dis.getattr("stack_effect").unwrap();
            let args: Vec<u32> = (0..20).chain([63, 255, 256, 257, 0x1ff, 0x10203]).collect();
            let table = PyVersion::CURRENT.table();
            for row in table.rows().filter(|r| !r.op.only_in_adaptive_code()) {
                let (op, byte) = (row.op, row.byte);
                let tried: Vec<Option<u32>> = if row.has_arg {
                    args.iter().copied().map(Some).collect()
                } else {
                    vec![None]
                };
                for arg in tried {
                    for jump in [false, true] {
                        let kwargs = PyDict::new(py);
                        kwargs.set_item("jump", jump).unwrap();
                        let expected: Option<i32> = f
                            .call((byte, arg), Some(&kwargs))
                            .ok()
                            .map(|v| v.extract().unwrap());
                        let got = stack_effect(op, arg.unwrap_or(0), jump);
                        assert_eq!(got, expected, "{op} arg={arg:?} jump={jump}");
                    }
                }
            }
        });
    }

    #[test]
    fn absent_and_adaptive_opcodes_have_no_effect() {
        assert_eq!(
            stack_effect_for(PyVersion::V3_11, Opcode::CALL_KW, 0, false),
            None
        );
        assert_eq!(
            stack_effect_for(PyVersion::V3_13, Opcode::PRECALL, 0, false),
            None
        );
        assert_eq!(
            stack_effect_for(PyVersion::V3_12, Opcode::INSTRUMENTED_CALL, 0, false),
            None
        );
        assert_eq!(
            stack_effect_for(PyVersion::V3_13, Opcode::CALL_KW, 2, false),
            Some(-4)
        );
    }
}
