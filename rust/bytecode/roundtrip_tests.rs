//! Whole-module checks against real code objects of the linked interpreter (whichever
//! version this crate is built against): decode, re-assemble, compare bytes, jump targets,
//! positions and stack sizes with what CPython itself produced. Other installed versions:
//! `roundtrip_dumped_tests.rs`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::code_object::decode_code_object;
use super::decode::Decoded;
use super::encode::reencode;
use super::line_table::Location;

pub(super) const MODULES: &[&str] = &[
    "json.decoder",
    "json.encoder",
    "os",
    "collections",
    "inspect",
    "dis",
    "typing",
    "argparse",
    "asyncio.base_events",
    "asyncio.tasks",
    "contextlib",
    "dataclasses",
    "enum",
    "re._parser",
    "re._compiler",
    "pathlib",
    "functools",
    "traceback",
    "email._header_value_parser",
    "unittest.case",
    "ast",
    "pydoc",
    "tarfile",
];

#[derive(Default)]
struct Stats {
    code_objects: usize,
    instructions: usize,
    jumps: usize,
    prefixed: usize,
    prefixed_jumps: usize,
    stack_equal: usize,
    stack_mismatch: Vec<String>,
}

/// Module code compiled from source, so module-level code is covered as well.
fn module_code<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyAny> {
    let module = py.import(name).unwrap();
    let file: String = module.getattr("__file__").unwrap().extract().unwrap();
    let source = std::fs::read_to_string(&file).unwrap();
    let builtins = py.import("builtins").unwrap();
    builtins
        .getattr("compile")
        .unwrap()
        .call1((source, file, "exec"))
        .unwrap()
}

