//! Maximum stack depth (`co_stacksize`) by abstract interpretation of stack effects over the
//! control-flow graph, including edges into exception handlers.

use std::fmt;

use super::encode::AsmInstr;
use super::opcodes::{Opcode, PyVersion};
use super::stack_effect::stack_effect_for;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StackDepthError {
    /// The stack would go below zero at this instruction.
    Underflow { index: usize },
    /// Two paths reach this instruction with different depths.
    Inconsistent { index: usize, a: i64, b: i64 },
    /// A jump or handler names an instruction index past the end.
    BadTarget { index: usize },
    /// A jumping instruction has no target.
    MissingTarget { index: usize },
    /// An opcode without a defined stack effect.
    UnknownEffect { index: usize, op: Opcode },
}

impl fmt::Display for StackDepthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Underflow { index } => write!(f, "stack underflow at instruction {index}"),
            Self::Inconsistent { index, a, b } => {
                write!(
                    f,
                    "instruction {index} reached with stack depths {a} and {b}"
                )
            }
            Self::BadTarget { index } => write!(f, "instruction {index} has an invalid target"),
            Self::MissingTarget { index } => write!(f, "jump at instruction {index} has no target"),
            Self::UnknownEffect { index, op } => {
                write!(f, "no stack effect for {op} at instruction {index}")
            }
        }
    }
}

impl std::error::Error for StackDepthError {}

struct Walk {
    depth: Vec<Option<i64>>,
    pending: Vec<usize>,
    max: i64,
}

impl Walk {
    /// Records that control reaches `index` with `depth`; queues it if new.
    fn reach(&mut self, index: usize, depth: i64) -> Result<(), StackDepthError> {
        let slot = self
            .depth
            .get_mut(index)
            .ok_or(StackDepthError::BadTarget { index })?;
        match *slot {
            Some(seen) if seen != depth => Err(StackDepthError::Inconsistent {
                index,
                a: seen,
                b: depth,
            }),
            Some(_) => Ok(()),
            None => {
                *slot = Some(depth);
                self.max = self.max.max(depth);
                self.pending.push(index);
                Ok(())
            }
        }
    }
}

fn effect(
    version: PyVersion,
    instr: &AsmInstr,
    index: usize,
    jump: bool,
) -> Result<i64, StackDepthError> {
    stack_effect_for(version, instr.op, instr.arg, jump)
        .map(i64::from)
        .ok_or(StackDepthError::UnknownEffect {
            index,
            op: instr.op,
        })
}

/// The largest stack depth any reachable instruction can produce, for `PyVersion::CURRENT`.
pub fn max_stack_depth(instrs: &[AsmInstr]) -> Result<u32, StackDepthError> {
    max_stack_depth_for(PyVersion::CURRENT, instrs)
}

/// What `RETURN_GENERATOR` leaves for the generator's own frame beyond its stack effect:
/// the frame resumes with the sent value pushed (counted in the effect itself from 3.13).
fn generator_resume_push(version: PyVersion) -> i64 {
    match version {
        PyVersion::V3_11 | PyVersion::V3_12 => 1,
        PyVersion::V3_13 => 0,
    }
}

/// The smallest `co_stacksize` the version's compiler writes. 3.13's never writes 0: even
/// `def f(): pass`, a bare `raise` or an endless `while True: pass` (where no instruction
/// pushes anything) get 1, and every stdlib code object sampled has at least 1.
fn min_stack_size(version: PyVersion) -> i64 {
    match version {
        PyVersion::V3_11 | PyVersion::V3_12 => 0,
        PyVersion::V3_13 => 1,
    }
}

