//! The stdlib round trip for every supported version whose interpreter is installed, whatever
//! interpreter this crate links: each interpreter compiles the modules in a subprocess and
//! dumps every code object (recursively through `co_consts`) as text: `co_code`,
//! `co_exceptiontable`, `co_linetable`, `co_firstlineno`, `co_stacksize`, `co_positions()` and
//! `dis`'s jump targets. The dump is decoded with that version's table, re-assembled and
//! compared, as `roundtrip_tests.rs` does in-process for the linked interpreter.

use std::process::Command;

use super::decode::{decode_for, CodeBytes};
use super::encode::reencode;
use super::line_table::Location;
use super::opcodes::PyVersion;
use super::roundtrip_tests::{synthetic_source, MODULES, TORCH_MODULES};
use super::test_interpreters::interpreter;

/// Writes one line per code object, tab-separated: qualname, first line, stack size, the
/// three byte strings in hex, positions per code unit (`line,end_line,col,end_col`, empty for
/// None, `;`-separated) and `offset:target` for each relative jump. Modules come as
/// arguments (torch's only where torch imports); the synthetic source on stdin.
const DUMP: &str = r#"
import dis, importlib, sys, types
hasjrel = set(dis.hasjrel)
def opt(v):
    return "" if v is None else str(v)
def dump(code, out):
    pos = ";".join(",".join(opt(v) for v in p) for p in code.co_positions())
    jumps = ";".join(f"{i.offset}:{i.argval}" for i in dis.get_instructions(code)
                     if i.opcode in hasjrel)
    out.append("\t".join([code.co_qualname, str(code.co_firstlineno), str(code.co_stacksize),
        code.co_code.hex(), code.co_exceptiontable.hex(), code.co_linetable.hex(), pos, jumps]))
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            dump(c, out)
def source_of(name):
    module = importlib.import_module(name)
    with open(module.__file__, encoding="utf-8") as f:
        return f.read(), module.__file__
stdlib, torch_mods = sys.argv[1].split(","), sys.argv[2].split(",")
try:
    import torch
except ImportError:
    torch_mods = []
    print("no torch", file=sys.stderr)
out = []
for name in stdlib + torch_mods:
    dump(compile(*source_of(name), "exec"), out)
dump(compile(sys.stdin.read(), "<synthetic>", "exec"), out)
print("\n".join(out))
"#;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn opt<T: std::str::FromStr>(s: &str) -> Option<T>
where
    T::Err: std::fmt::Debug,
{
    (!s.is_empty()).then(|| s.parse().unwrap())
}

/// Checks one dumped code object; returns its stack-size mismatch, if any.
fn check_record(version: PyVersion, line: &str) -> Option<String> {
    let f: Vec<&str> = line.split('\t').collect();
    let [name, first, stacksize, code, exc, lines, positions, jumps] = f[..] else {
        panic!("bad dump line {line:?}");
    };
    let what = format!("{version} {name} (line {first})");
    let (co_code, exception_table, line_table) = (hex(code), hex(exc), hex(lines));
    let decoded = decode_for(
        version,
        &CodeBytes {
            co_code: &co_code,
            exception_table: &exception_table,
            line_table: &line_table,
            first_line: first.parse().unwrap(),
        },
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let out = reencode(&decoded).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(out.co_code, co_code, "co_code of {what}");
    assert_eq!(out.exception_table, exception_table, "exceptions of {what}");
    assert_eq!(out.line_table, line_table, "co_linetable of {what}");
    let units: Vec<Location> = positions
        .split(';')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let v: Vec<&str> = p.split(',').collect();
            Location {
                line: opt(v[0]),
                end_line: opt(v[1]),
                col: opt(v[2]),
                end_col: opt(v[3]),
            }
        })
        .collect();
    for instr in &decoded.instructions {
        assert_eq!(instr.location, units[(instr.offset / 2) as usize], "{what}");
    }
    let mut dis_jumps = 0;
    for jump in jumps.split(';').filter(|j| !j.is_empty()) {
        let (offset, target) = jump.split_once(':').unwrap();
        let index = decoded.index_at(offset.parse().unwrap()).unwrap();
        let instr = &decoded.instructions[index];
        let t = instr
            .target
            .unwrap_or_else(|| panic!("{what}: no target @{offset}"));
        assert_eq!(
            decoded.instructions[t as usize].start.to_string(),
            target,
            "{what} @{offset}"
        );
        dis_jumps += 1;
    }
    let ours = decoded.instructions.iter().filter(|i| i.target.is_some());
    assert_eq!(ours.count(), dis_jumps, "{what}: jumps dis does not list");
    let stacksize: u32 = stacksize.parse().unwrap();
    (out.stack_size != stacksize).then(|| format!("{what}: {} vs {stacksize}", out.stack_size))
}

#[test]
fn installed_interpreters_roundtrip_byte_for_byte() {
    for version in PyVersion::ALL {
        let Some(python) = interpreter(version) else {
            eprintln!("no Python {version} interpreter found: its round trip is skipped");
            continue;
        };
        let mut child = Command::new(&python)
            .args(["-c", DUMP, &MODULES.join(","), &TORCH_MODULES.join(",")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(synthetic_source().as_bytes()).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", python.display());
        let dump = String::from_utf8(out.stdout).unwrap();
        let mismatches: Vec<String> = dump
            .lines()
            .filter_map(|l| check_record(version, l))
            .collect();
        let count = dump.lines().count();
        let torch = if stderr.contains("no torch") {
            "without torch (not importable there)"
        } else {
            "with torch"
        };
        eprintln!(
            "{version} ({}): {count} code objects round-tripped {torch}",
            python.display()
        );
        assert!(count > 2000, "{version}: only {count} code objects");
        assert!(mismatches.is_empty(), "{version}: {mismatches:?}");
    }
}
