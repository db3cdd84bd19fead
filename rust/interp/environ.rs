//! `os.environ[key]` (and through it `os.environ.get`, `key in os.environ`, `os.getenv`)
//! with a constant key: the variable's value now, folded as a constant and guarded on the
//! environment's own storage (`os.environ._data.get(encoded key)`: present with this value,
//! or absent), so setting or unsetting the variable recompiles. transformers reads
//! `TRANSFORMERS_SDPA_FORCE_GQA` in every grouped-query attention call.

use std::sync::Arc;

use pyo3::prelude::*;

use super::exit::{Exit, TResult};
use super::tracer::Tracer;
use super::value::Value;
use crate::guards::{DictKey, Guard, Source};

/// `os._Environ.__getitem__(environ, key)`; None when this is not that call on
/// `os.environ` itself read from the frame with a constant `str` key.
pub fn getitem(tx: &mut Tracer<'_>, args: &[Value]) -> TResult<Option<Value>> {
    let py = tx.py;
    let [Value::Object(env), key] = args else {
        return Ok(None);
    };
    let rf = super::stdlib::r(tx)?;
    let (Some(src), true) = (&env.source, env.obj.bind(py).is(rf.environ.bind(py))) else {
        return Ok(None);
    };
    let Some(key) = key.as_const(py).and_then(|k| k.extract::<String>().ok()) else {
        return Ok(None);
    };
    let environ = env.obj.bind(py);
    // encodekey/decodevalue are os's own (stdlib) encoders: no user code runs.
    let raw = environ
        .call_method1("encodekey", (key.as_str(),))
        .map_err(|e| tx.err(e))?;
    let kb: Vec<u8> = raw.extract().map_err(|e| tx.err(e))?;
    let data = environ.getattr("_data").map_err(|e| tx.err(e))?;
    let value = data
        .cast::<pyo3::types::PyDict>()
        .map_err(|_| Exit::brk("os.environ._data is not a dict"))?
        .get_item(&raw)
        .map_err(|e| tx.err(e))?;
    let item = Arc::new(Source::DictGet {
        base: Arc::new(Source::Attr {
            base: src.clone(),
            name: "_data".into(),
        }),
        key: DictKey::Bytes(kb),
    });
    let seen = value.clone().unwrap_or_else(|| py.None().into_bound(py));
    tx.guard(&item, Guard::Equals(seen.unbind()));
    match value {
        Some(v) => {
            let text = environ
                .call_method1("decodevalue", (v,))
                .map_err(|e| tx.err(e))?;
            Ok(Some(Value::Const(text.unbind())))
        }
        None => Err(super::exceptions::raise_builtin(py, "KeyError", key)),
    }
}