/// The largest stack depth any reachable instruction can produce in `version` (at least the
/// version's minimum, see `min_stack_size`). Unreachable code is ignored, as CPython's
/// compiler does.
pub fn max_stack_depth_for(
    version: PyVersion,
    instrs: &[AsmInstr],
) -> Result<u32, StackDepthError> {
    let table = version.table();
    let mut walk = Walk {
        depth: vec![None; instrs.len()],
        pending: Vec::new(),
        max: min_stack_size(version),
    };
    if !instrs.is_empty() {
        walk.reach(0, 0)?;
    }
    while let Some(index) = walk.pending.pop() {
        let Some(depth) = walk.depth[index] else {
            continue;
        };
        let instr = &instrs[index];
        if let Some(handler) = &instr.handler {
            let entry = i64::from(handler.depth) + 1 + i64::from(handler.lasti);
            walk.reach(handler.target, entry)?;
        }
        let mut after = depth + effect(version, instr, index, false)?;
        if instr.op == Opcode::RETURN_GENERATOR {
            after += generator_resume_push(version);
        }
        if after < 0 {
            return Err(StackDepthError::Underflow { index });
        }
        walk.max = walk.max.max(after);
        if table.is_jump(instr.op) {
            let target = instr
                .target
                .ok_or(StackDepthError::MissingTarget { index })?;
            let jumped = depth + effect(version, instr, index, true)?;
            if jumped < 0 {
                return Err(StackDepthError::Underflow { index });
            }
            walk.reach(target, jumped)?;
        }
        let falls_through = !instr.op.is_unconditional_jump() && !instr.op.is_scope_exit();
        if falls_through && index + 1 < instrs.len() {
            walk.reach(index + 1, after)?;
        }
    }
    u32::try_from(walk.max).map_err(|_| StackDepthError::Underflow { index: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytecode::encode::AsmHandler;
    use crate::bytecode::line_table::Location;

    /// These tests use 3.11 programs.
    fn max_stack_depth(instrs: &[AsmInstr]) -> Result<u32, StackDepthError> {
        max_stack_depth_for(PyVersion::V3_11, instrs)
    }

    fn ins(op: Opcode, arg: u32, target: Option<usize>) -> AsmInstr {
        AsmInstr {
            op,
            arg,
            target,
            location: Location::NONE,
            handler: None,
        }
    }

    #[test]
    fn straight_line_and_branches() {
        use Opcode::*;
        let code = vec![
            ins(RESUME, 0, None),
            ins(LOAD_FAST, 0, None),
            ins(LOAD_FAST, 0, None),
            ins(BUILD_TUPLE, 2, None),
            ins(POP_JUMP_FORWARD_IF_FALSE, 0, Some(7)),
            ins(LOAD_CONST, 0, None),
            ins(RETURN_VALUE, 0, None),
            ins(LOAD_CONST, 0, None),
            ins(LOAD_CONST, 0, None),
            ins(LOAD_CONST, 0, None),
            ins(BUILD_TUPLE, 3, None),
            ins(RETURN_VALUE, 0, None),
        ];
        assert_eq!(max_stack_depth(&code).unwrap(), 3);
    }

    #[test]
    fn handlers_count() {
        use Opcode::*;
        let mut code = vec![
            ins(NOP, 0, None),
            ins(LOAD_CONST, 0, None),
            ins(RETURN_VALUE, 0, None),
            ins(PUSH_EXC_INFO, 0, None),
            ins(POP_EXCEPT, 0, None),
            ins(POP_TOP, 0, None),
            ins(POP_TOP, 0, None),
            ins(LOAD_CONST, 0, None),
            ins(RETURN_VALUE, 0, None),
        ];
        code[0].handler = Some(AsmHandler {
            target: 3,
            depth: 0,
            lasti: true,
        });
        assert_eq!(max_stack_depth(&code).unwrap(), 3);
    }

    #[test]
    fn errors_not_panics() {
        use Opcode::*;
        assert_eq!(
            max_stack_depth(&[ins(POP_TOP, 0, None)]),
            Err(StackDepthError::Underflow { index: 0 })
        );
        assert!(max_stack_depth(&[ins(JUMP_FORWARD, 0, Some(9))]).is_err());
        assert!(max_stack_depth(&[ins(JUMP_FORWARD, 0, None)]).is_err());
        let loop_grows = vec![ins(LOAD_CONST, 0, None), ins(JUMP_BACKWARD, 0, Some(0))];
        assert!(matches!(
            max_stack_depth(&loop_grows),
            Err(StackDepthError::Inconsistent { .. })
        ));
        assert_eq!(max_stack_depth(&[]).unwrap(), 0);
    }
}
