//! The outward faces of the stdlib models (stdlib.rs): their Python types, their values as
//! constants when they hold only constants, and the object-table entries that rebuild
//! them when they escape the trace.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use super::exit::{Exit, TResult};
use super::output::{template_for, OutTemplate};
use super::stdlib::{r, refs, StdVal};
use super::tracer::Tracer;
use super::value::Value;
use crate::guards::Source;
use crate::side_effects::table::Entry;

/// The Python type of a modelled value (for `type()`/`isinstance`).
pub fn python_type<'py>(tx: &Tracer<'py>, v: &Value) -> TResult<Option<Bound<'py, PyAny>>> {
    let py = tx.py;
    let rf = r(tx)?;
    Ok(match v {
        Value::Dict(d) => tx.stdlib.tag(d).map(|t| t.cls.bind(py).clone()),
        Value::Std(s) => Some(
            match &**s {
                StdVal::Partial { .. } => &rf.partial,
                StdVal::ItemGetter(_) => &rf.itemgetter,
                StdVal::AttrGetter(_) => &rf.attrgetter,
                StdVal::MethodCaller { .. } => &rf.methodcaller,
                StdVal::Map { .. } => &rf.map,
                StdVal::Filter { .. } => &rf.filter,
                StdVal::Deque(_) => &rf.deque,
                StdVal::Set(_) => &rf.set,
                StdVal::ModuleSlice { .. } => &rf.module_list,
                StdVal::ModelOutput { cls, .. } => cls,
                StdVal::Signature { .. } => &rf.signature_type,
                StdVal::HookHandle(_) => {
                    let h = super::hook_handles::refs(py).map_err(|e| tx.err(e))?;
                    return Ok(Some(h.handle_type.bind(py).clone()));
                }
                StdVal::SigParams { .. } => &rf.mapping_proxy,
                StdVal::SeqIter { .. } => return Err(Exit::brk("type() of a deque/set iterator")),
                StdVal::InstDict { .. } => {
                    return Ok(Some(py.get_type::<pyo3::types::PyDict>().into_any()))
                }
                StdVal::DictView { kind, .. } => {
                    return Ok(Some(kind.python_type(py).map_err(|e| tx.err(e))?))
                }
                StdVal::ModelOutputView { .. } => {
                    return Err(Exit::brk(
                        "type() of a ModelOutput's keys/values/items view",
                    ))
                }
            }
            .bind(py)
            .clone(),
        ),
        _ => None,
    })
}

/// A constant Python object equal to the value, when it holds only constants.
pub fn as_python_constant<'py>(tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
    let py = tx.py;
    let rf = refs(py).ok()?;
    match v {
        Value::Dict(d) => {
            let tag = tx.stdlib.tag(d)?;
            let pairs: Option<Vec<_>> = d
                .entries
                .borrow()
                .iter()
                .map(|(k, x)| {
                    let x = tx.as_python_constant(x)?;
                    PyTuple::new(py, [k.bind(py).clone(), x]).ok()
                })
                .collect();
            let pairs = PyList::new(py, pairs?).ok()?;
            match &tag.factory {
                // Counter(list of pairs) would count the pairs: give it a mapping.
                None if super::stdlib::is_counter(tx, d) => {
                    let m = pyo3::types::PyDict::from_sequence(&pairs).ok()?;
                    tag.cls.bind(py).call1((m,)).ok()
                }
                None => tag.cls.bind(py).call1((pairs,)).ok(),
                Some(f) => {
                    let f = tx.as_python_constant(f)?;
                    tag.cls.bind(py).call1((f, pairs)).ok()
                }
            }
        }
        Value::Std(s) => match &**s {
            StdVal::Deque(d) => {
                let items: Option<Vec<_>> = d
                    .items
                    .borrow()
                    .iter()
                    .map(|x| tx.as_python_constant(x))
                    .collect();
                let t = PyTuple::new(py, items?).ok()?;
                rf.deque.bind(py).call1((t, d.maxlen)).ok()
            }
            StdVal::Set(set) => set.as_python_constant(tx),
            _ => None,
        },
        _ => None,
    }
}

