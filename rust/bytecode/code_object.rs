//! Glue between Python code objects and the decoder/assembler.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use super::decode::{decode, CodeBytes, Decoded};
use super::encode::AssembledCode;

fn bytes_attr<'py>(code: &Bound<'py, PyAny>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
    Ok(code.getattr(name)?.cast_into::<PyBytes>()?)
}

/// Decodes a Python code object (`co_code`, `co_exceptiontable`, `co_linetable`,
/// `co_firstlineno`). Malformed bytecode raises ValueError.
pub fn decode_code_object(code: &Bound<'_, PyAny>) -> PyResult<Decoded> {
    let co_code = bytes_attr(code, "co_code")?;
    let exception_table = bytes_attr(code, "co_exceptiontable")?;
    let line_table = bytes_attr(code, "co_linetable")?;
    let first_line: u32 = code.getattr("co_firstlineno")?.extract()?;
    decode(&CodeBytes {
        co_code: co_code.as_bytes(),
        exception_table: exception_table.as_bytes(),
        line_table: line_table.as_bytes(),
        first_line,
    })
    .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Optional replacements for a code object's tables of names and constants.
#[derive(Default)]
pub struct CodeOverrides<'py> {
    pub consts: Option<Bound<'py, PyTuple>>,
    pub names: Option<Bound<'py, PyTuple>>,
    pub varnames: Option<Bound<'py, PyTuple>>,
}

/// A new code object: `template.replace(...)` with the assembled bytes, stack size and first
/// line, plus any overrides.
pub fn make_code_object<'py>(
    template: &Bound<'py, PyAny>,
    assembled: &AssembledCode,
    overrides: &CodeOverrides<'py>,
) -> PyResult<Py<PyAny>> {
    let py = template.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("co_code", PyBytes::new(py, &assembled.co_code))?;
    kwargs.set_item(
        "co_exceptiontable",
        PyBytes::new(py, &assembled.exception_table),
    )?;
    kwargs.set_item("co_linetable", PyBytes::new(py, &assembled.line_table))?;
    kwargs.set_item("co_stacksize", assembled.stack_size)?;
    kwargs.set_item("co_firstlineno", assembled.first_line)?;
    for (key, value) in [
        ("co_consts", &overrides.consts),
        ("co_names", &overrides.names),
        ("co_varnames", &overrides.varnames),
    ] {
        if let Some(value) = value {
            kwargs.set_item(key, value)?;
        }
    }
    Ok(template.call_method("replace", (), Some(&kwargs))?.unbind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytecode::encode::{assemble, reencode, to_asm};
    use crate::bytecode::opcodes::Opcode;
    use std::ffi::CString;

    fn function<'py>(py: Python<'py>, src: &str, name: &str) -> Bound<'py, PyAny> {
        let globals = PyDict::new(py);
        py.run(&CString::new(src).unwrap(), Some(&globals), None)
            .unwrap();
        globals.get_item(name).unwrap().unwrap()
    }

    #[test]
    fn reassembled_function_runs() {
        Python::attach(|py| {
            let f = function(py, "def f(x):\n    return x + 1\n", "f");
            let code = f.getattr("__code__").unwrap();
            let decoded = decode_code_object(&code).unwrap();
            let out = reencode(&decoded).unwrap();
            let new_code = make_code_object(&code, &out, &CodeOverrides::default()).unwrap();
            f.setattr("__code__", new_code).unwrap();
            let r: i64 = f.call1((41,)).unwrap().extract().unwrap();
            assert_eq!(r, 42);
        });
    }

    /// Edit the program: swap `x + 1` for `x - 1` via a new constant and BINARY_OP arg, and
    /// add a branch, then run it.
    #[test]
    fn edited_function_runs() {
        Python::attach(|py| {
            let f = function(
                py,
                "def f(x):\n    if x:\n        return x + 1\n    return -1\n",
                "f",
            );
            let code = f.getattr("__code__").unwrap();
            let decoded = decode_code_object(&code).unwrap();
            let mut asm = to_asm(&decoded).unwrap();
            // Insert 200 NOPs after RESUME so every jump has to be re-laid out.
            let nop = asm[0];
            let shift = |t: usize| if t >= 1 { t + 200 } else { t };
            for instr in asm.iter_mut() {
                instr.target = instr.target.map(shift);
            }
            asm.splice(
                1..1,
                (0..200).map(|_| crate::bytecode::encode::AsmInstr {
                    op: Opcode::NOP,
                    arg: 0,
                    ..nop
                }),
            );
            for instr in asm.iter_mut() {
                if instr.op == Opcode::BINARY_OP {
                    instr.arg = 10; // NB_SUBTRACT
                }
            }
            let consts: Bound<PyTuple> = code.getattr("co_consts").unwrap().cast_into().unwrap();
            let mut items: Vec<Bound<PyAny>> = consts.iter().collect();
            for item in items.iter_mut() {
                if item.extract::<i64>().ok() == Some(1) {
                    *item = 5i64.into_pyobject(py).unwrap().into_any();
                }
            }
            let overrides = CodeOverrides {
                consts: Some(PyTuple::new(py, items).unwrap()),
                ..Default::default()
            };
            let out = assemble(&asm, decoded.first_line).unwrap();
            let new_code = make_code_object(&code, &out, &overrides).unwrap();
            f.setattr("__code__", new_code).unwrap();
            let r: i64 = f.call1((41,)).unwrap().extract().unwrap();
            assert_eq!(r, 36);
            let r: i64 = f.call1((0,)).unwrap().extract().unwrap();
            assert_eq!(r, -1);
        });
    }

    #[test]
    fn non_code_is_an_error() {
        Python::attach(|py| {
            let not_code = py.None().into_bound(py);
            assert!(decode_code_object(&not_code).is_err());
        });
    }
}