fn bytes_of(code: &Bound<'_, PyAny>, attr: &str) -> Vec<u8> {
    code.getattr(attr)
        .unwrap()
        .cast_into::<PyBytes>()
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// One `co_positions()` item.
type Position = (Option<i32>, Option<i32>, Option<u32>, Option<u32>);

fn check_positions(code: &Bound<'_, PyAny>, decoded: &Decoded, what: &str) {
    let positions: Vec<Position> = code
        .call_method0("co_positions")
        .unwrap()
        .try_iter()
        .unwrap()
        .map(|p| p.unwrap().extract().unwrap())
        .collect();
    for instr in &decoded.instructions {
        let (line, end_line, col, end_col) = positions[(instr.offset / 2) as usize];
        let expected = Location {
            line,
            end_line,
            col,
            end_col,
        };
        assert_eq!(instr.location, expected, "{what} @{}", instr.offset);
        assert_eq!(instr.line, line.map(|l| l as u32), "{what}");
    }
}

fn check_jumps(py: Python<'_>, code: &Bound<'_, PyAny>, decoded: &Decoded, what: &str) -> usize {
    let dis = py.import("dis").unwrap();
    let instrs = dis.call_method1("get_instructions", (code,)).unwrap();
    // From 3.12 `hasjrel` also lists pseudo-instructions (numbered from 256).
    let hasjrel: Vec<u32> = dis.getattr("hasjrel").unwrap().extract().unwrap();
    let mut jumps = 0;
    for item in instrs.try_iter().unwrap() {
        let item = item.unwrap();
        let opcode: u32 = item.getattr("opcode").unwrap().extract().unwrap();
        if !hasjrel.contains(&opcode) {
            continue;
        }
        let offset: u32 = item.getattr("offset").unwrap().extract().unwrap();
        let argval: u32 = item.getattr("argval").unwrap().extract().unwrap();
        let index = decoded.index_at(offset).unwrap();
        let instr = &decoded.instructions[index];
        assert_eq!(instr.offset, offset, "{what}");
        let target = instr.target.expect("jump without target") as usize;
        assert_eq!(
            decoded.instructions[target].start, argval,
            "{what} @{offset}"
        );
        jumps += 1;
    }
    for instr in &decoded.instructions {
        assert_eq!(instr.op.is_jump(), instr.target.is_some(), "{what}");
    }
    jumps
}

fn check_code(py: Python<'_>, code: &Bound<'_, PyAny>, stats: &mut Stats) {
    let name: String = code.getattr("co_qualname").unwrap().extract().unwrap();
    let line: u32 = code.getattr("co_firstlineno").unwrap().extract().unwrap();
    let what = format!("{name} (line {line})");
    let decoded = decode_code_object(code).unwrap();
    let out = reencode(&decoded).unwrap();
    assert_eq!(out.co_code, bytes_of(code, "co_code"), "co_code of {what}");
    assert_eq!(
        out.exception_table,
        bytes_of(code, "co_exceptiontable"),
        "co_exceptiontable of {what}"
    );
    assert_eq!(
        out.line_table,
        bytes_of(code, "co_linetable"),
        "co_linetable of {what}"
    );
    check_positions(code, &decoded, &what);
    stats.jumps += check_jumps(py, code, &decoded, &what);
    let stacksize: u32 = code.getattr("co_stacksize").unwrap().extract().unwrap();
    if out.stack_size == stacksize {
        stats.stack_equal += 1;
    } else {
        stats
            .stack_mismatch
            .push(format!("{what}: {} vs {stacksize}", out.stack_size));
    }
    stats.code_objects += 1;
    stats.instructions += decoded.instructions.len();
    for instr in decoded.instructions.iter().filter(|i| i.prefixes() > 0) {
        stats.prefixed += 1;
        stats.prefixed_jumps += usize::from(instr.op.is_jump());
    }

    let code_type = py.import("types").unwrap().getattr("CodeType").unwrap();
    let consts = code
        .getattr("co_consts")
        .unwrap()
        .cast_into::<PyTuple>()
        .unwrap();
    for c in consts.iter() {
        if c.is_instance(&code_type).unwrap() {
            check_code(py, &c, stats);
        }
    }
}

/// Some of torch's own modules, round-tripped where torch is importable.
pub(super) const TORCH_MODULES: &[&str] = &[
    "torch._tensor",
    "torch.functional",
    "torch.nn.modules.module",
    "torch.nn.functional",
    "torch.fx.graph",
    "torch.optim.adam",
];

#[test]
fn stdlib_modules_roundtrip_byte_for_byte() {
    Python::attach(|py| {
        let mut stats = Stats::default();
        for name in MODULES {
            check_code(py, &module_code(py, name), &mut stats);
        }
        let stdlib_count = stats.code_objects;
        if py.import("torch").is_ok() {
            for name in TORCH_MODULES {
                check_code(py, &module_code(py, name), &mut stats);
            }
        } else {
            eprintln!("torch is not importable here: its modules are skipped");
        }
        eprintln!(
            "Python {}: {} code objects ({} stdlib), {} instructions, {} jumps; stack size \
             equal for {}; differs: {:?}",
            super::opcodes::PyVersion::CURRENT,
            stats.code_objects,
            stdlib_count,
            stats.instructions,
            stats.jumps,
            stats.stack_equal,
            stats.stack_mismatch
        );
        assert!(stats.code_objects > 2000);
        assert!(stats.stack_mismatch.is_empty());
    });
}

/// Source exercising what the stdlib sample may not: EXTENDED_ARG (many constants, long
/// jumps), `match`, `except*`, async constructs, generators, wide columns, multi-line
/// expressions and backwards line deltas.
const SYNTHETIC: &str = r#"
import asyncio

def many_consts(x):
    values = [CONSTS]
    if x:
        total = 0
        for v in values:
            total += v
[BODY]
        return total
    return None

def matcher(cmd):
    match cmd:
        case ["go", direction] if direction in ("n", "s"):
            return direction
        case {"x": x, "y": y, **rest}:
            return (x, y, rest)
        case Point(x=0, y=yy) | Point(x=yy, y=0):
            return yy
        case [1, 2, *others]:
            return others
        case str() | bytes():
            return "text"
        case _:
            return None

def groups():
    try:
        raise ExceptionGroup("g", [ValueError(1), TypeError(2)])
    except* ValueError as e:
        a = e
    except* TypeError:
        pass
    finally:
        b = 1

async def agen(xs):
    async with xs as ctx:
        async for item in ctx:
            yield item
    await asyncio.sleep(0)

def gen(n):
    yield from range(n)
    x = yield n
    return [i * j for i in range(n) for j in range(i) if (i + j) % 3] + [lambda q: q + x]

def wide():
    return ("..........................................................................................................................................", some_name_here_to_push_the_column_out)

def multi(a,
          b):
    return (a +
            b
            ) * f(
        a,
        b,
    )

def nested_try(path):
    with open(path) as f, open(path) as g:
        try:
            return f.read() + g.read()
        except (OSError, ValueError) as err:
            raise RuntimeError("x") from err
        else:
            pass
    while True:
        try:
            continue
        except:
            break
    return 1 if path else 2
"#;

pub(super) fn synthetic_source() -> String {
    let consts: Vec<String> = (0..400).map(|i| format!("{i}.5")).collect();
    let body: String = (0..150)
        .map(|i| format!("            total = total + v * {i} - {i}.25\n"))
        .collect();
    SYNTHETIC
        .replace("[CONSTS]", &consts.join(", "))
        .replace("[BODY]", &body)
}

#[test]
fn synthetic_features_roundtrip() {
    Python::attach(|py| {
        let builtins = py.import("builtins").unwrap();
        let code = builtins
            .getattr("compile")
            .unwrap()
            .call1((synthetic_source(), "<synthetic>", "exec"))
            .unwrap();
        let mut stats = Stats::default();
        check_code(py, &code, &mut stats);
        assert!(
            stats.stack_mismatch.is_empty(),
            "{:?}",
            stats.stack_mismatch
        );
        assert!(stats.prefixed > 0 && stats.prefixed_jumps > 0);
        assert!(stats.code_objects >= 9);
    });
}
