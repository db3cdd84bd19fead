//! `import` statements inside traced code. An import of a module that is already fully
//! imported has no effect beyond binding a name, so it traces without a graph break when
//! the module can be reached by a guarded source: torch's own modules (trusted, like every
//! `torch.*` module the tracer meets) or a module the function's globals already bind. Any
//! other import breaks the graph at the instruction (the glue runs it natively).

use crate::ImportCached;
use pyo3::prelude::*;

use super::attrs::global_source;
use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::tracer::Tracer;
use super::value::Value;

/// `IMPORT_NAME name` with `level` and `fromlist` popped: the module (or top package) value.
pub fn import_name(
    tx: &mut Tracer<'_>,
    frame: &Frame,
    name: &str,
    level: &Value,
    fromlist: &Value,
) -> TResult<Value> {
    let py = tx.py;
    let brk = || Exit::brk(format!("an import statement (import of {name})"));
    let level = level
        .as_const(py)
        .and_then(|l| l.extract::<i64>().ok())
        .ok_or_else(brk)?;
    // `from .x import y`: the absolute name, from the module's `__package__` (guarded).
    let absolute;
    let name = if level == 0 {
        name
    } else {
        absolute = relative_name(tx, frame, name, level).ok_or_else(brk)?;
        absolute.as_str()
    };
    // `import a.b` binds the top package; `from a.b import c` needs `a.b` itself.
    let wants_module = match fromlist.as_const(py) {
        Some(f) if f.is_none() => false,
        Some(_) => true,
        None if matches!(fromlist, Value::Tuple(_)) => true,
        None => return Err(brk()),
    };
    let modules = py
        .import_cached("sys")
        .and_then(|s| s.getattr("modules"))
        .map_err(|e| tx.err(e))?;
    let loaded =
        |n: &str| -> Option<Bound<'_, PyAny>> { modules.get_item(n).ok().filter(|m| !m.is_none()) };
    // Every package on the path must be loaded already (else the import runs code).
    let mut prefix = String::new();
    for part in name.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(part);
        if loaded(&prefix).is_none() {
            return Err(brk());
        }
    }
    let target = if wants_module {
        name
    } else {
        name.split('.').next().unwrap_or(name)
    };
    let module = loaded(target).ok_or_else(brk)?;
    if target == "torch" || target.starts_with("torch.") {
        return tx.realize(&module, None);
    }
    // A module the globals bind: read it from there, guarded like any global; any other
    // loaded module through `sys.modules[name]` (the import finds it there and runs
    // nothing; the guard recompiles if that entry is replaced or removed).
    let globals = frame.globals_dict(py).map_err(|e| tx.err(e))?;
    let key = globals
        .iter()
        .find(|(_, v)| v.is(&module))
        .and_then(|(k, _)| k.extract::<String>().ok());
    let source = match key.and_then(|k| global_source(frame, &k)) {
        Some(s) => s,
        None => std::sync::Arc::new(crate::guards::Source::DictItem {
            base: std::sync::Arc::new(crate::guards::Source::SysModules),
            key: crate::guards::DictKey::Str(target.to_string()),
        }),
    };
    tx.realize(&module, Some(source))
}

/// The absolute module name of a relative import, as `importlib` resolves it; None when
/// the module has no package or the level goes above the top package.
fn relative_name(tx: &mut Tracer<'_>, frame: &Frame, name: &str, level: i64) -> Option<String> {
    let py = tx.py;
    let globals = frame.globals_dict(py).ok()?;
    let package = globals.get_item("__package__").ok().flatten()?;
    let pkg: String = package.extract().ok()?;
    if pkg.is_empty() || level < 1 {
        return None;
    }
    let parts: Vec<&str> = pkg.split('.').collect();
    let keep = parts.len().checked_sub(usize::try_from(level - 1).ok()?)?;
    if keep == 0 {
        return None;
    }
    // The import depends on `__package__`: guard it like a global read.
    let src = global_source(frame, "__package__")?;
    tx.realize(&package, Some(src)).ok()?;
    let base = parts[..keep].join(".");
    Some(if name.is_empty() {
        base
    } else {
        format!("{base}.{name}")
    })
}

/// `IMPORT_FROM name` on the module value: `getattr(module, name)`, when the attribute
/// exists (else CPython would look for a submodule or raise ImportError: break).
pub fn import_from(tx: &mut Tracer<'_>, module: &Value, name: &str) -> TResult<Value> {
    let has = match module {
        Value::Object(o) => o.obj.bind(tx.py).hasattr(name).unwrap_or(false),
        _ => false,
    };
    if !has {
        return Err(Exit::brk(format!(
            "an import statement (from ... import {name})"
        )));
    }
    crate::interp::families::getattr(tx, module, name)
}
