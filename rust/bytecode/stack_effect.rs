//! Net stack effect of one 3.11 instruction, as `dis.stack_effect` reports it.

use super::opcodes::Opcode;

/// Net change in stack depth from executing `op` with `arg`. `jump` selects the effect on
/// the branch that jumps (for jumping instructions; others ignore it). Returns None where
/// `dis.stack_effect` would raise (no such case for the 3.11 opcodes; kept for other tables).
pub fn stack_effect(op: Opcode, arg: u32, jump: bool) -> Option<i32> {
    use Opcode::*;
    // Arguments are at most 32 bits; clamp so the arithmetic below cannot overflow.
    let n = i32::try_from(arg).unwrap_or(i32::MAX / 2);
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
    };
    Some(effect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::prelude::*;
    use pyo3::types::PyDict;

    /// Every opcode and a spread of arguments, both branches, against `dis.stack_effect`.
    #[test]
    fn matches_dis_stack_effect() {
        Python::attach(|py| {
            let dis = py.import("dis").unwrap();
            let f = dis.getattr("stack_effect").unwrap();
            let args: Vec<u32> = (0..20).chain([63, 255, 256, 257, 0x1ff, 0x10203]).collect();
            for op in Opcode::ALL {
                let byte = op.to_u8();
                let tried: Vec<Option<u32>> = if op.has_arg() {
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
}