/// The object-table entry that rebuilds an escaping modelled value (or tagged dict).
pub fn table_entry(
    tx: &mut Tracer<'_>,
    v: &Value,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<Option<Entry>> {
    let py = tx.py;
    let rf = r(tx)?;
    let mut tmpl = |tx: &mut Tracer<'_>, x: &Value| template_for(tx, x, outputs, extra);
    Ok(Some(match v {
        Value::Dict(d) => {
            let Some(tag) = tx.stdlib.tag(d) else {
                return Ok(None);
            };
            let (cls, factory) = (tag.cls.clone_ref(py), tag.factory.clone());
            let mut attrs = Vec::new();
            if let Some(f) = factory {
                attrs.push(("default_factory".to_string(), tmpl(tx, &f)?));
            }
            let items: Vec<_> = d.snapshot(py);
            let mut pairs = Vec::with_capacity(items.len());
            for (k, x) in items {
                pairs.push(OutTemplate::Tuple(vec![
                    OutTemplate::Const(k),
                    tmpl(tx, &x)?,
                ]));
            }
            // A Counter's `update` adds counts of an iterable's elements; of a mapping, into
            // an empty Counter, it stores them as they are.
            let fill = if super::stdlib::is_counter(tx, d) {
                let items: Vec<_> = pairs
                    .into_iter()
                    .filter_map(|p| match p {
                        OutTemplate::Tuple(mut kv) if kv.len() == 2 => {
                            let v = kv.pop()?;
                            match kv.pop()? {
                                OutTemplate::Const(k) => Some((k, v)),
                                _ => None,
                            }
                        }
                        _ => None,
                    })
                    .collect();
                OutTemplate::Dict(items)
            } else {
                OutTemplate::List(pairs)
            };
            Entry::Filled {
                alloc: cls,
                attrs,
                fill: Some(("update".into(), fill)),
            }
        }
        Value::Std(s) => match &**s {
            StdVal::Partial {
                func,
                args,
                keywords,
            } => {
                let mut a = vec![tmpl(tx, func)?];
                for x in args.iter() {
                    a.push(tmpl(tx, x)?);
                }
                let kws: Vec<_> = keywords.snapshot(py);
                let mut kwt = Vec::with_capacity(kws.len());
                for (k, x) in kws {
                    let k: String = k
                        .bind(py)
                        .extract()
                        .map_err(|_| Exit::brk("partial keywords that are not strings"))?;
                    kwt.push((k, tmpl(tx, &x)?));
                }
                Entry::Call {
                    f: rf.partial.clone_ref(py),
                    args: a,
                    kwargs: kwt,
                }
            }
            StdVal::ItemGetter(keys) => Entry::Call {
                f: rf.itemgetter.clone_ref(py),
                args: keys.iter().map(|k| tmpl(tx, k)).collect::<TResult<_>>()?,
                kwargs: Vec::new(),
            },
            StdVal::AttrGetter(names) => Entry::Call {
                f: rf.attrgetter.clone_ref(py),
                args: names
                    .iter()
                    .map(|n| {
                        OutTemplate::Const(pyo3::types::PyString::new(py, n).into_any().unbind())
                    })
                    .collect(),
                kwargs: Vec::new(),
            },
            StdVal::MethodCaller { name, args, kwargs } => {
                let mut a = vec![OutTemplate::Const(
                    pyo3::types::PyString::new(py, name).into_any().unbind(),
                )];
                for x in args {
                    a.push(tmpl(tx, x)?);
                }
                let mut kwt = Vec::with_capacity(kwargs.len());
                for (k, x) in kwargs {
                    kwt.push((k.clone(), tmpl(tx, x)?));
                }
                Entry::Call {
                    f: rf.methodcaller.clone_ref(py),
                    args: a,
                    kwargs: kwt,
                }
            }
            StdVal::Deque(d) => {
                let items: Vec<Value> = d.items.borrow().iter().cloned().collect();
                let items = items.iter().map(|x| tmpl(tx, x)).collect::<TResult<_>>()?;
                let kwargs = pyo3::types::PyDict::new(py);
                kwargs.set_item("maxlen", d.maxlen).map_err(|e| tx.err(e))?;
                let alloc = rf
                    .partial
                    .bind(py)
                    .call((rf.deque.bind(py),), Some(&kwargs))
                    .map_err(|e| tx.err(e))?;
                Entry::Filled {
                    alloc: alloc.unbind(),
                    attrs: Vec::new(),
                    fill: Some(("extend".into(), OutTemplate::Tuple(items))),
                }
            }
            StdVal::Set(set) => {
                let items = set.all_items(tx)?;
                let items = items.iter().map(|x| tmpl(tx, x)).collect::<TResult<_>>()?;
                Entry::Filled {
                    alloc: rf.set.clone_ref(py),
                    attrs: Vec::new(),
                    fill: Some(("update".into(), OutTemplate::Tuple(items))),
                }
            }
            StdVal::ModelOutput { cls, names, values } => Entry::Call {
                f: cls.clone_ref(py),
                args: Vec::new(),
                kwargs: names
                    .iter()
                    .zip(values.borrow().iter())
                    .map(|(n, v)| Ok((n.clone(), tmpl(tx, v)?)))
                    .collect::<TResult<_>>()?,
            },
            // A removed handle (a live one ends the trace): an inert one.
            StdVal::HookHandle(_) => Entry::Call {
                f: super::hook_handles::refs(py)
                    .map_err(|e| tx.err(e))?
                    .inert_handle
                    .clone_ref(py),
                args: Vec::new(),
                kwargs: Vec::new(),
            },
            StdVal::Signature { target, .. } => Entry::Call {
                f: rf.signature.clone_ref(py),
                args: vec![tmpl(tx, target)?],
                kwargs: Vec::new(),
            },
            StdVal::SigParams { sig } => Entry::Call {
                f: rf.get_parameters.clone_ref(py),
                args: vec![tmpl(tx, &Value::Std(sig.clone()))?],
                kwargs: Vec::new(),
            },
            // The view of the ModelOutput as it leaves the region (rebuilt after the graph).
            StdVal::ModelOutputView { out, kind } => Entry::Call {
                f: kind.odict_method(py).map_err(|e| tx.err(e))?,
                args: vec![tmpl(tx, &Value::Std(out.clone()))?],
                kwargs: Vec::new(),
            },
            // The view of the dict as it leaves the region (its own dict, rebuilt or fetched).
            StdVal::DictView { dict, kind } => Entry::Call {
                f: kind.method(py).map_err(|e| tx.err(e))?,
                args: vec![tmpl(tx, &Value::Dict(dict.clone()))?],
                kwargs: Vec::new(),
            },
            StdVal::ModuleSlice { module, slice, .. } => Entry::Call {
                f: rf.getitem.clone_ref(py),
                args: vec![tmpl(tx, module)?, OutTemplate::Const(slice.clone_ref(py))],
                kwargs: Vec::new(),
            },
            // A loop over a ModuleList slice split inside its body: the same slice again,
            // advanced past the modules already taken.
            StdVal::SeqIter { owner, pos, .. }
                if matches!(&**owner, StdVal::ModuleSlice { .. }) =>
            {
                let StdVal::ModuleSlice { module, slice, .. } = &**owner else {
                    unreachable!("matched above")
                };
                let seq = OutTemplate::Call(
                    rf.getitem.clone_ref(py),
                    vec![tmpl(tx, module)?, OutTemplate::Const(slice.clone_ref(py))],
                );
                Entry::Call {
                    f: rf.advanced_iter.clone_ref(py),
                    args: vec![
                        seq,
                        OutTemplate::Const(
                            Value::constant(py, pos.get())
                                .as_const(py)
                                .map(|c| c.clone().unbind())
                                .unwrap_or_else(|| py.None()),
                        ),
                    ],
                    kwargs: Vec::new(),
                }
            }
            // A loop over `d.items()` (or keys, values) split inside its body: the view
            // of the same dict, advanced past the items already taken.
            StdVal::SeqIter { owner, pos, .. } if matches!(&**owner, StdVal::DictView { .. }) => {
                let StdVal::DictView { dict, kind } = &**owner else {
                    unreachable!("matched above")
                };
                let seq = OutTemplate::Call(
                    kind.method(py).map_err(|e| tx.err(e))?,
                    vec![tmpl(tx, &Value::Dict(dict.clone()))?],
                );
                Entry::Call {
                    f: rf.advanced_iter.clone_ref(py),
                    args: vec![
                        seq,
                        OutTemplate::Const(
                            pyo3::types::PyInt::new(py, pos.get()).into_any().unbind(),
                        ),
                    ],
                    kwargs: Vec::new(),
                }
            }
            other => {
                return Err(Exit::brk(format!(
                    "a '{}' iterator escaping the compiled region",
                    other.type_name()
                )))
            }
        },
        _ => return Ok(None),
    }))
}
