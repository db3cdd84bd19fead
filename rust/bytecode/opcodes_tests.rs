//! Checks of the opcode tables (and each version's stack effects) against CPython itself: the
//! linked interpreter in-process, and every other supported version whose interpreter is
//! installed by running it in a subprocess.

use super::*;
use crate::bytecode::stack_effect::stack_effect_for;
use crate::bytecode::test_interpreters::interpreter;
use pyo3::prelude::*;
use std::process::Command;

#[test]
fn every_variant_is_in_some_table() {
    for op in Opcode::ALL {
        let found = PyVersion::ALL.iter().any(|v| v.table().info(op).is_some());
        assert!(found, "{op} is in no version's table");
    }
}

#[test]
fn tables_map_both_ways() {
    for version in PyVersion::ALL {
        let table = version.table();
        assert_eq!(table.version(), version);
        let mut rows = 0;
        for op in Opcode::ALL {
            let Some(info) = table.info(op) else { continue };
            assert_eq!(info.op, op);
            assert_eq!(info.name, op.name());
            assert_eq!(table.decode_byte(info.byte), Some(op), "{version} {op}");
            rows += 1;
        }
        assert_eq!(rows, table.rows().count());
        assert!(table
            .rows()
            .zip(table.rows().skip(1))
            .all(|(a, b)| a.byte < b.byte));
    }
}

#[test]
fn current_version_answers_the_convenience_methods() {
    let table = PyVersion::CURRENT.table();
    for row in table.rows() {
        assert_eq!(Opcode::from_u8(row.byte), Some(row.op));
        assert_eq!(row.op.to_u8(), row.byte);
        assert_eq!(row.op.cache_entries(), row.cache_entries);
        assert_eq!(row.op.has_arg(), row.has_arg);
        assert_eq!(row.op.jump(), row.jump);
    }
}

#[test]
fn unknown_bytes_are_none() {
    let t311 = PyVersion::V3_11.table();
    assert_eq!(t311.decode_byte(3), None);
    assert_eq!(t311.decode_byte(255), None);
    assert_eq!(t311.decode_byte(141), None);
    // 141 is LOAD_SUPER_ATTR from 3.12; 3.13 moved it to 93.
    assert_eq!(
        PyVersion::V3_12.table().decode_byte(141),
        Some(Opcode::LOAD_SUPER_ATTR)
    );
    assert_eq!(PyVersion::V3_13.table().decode_byte(141), None);
    assert_eq!(
        PyVersion::V3_13.table().byte_of(Opcode::LOAD_SUPER_ATTR),
        Some(93)
    );
    assert_eq!(PyVersion::V3_13.table().byte_of(Opcode::PRECALL), None);
}

/// What CPython says about each assigned byte: name, caches, has-arg, jump kind and
/// `dis.stack_effect` for `EFFECT_ARGS` (or no argument), not jumping then jumping. The same
/// script runs in-process (linked version) and in other interpreters.
const PROBE: &str = r#"
import dis, opcode
caches = opcode._inline_cache_entries
hasarg = set(getattr(opcode, "hasarg", range(opcode.HAVE_ARGUMENT, 256)))
def effect(b, a, j):
    try:
        return str(dis.stack_effect(b, a, jump=j))
    except ValueError:
        return "x"
ARGS = [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 63, 255, 256, 257, 0x1FF, 0x10203]
lines = []
for b in range(256):
    name = opcode.opname[b]
    if name.startswith("<"):
        continue
    c = caches.get(name, 0) if isinstance(caches, dict) else caches[b]
    kind = "abs" if b in opcode.hasjabs else ("rel" if b in opcode.hasjrel else "-")
    effects = [effect(b, a, j) for a in (ARGS if b in hasarg else [None]) for j in (False, True)]
    lines.append(f"{b} {name} {c} {int(b in hasarg)} {kind} {','.join(effects)}")
"#;

const EFFECT_ARGS: [u32; 16] = [
    0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 63, 255, 256, 257, 0x1FF, 0x10203,
];

/// Compares one version's table and stack effects with a probe's output.
fn check_probe(version: PyVersion, output: &str) {
    let table = version.table();
    let mut seen = 0;
    for line in output.lines() {
        let cols: Vec<&str> = line.split(' ').collect();
        let [byte, name, caches, has_arg, kind, effects] = cols[..] else {
            panic!("bad probe line {line:?}");
        };
        let byte: u8 = byte.parse().unwrap();
        let info = table
            .decode_byte(byte)
            .and_then(|op| table.info(op))
            .unwrap_or_else(|| panic!("{version}: byte {byte} ({name}) missing"));
        seen += 1;
        assert_eq!(info.name, name, "{version}: byte {byte}");
        assert_eq!(info.cache_entries.to_string(), caches, "{version} {name}");
        assert_eq!(info.has_arg, has_arg == "1", "{version} {name}");
        let want_jump = match kind {
            "-" => JumpKind::None,
            "abs" => JumpKind::Absolute,
            _ if name.contains("JUMP_BACKWARD") => JumpKind::Backward,
            _ => JumpKind::Forward,
        };
        assert_eq!(info.jump, want_jump, "{version} {name}");
        if info.op.only_in_adaptive_code() {
            continue;
        }
        let args: Vec<Option<u32>> = if info.has_arg {
            EFFECT_ARGS.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        let mut expected = effects.split(',');
        for arg in args {
            for jump in [false, true] {
                let want = expected.next().unwrap();
                let got = stack_effect_for(version, info.op, arg.unwrap_or(0), jump)
                    .map_or("x".to_string(), |e| e.to_string());
                assert_eq!(got, want, "{version} {name} arg={arg:?} jump={jump}");
            }
        }
    }
    assert_eq!(seen, table.rows().count(), "{version}: rows CPython lacks");
}

/// The linked interpreter, in-process.
#[test]
fn matches_linked_interpreter() {
    let output: String = Python::attach(|py| {
        let globals = pyo3::types::PyDict::new(py);
        let code = std::ffi::CString::new(PROBE).unwrap();
        py.run(&code, Some(&globals), None).unwrap();
        let lines: Vec<String> = globals
            .get_item("lines")
            .unwrap()
            .unwrap()
            .extract()
            .unwrap();
        lines.join("\n")
    });
    check_probe(PyVersion::CURRENT, &output);
}

/// Every supported version whose interpreter is installed here (skipped, with a note, where
/// none is).
#[test]
fn matches_installed_interpreters() {
    for version in PyVersion::ALL {
        let Some(python) = interpreter(version) else {
            eprintln!("no Python {version} interpreter found: its table is not checked");
            continue;
        };
        let script = format!("{PROBE}\nprint('\\n'.join(lines))\n");
        let out = Command::new(&python)
            .args(["-I", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_probe(version, &String::from_utf8(out.stdout).unwrap());
    }
}
