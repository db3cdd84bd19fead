//! Stdlib objects the interpreter models itself because their contents may be symbolic:
//! `functools.partial`, `operator.itemgetter`/`attrgetter`, lazy `map`/`filter`, `sorted`,
//! `collections.OrderedDict`/`defaultdict`/`Counter` (dict values with a class tag:
//! stdlib_dict.rs), and `deque`/`set` (stdlib_set.rs). Each is a `Value::Std`; objects that escape the trace are rebuilt
//! through the object table (side_effects/table.rs) so identity holds.

use crate::ImportCached;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyTuple};

use super::dispatch::dict_set;
use super::exit::{Exit, TResult};
use super::iter::{iter_next, unpack};
use super::ops::subscr;
use super::stdlib_set::{DequeVal, SetVal};
use super::tracer::Tracer;
use super::value::{DictVal, Value};
use crate::guards::Source;

pub use super::stdlib_dict::{
    default_factory, dict_missing, is_counter, tagged_dict_method, DictTag, StdState,
};
use super::stdlib_dict::{fromkeys, fromkeys_owner, make_counter};

pub enum StdVal {
    /// `functools.partial(func, *args, **keywords)`; `keywords` is the dict `p.keywords`
    /// returns (mutating it changes later calls, as in CPython).
    Partial {
        func: Value,
        args: Rc<Vec<Value>>,
        keywords: Rc<DictVal>,
    },
    ItemGetter(Vec<Value>),
    /// Dotted attribute names.
    AttrGetter(Vec<String>),
    /// `operator.methodcaller(name, *args, **kwargs)`.
    MethodCaller {
        name: String,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    },
    /// `map(func, *iterables)`: lazy, over iterator values.
    Map {
        func: Value,
        inners: Vec<Value>,
    },
    /// `filter(func or None, iterable)`: lazy.
    Filter {
        func: Option<Value>,
        inner: Value,
    },
    Deque(DequeVal),
    Set(SetVal),
    /// `d.keys()` / `d.values()` / `d.items()` of a dict value: a live view (it sees later
    /// changes of the dict, can be iterated again, measured and tested with `in`).
    DictView {
        dict: Rc<DictVal>,
        kind: super::dict_views::ViewKind,
    },
    /// `out.keys()` / `out.values()` / `out.items()` of a ModelOutput made in the trace:
    /// a live view of its mapping (the fields that are not None), as OrderedDict gives.
    ModelOutputView {
        out: Rc<StdVal>,
        kind: super::dict_views::ViewKind,
    },
    /// An iterator over a deque or set: a snapshot that breaks if the owner is mutated
    /// while it is being iterated (CPython raises RuntimeError there).
    /// `m[a:b]` of a stock `nn.ModuleList` `m`: its modules, in order. It escapes as
    /// `m[a:b]` evaluated again (a new ModuleList, as eager makes one per call); it is
    /// iterated, indexed and measured, and anything else it could do breaks the graph.
    ModuleSlice {
        module: Value,
        slice: Py<PyAny>,
        items: Vec<Value>,
    },
    /// A handle of a forward hook registered in the trace (`hook_handles.rs`).
    HookHandle(Rc<super::hook_handles::Registration>),
    /// `inspect.signature(target)`, computed at trace time (`signature.rs`).
    Signature {
        target: Value,
        sig: Py<PyAny>,
    },
    /// A transformers `ModelOutput` (`model_output.rs`): its class and field values.
    ModelOutput {
        cls: Py<PyAny>,
        names: Vec<String>,
        values: std::cell::RefCell<Vec<Value>>,
    },
    /// `sig.parameters` of a traced signature.
    SigParams {
        sig: Rc<StdVal>,
    },
    /// `obj.__dict__` of a traced object with pending stores (`inst_dict.rs`).
    InstDict {
        obj: Value,
    },
    SeqIter {
        owner: Rc<StdVal>,
        items: Vec<Value>,
        pos: Cell<usize>,
        version: u64,
    },
}

impl StdVal {
    pub fn type_name(&self) -> &'static str {
        match self {
            StdVal::Partial { .. } => "functools.partial",
            StdVal::ItemGetter(_) => "operator.itemgetter",
            StdVal::AttrGetter(_) => "operator.attrgetter",
            StdVal::MethodCaller { .. } => "operator.methodcaller",
            StdVal::Map { .. } => "map",
            StdVal::Filter { .. } => "filter",
            StdVal::Deque(_) => "collections.deque",
            StdVal::Set(_) => "set",
            StdVal::ModuleSlice { .. } => "torch.nn.ModuleList",
            StdVal::Signature { .. } => "inspect.Signature",
            StdVal::HookHandle(_) => "RemovableHandle",
            StdVal::ModelOutput { .. } => "ModelOutput",
            StdVal::SigParams { .. } => "mappingproxy",
            StdVal::SeqIter { .. } => "iterator",
            StdVal::InstDict { .. } => "dict",
            StdVal::DictView { kind, .. } => kind.type_name(),
            StdVal::ModelOutputView { kind, .. } => kind.odict_type_name(),
        }
    }

    pub fn is_callable(&self) -> bool {
        matches!(
            self,
            StdVal::Partial { .. }
                | StdVal::ItemGetter(_)
                | StdVal::AttrGetter(_)
                | StdVal::MethodCaller { .. }
        )
    }

    fn version(&self) -> u64 {
        match self {
            StdVal::Deque(d) => d.version.get(),
            StdVal::Set(s) => s.version.get(),
            _ => 0,
        }
    }
}

/// The stdlib callables modelled here, looked up once.
pub struct Refs {
    pub partial: Py<PyAny>,
    pub ordered_dict: Py<PyAny>,
    pub defaultdict: Py<PyAny>,
    pub counter: Py<PyAny>,
    pub deque: Py<PyAny>,
    pub itemgetter: Py<PyAny>,
    pub attrgetter: Py<PyAny>,
    pub methodcaller: Py<PyAny>,
    pub map: Py<PyAny>,
    pub filter: Py<PyAny>,
    pub sorted: Py<PyAny>,
    pub set: Py<PyAny>,
    pub reversed: Py<PyAny>,
    pub dict: Py<PyAny>,
    pub module_list: Py<PyAny>,
    pub environ: Py<PyAny>,
    pub environ_getitem: Py<PyAny>,
    pub signature: Py<PyAny>,
    pub signature_type: Py<PyAny>,
    pub mapping_proxy: Py<PyAny>,
    /// `operator.attrgetter("parameters")`.
    pub get_parameters: Py<PyAny>,
    pub getitem: Py<PyAny>,
    /// `ferrodyn._glue.advanced_iter(seq, n)`: `iter(seq)` advanced by `n` items.
    pub advanced_iter: Py<PyAny>,
}

static REFS: PyOnceLock<Refs> = PyOnceLock::new();

pub fn refs(py: Python<'_>) -> PyResult<&'static Refs> {
    REFS.get_or_try_init(py, || {
        let b = py.import_cached("builtins")?;
        let c = py.import_cached("collections")?;
        let op = py.import_cached("operator")?;
        let g = |m: &Bound<'_, PyModule>, n: &str| -> PyResult<Py<PyAny>> {
            Ok(m.getattr(n)?.unbind())
        };
        Ok(Refs {
            partial: g(&py.import_cached("functools")?, "partial")?,
            ordered_dict: g(&c, "OrderedDict")?,
            defaultdict: g(&c, "defaultdict")?,
            counter: g(&c, "Counter")?,
            deque: g(&c, "deque")?,
            itemgetter: g(&op, "itemgetter")?,
            attrgetter: g(&op, "attrgetter")?,
            methodcaller: g(&op, "methodcaller")?,
            map: g(&b, "map")?,
            filter: g(&b, "filter")?,
            sorted: g(&b, "sorted")?,
            set: g(&b, "set")?,
            reversed: g(&b, "reversed")?,
            dict: g(&b, "dict")?,
            module_list: g(&py.import_cached("torch.nn")?, "ModuleList")?,
            environ: g(&py.import_cached("os")?, "environ")?,
            environ_getitem: py
                .import_cached("os")?
                .getattr("_Environ")?
                .getattr("__getitem__")?
                .unbind(),
            getitem: g(&op, "getitem")?,
            signature: g(&py.import_cached("inspect")?, "signature")?,
            signature_type: g(&py.import_cached("inspect")?, "Signature")?,
            mapping_proxy: g(&py.import_cached("types")?, "MappingProxyType")?,
            get_parameters: op.getattr("attrgetter")?.call1(("parameters",))?.unbind(),
            advanced_iter: g(&py.import_cached("ferrodyn._glue")?, "advanced_iter")?,
        })
    })
}

pub fn r(tx: &Tracer<'_>) -> TResult<&'static Refs> {
    refs(tx.py).map_err(|e| tx.err(e))
}

fn std(v: StdVal) -> Value {
    Value::Std(Rc::new(v))
}

fn kw<'a>(kwargs: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    kwargs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn only_kwargs(kwargs: &[(String, Value)], allowed: &[&str], what: &str) -> TResult<()> {
    match kwargs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(Exit::brk(format!(
            "{what}() got an unexpected keyword argument '{k}'"
        ))),
        None => Ok(()),
    }
}

fn is_none(tx: &Tracer<'_>, v: &Value) -> bool {
    matches!(v, Value::Const(c) if c.bind(tx.py).is_none())
}

/// A constant made only of plain Python constants (no objects whose comparisons or hashes
/// could run user code).
pub fn plain_const<'py>(tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
    match v {
        Value::Const(c) => Some(c.bind(tx.py).clone()),
        Value::Tuple(items) => {
            let conv: Option<Vec<_>> = items.iter().map(|i| plain_const(tx, i)).collect();
            PyTuple::new(tx.py, conv?).ok().map(|t| t.into_any())
        }
        _ => None,
    }
}

fn is_callable_value(tx: &Tracer<'_>, v: &Value) -> bool {
    let py = tx.py;
    match v {
        Value::Function(_) | Value::BoundMethod(_) | Value::BuiltinMethod(_) => true,
        Value::Object(o) => o.obj.bind(py).is_callable(),
        Value::Const(c) => c.bind(py).is_callable(),
        Value::Std(s) => s.is_callable(),
        _ => false,
    }
}

/// Calls of the stdlib callables modelled here; Ok(None) if `obj` is not one of them.
pub fn call_stdlib<'py>(
    tx: &mut Tracer<'py>,
    obj: &Bound<'py, PyAny>,
    whole: &Value,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    let rf = r(tx)?;
    let is = |f: &Py<PyAny>| obj.is(f.bind(py));
    if is(&rf.partial) {
        return make_partial(tx, args, kwargs).map(Some);
    }
    if obj.get_type().is(rf.partial.bind(py)) {
        return call_existing_partial(tx, obj, whole, args, kwargs).map(Some);
    }
    if is(&rf.ordered_dict) || is(&rf.defaultdict) {
        let (factory, rest) = if is(&rf.defaultdict) {
            match args.split_first() {
                Some((f, rest)) => {
                    if !is_none(tx, f) && !is_callable_value(tx, f) {
                        return Err(Exit::brk(
                            "TypeError: first argument of defaultdict must be callable or None",
                        ));
                    }
                    (Some(f.clone()).filter(|f| !is_none(tx, f)), rest)
                }
                None => (None, args),
            }
        } else {
            (None, args)
        };
        let dict_fn = rf.dict.bind(py).clone();
        let d = match super::builtins::call_builtin(tx, &dict_fn, rest, kwargs)? {
            Some(Value::Dict(d)) => d,
            _ => return Err(Exit::internal("dict() did not build a dict")),
        };
        tx.stdlib.set_tag(
            &d,
            DictTag {
                cls: obj.clone().unbind(),
                factory,
            },
        );
        return Ok(Some(Value::Dict(d)));
    }
    if is(&rf.counter) {
        return make_counter(tx, obj, args, kwargs).map(Some);
    }
    if let Some(cls) = fromkeys_owner(py, obj, rf) {
        return fromkeys(tx, cls, args, kwargs).map(Some);
    }
    if is(&rf.deque) {
        only_kwargs(kwargs, &["iterable", "maxlen"], "deque")?;
        let it = args.first().or_else(|| kw(kwargs, "iterable"));
        let maxlen = args.get(1).or_else(|| kw(kwargs, "maxlen"));
        if args.len() > 2 {
            return Err(Exit::brk("deque() takes at most 2 arguments"));
        }
        let maxlen = match maxlen {
            None => None,
            Some(m) if is_none(tx, m) => None,
            Some(m) => {
                let n = m
                    .as_const(py)
                    .filter(|c| c.get_type().name().map(|n| n == "int").unwrap_or(false))
                    .and_then(|c| c.extract::<i64>().ok())
                    .ok_or_else(|| Exit::brk("deque() with a maxlen that is not a constant int"))?;
                if n < 0 {
                    return Err(Exit::brk("ValueError: maxlen must be non-negative"));
                }
                Some(n as usize)
            }
        };
        let d = DequeVal::new(maxlen);
        let dv = std(StdVal::Deque(d));
        if let (Some(it), Value::Std(s)) = (it, &dv) {
            super::stdlib_set::extend(tx, s, it, false)?;
        }
        return Ok(Some(dv));
    }
    if is(&rf.set) {
        if !kwargs.is_empty() || args.len() > 1 {
            return Err(Exit::brk("set() arguments"));
        }
        let s = std(StdVal::Set(SetVal::new(py).map_err(|e| tx.err(e))?));
        if let (Some(it), Value::Std(sv)) = (args.first(), &s) {
            super::stdlib_set::set_update(tx, sv, it)?;
        }
        return Ok(Some(s));
    }
    if is(&rf.itemgetter) {
        if args.is_empty() || !kwargs.is_empty() {
            return Err(Exit::brk("TypeError: itemgetter() arguments"));
        }
        return Ok(Some(std(StdVal::ItemGetter(args.to_vec()))));
    }
    if is(&rf.methodcaller) {
        let Some((name, rest)) = args.split_first() else {
            return Err(Exit::brk(
                "TypeError: methodcaller needs at least one argument",
            ));
        };
        let name = name
            .as_const(py)
            .and_then(|c| c.extract::<String>().ok())
            .ok_or_else(|| Exit::brk("methodcaller() with a non-string method name"))?;
        return Ok(Some(std(StdVal::MethodCaller {
            name,
            args: rest.to_vec(),
            kwargs: kwargs.to_vec(),
        })));
    }
    let ty = obj.get_type();
    if ty.is(rf.itemgetter.bind(py))
        || ty.is(rf.attrgetter.bind(py))
        || ty.is(rf.methodcaller.bind(py))
    {
        let model = existing_getter(tx, obj, whole)?;
        return call_std(tx, &model, args.to_vec(), kwargs.to_vec()).map(Some);
    }
    if is(&rf.attrgetter) {
        if args.is_empty() || !kwargs.is_empty() {
            return Err(Exit::brk("TypeError: attrgetter() arguments"));
        }
        let names = args
            .iter()
            .map(|a| {
                a.as_const(py)
                    .and_then(|c| c.extract::<String>().ok())
                    .ok_or_else(|| Exit::brk("attrgetter() with a non-string attribute name"))
            })
            .collect::<TResult<Vec<_>>>()?;
        return Ok(Some(std(StdVal::AttrGetter(names))));
    }
    if is(&rf.map) {
        let Some((func, its)) = args.split_first() else {
            return Err(Exit::brk(
                "TypeError: map() must have at least two arguments",
            ));
        };
        if its.is_empty() || !kwargs.is_empty() {
            return Err(Exit::brk("TypeError: map() arguments"));
        }
        let inners = its
            .iter()
            .map(|i| crate::interp::families::iter(tx, i))
            .collect::<TResult<Vec<_>>>()?;
        return Ok(Some(std(StdVal::Map {
            func: func.clone(),
            inners,
        })));
    }
    if is(&rf.filter) {
        let [func, it] = args else {
            return Err(Exit::brk("TypeError: filter() takes two arguments"));
        };
        if !kwargs.is_empty() {
            return Err(Exit::brk("TypeError: filter() takes no keyword arguments"));
        }
        let inner = crate::interp::families::iter(tx, it)?;
        let func = (!is_none(tx, func)).then(|| func.clone());
        return Ok(Some(std(StdVal::Filter { func, inner })));
    }
    if is(&rf.sorted) {
        return sorted(tx, args, kwargs).map(Some);
    }
    if is(&rf.reversed) {
        return reversed(tx, args, kwargs);
    }
    Ok(None)
}

/// `partial(func, *args, **kw)`; a partial of a partial is flattened, as in CPython.
fn make_partial(tx: &mut Tracer<'_>, args: &[Value], kwargs: &[(String, Value)]) -> TResult<Value> {
    let py = tx.py;
    let Some((func, rest)) = args.split_first() else {
        return Err(Exit::brk(
            "functools.partial() with no arguments (TypeError: needs a callable)",
        ));
    };
    if !is_callable_value(tx, func) {
        return Err(Exit::brk(
            "TypeError: the first argument of functools.partial must be callable",
        ));
    }
    let keywords = Value::new_dict_val();
    let (func, mut all) = match func {
        Value::Std(s) => match &**s {
            StdVal::Partial {
                func,
                args,
                keywords: k,
            } => {
                for (key, v) in k.snapshot(py) {
                    dict_set(tx, &keywords, key, v);
                }
                (func.clone(), (**args).clone())
            }
            _ => (func.clone(), Vec::new()),
        },
        _ => (func.clone(), Vec::new()),
    };
    all.extend(rest.iter().cloned());
    for (k, v) in kwargs {
        let key = pyo3::types::PyString::new(py, k).into_any().unbind();
        dict_set(tx, &keywords, key, v.clone());
    }
    Ok(std(StdVal::Partial {
        func,
        args: Rc::new(all),
        keywords,
    }))
}

fn call_partial(
    tx: &mut Tracer<'_>,
    func: &Value,
    pargs: &[Value],
    keywords: &DictVal,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    let mut all = pargs.to_vec();
    all.extend(args);
    let mut kw: Vec<(String, Value)> = Vec::new();
    for (k, v) in tx.dict_items(keywords)? {
        let k: String = k
            .bind(py)
            .extract()
            .map_err(|_| Exit::brk("partial keywords that are not strings"))?;
        kw.push((k, v));
    }
    for (k, v) in kwargs {
        match kw.iter_mut().find(|(kk, _)| *kk == k) {
            Some(slot) => slot.1 = v,
            None => kw.push((k, v)),
        }
    }
    crate::interp::families::call(tx, func, all, kw)
}

/// An `itemgetter`/`attrgetter`/`methodcaller` that exists outside the trace, as the model of
/// one made in it: what it holds is read through its `__reduce__` (C, no user code) and must
/// be constants; these objects cannot change, so a guard on its identity covers them.
fn existing_getter<'py>(
    tx: &mut Tracer<'py>,
    obj: &Bound<'py, PyAny>,
    whole: &Value,
) -> TResult<Rc<StdVal>> {
    let py = tx.py;
    let rf = r(tx)?;
    let not_const = || Exit::brk(format!("{} holding non-constant values", tx_describe(obj)));
    let reduced = obj
        .call_method0("__reduce__")
        .and_then(|r| r.extract::<(Bound<'py, PyAny>, Bound<'py, PyTuple>)>())
        .map_err(|e| tx.err(e))?;
    let (ctor, held) = reduced;
    // methodcaller with keywords reduces to `partial(methodcaller, name, **kw)(*args)`.
    type Held<'py> = (Vec<Bound<'py, PyAny>>, Vec<(String, Bound<'py, PyAny>)>);
    let (mut items, kw): Held<'py> = if ctor.get_type().is(rf.partial.bind(py)) {
        let pa = ctor
            .getattr("args")
            .and_then(|a| a.extract::<Vec<Bound<'py, PyAny>>>())
            .map_err(|e| tx.err(e))?;
        let pk = ctor
            .getattr("keywords")
            .and_then(|k| {
                let d = k.cast_into::<pyo3::types::PyDict>()?;
                d.iter()
                    .map(|(k, v)| Ok((k.extract::<String>()?, v)))
                    .collect::<PyResult<Vec<_>>>()
            })
            .map_err(|e| tx.err(e))?;
        let mut all = pa;
        all.extend(held.iter());
        (all, pk)
    } else {
        (held.iter().collect(), Vec::new())
    };
    let mut konst = |x: &Bound<'py, PyAny>| -> TResult<Value> {
        let v = tx.realize(x, None)?;
        if tx.as_python_constant(&v).is_none() {
            return Err(not_const());
        }
        Ok(v)
    };
    let model = if obj.get_type().is(rf.itemgetter.bind(py)) {
        StdVal::ItemGetter(items.iter().map(&mut konst).collect::<TResult<_>>()?)
    } else if obj.get_type().is(rf.attrgetter.bind(py)) {
        StdVal::AttrGetter(
            items
                .iter()
                .map(|n| n.extract::<String>().map_err(|_| not_const()))
                .collect::<TResult<_>>()?,
        )
    } else {
        if items.is_empty() {
            return Err(not_const());
        }
        let name = items
            .remove(0)
            .extract::<String>()
            .map_err(|_| not_const())?;
        let args = items.iter().map(&mut konst).collect::<TResult<_>>()?;
        let kwargs = kw
            .iter()
            .map(|(k, x)| Ok((k.clone(), konst(x)?)))
            .collect::<TResult<_>>()?;
        StdVal::MethodCaller { name, args, kwargs }
    };
    if let Value::Object(o) = whole {
        if let Some(src) = &o.source {
            tx.guard(src, crate::guards::Guard::IdMatch(obj.clone().unbind()));
        }
    }
    Ok(Rc::new(model))
}

fn tx_describe(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| format!("operator.{n}"))
        .unwrap_or_else(|_| "operator getter".into())
}

/// Calling a partial that exists outside the trace: `.func` is inlined with `.args` and
/// `.keywords`, each read (and guarded) through the partial's source.
fn call_existing_partial<'py>(
    tx: &mut Tracer<'py>,
    obj: &Bound<'py, PyAny>,
    whole: &Value,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let src = match whole {
        Value::Object(o) => o.source.clone(),
        _ => None,
    };
    let sub = |n: &str| {
        src.as_ref().map(|s| {
            Arc::new(Source::Attr {
                base: s.clone(),
                name: n.to_string(),
            })
        })
    };
    let get = |n: &str| obj.getattr(n).map_err(|e| tx.err(e));
    let (f, a, k) = (get("func")?, get("args")?, get("keywords")?);
    let f = tx.realize(&f, sub("func"))?;
    let a = tx.realize(&a, sub("args"))?;
    let k = tx.realize(&k, sub("keywords"))?;
    let a = unpack(tx, &a)?;
    let Value::Dict(k) = k else {
        return Err(Exit::brk("partial.keywords is not a dict"));
    };
    call_partial(tx, &f, &a, &k, args.to_vec(), kwargs.to_vec())
}

/// `sorted(iterable, key=..., reverse=...)`: items may be anything; the sort keys (the
/// items, or what `key` returns for each, called in order) must be plain constants.
fn sorted(tx: &mut Tracer<'_>, args: &[Value], kwargs: &[(String, Value)]) -> TResult<Value> {
    let py = tx.py;
    only_kwargs(kwargs, &["key", "reverse"], "sorted")?;
    let [it] = args else {
        return Err(Exit::brk("sorted() takes one positional argument"));
    };
    let key = kw(kwargs, "key").filter(|k| !is_none(tx, k)).cloned();
    let reverse = match kw(kwargs, "reverse") {
        None => false,
        Some(v) => v
            .as_const(py)
            .and_then(|c| c.is_truthy().ok())
            .ok_or_else(|| Exit::brk("sorted() with a non-constant reverse"))?,
    };
    // A set of ints or of strs sorts the same whatever order it iterates in (a changed
    // set from the inputs has no known order).
    let shadow = match it {
        Value::Object(o) if key.is_none() => super::set_objects::iterated_contents(tx, o)?,
        _ => None,
    };
    if let (None, Value::Std(s)) = (&key, shadow.as_ref().unwrap_or(it)) {
        if let StdVal::Set(set) = &**s {
            if let Some(members) = set.sorted_members(py, reverse) {
                return Ok(Value::new_list(
                    members.into_iter().map(Value::Const).collect(),
                ));
            }
        }
    }
    let items = unpack(tx, it)?;
    let mut keys = Vec::with_capacity(items.len());
    for item in &items {
        let k = match &key {
            Some(f) => crate::interp::families::call(tx, f, vec![item.clone()], Vec::new())?,
            None => item.clone(),
        };
        keys.push(plain_const(tx, &k).ok_or_else(|| {
            Exit::brk(format!(
                "sorted() over '{}' sort keys (only constants can be compared while tracing)",
                k.type_name(py)
            ))
        })?);
    }
    let keys = PyList::new(py, keys).map_err(|e| tx.err(e))?;
    let getter = keys.getattr("__getitem__").map_err(|e| tx.err(e))?;
    let idx = pyo3::types::PyDict::new(py);
    idx.set_item("key", getter).map_err(|e| tx.err(e))?;
    idx.set_item("reverse", reverse).map_err(|e| tx.err(e))?;
    let order = r(tx)?
        .sorted
        .bind(py)
        .call(
            (tx.hooks
                .b
                .range
                .bind(py)
                .call1((items.len(),))
                .map_err(|e| tx.err(e))?,),
            Some(&idx),
        )
        .map_err(|e| Exit::brk(format!("sorted() raised {}", e.value(py))))?;
    let order: Vec<usize> = order.extract().map_err(|e| tx.err(e))?;
    Ok(Value::new_list(
        order.into_iter().map(|i| items[i].clone()).collect(),
    ))
}

/// `reversed(d)` for dicts (keys, last first) and deques; Ok(None) for the others.
fn reversed(
    tx: &mut Tracer<'_>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let ([v], true) = (args, kwargs.is_empty()) else {
        return Ok(None);
    };
    let items = match v {
        Value::Dict(_) => unpack(tx, v)?,
        Value::Std(s) if matches!(&**s, StdVal::Deque(_)) => unpack(tx, v)?,
        _ => return Ok(None),
    };
    let mut items = items;
    items.reverse();
    Ok(Some(Value::new_iter(super::value::IterVal::Items {
        items,
        pos: 0,
    })))
}

/// Calling a modelled value: a partial, an itemgetter or an attrgetter.
pub fn call_std(
    tx: &mut Tracer<'_>,
    s: &Rc<StdVal>,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    match &**s {
        StdVal::Partial {
            func,
            args: pargs,
            keywords,
        } => call_partial(tx, func, pargs, keywords, args, kwargs),
        StdVal::ItemGetter(keys) => {
            let ([obj], true) = (args.as_slice(), kwargs.is_empty()) else {
                return Err(Exit::brk("TypeError: itemgetter expected 1 argument"));
            };
            let mut got = keys
                .iter()
                .map(|k| subscr(tx, obj, k))
                .collect::<TResult<Vec<_>>>()?;
            Ok(if got.len() == 1 {
                got.pop().unwrap_or(Value::Null)
            } else {
                Value::new_tuple(got)
            })
        }
        StdVal::AttrGetter(names) => {
            let ([obj], true) = (args.as_slice(), kwargs.is_empty()) else {
                return Err(Exit::brk("TypeError: attrgetter expected 1 argument"));
            };
            let mut got = Vec::with_capacity(names.len());
            for n in names {
                let mut v = obj.clone();
                for part in n.split('.') {
                    v = crate::interp::families::getattr(tx, &v, part)?;
                }
                got.push(v);
            }
            Ok(if got.len() == 1 {
                got.pop().unwrap_or(Value::Null)
            } else {
                Value::new_tuple(got)
            })
        }
        StdVal::MethodCaller {
            name,
            args: margs,
            kwargs: mkw,
        } => {
            let ([obj], true) = (args.as_slice(), kwargs.is_empty()) else {
                return Err(Exit::brk("TypeError: methodcaller expected 1 argument"));
            };
            let method = crate::interp::families::getattr(tx, obj, name)?;
            crate::interp::families::call(tx, &method, margs.clone(), mkw.clone())
        }
        other => Err(Exit::brk(format!(
            "'{}' object is not callable",
            other.type_name()
        ))),
    }
}

/// `v.name` for a modelled value.
pub fn load_attr_std(tx: &mut Tracer<'_>, v: &Value, s: &StdVal, name: &str) -> TResult<Value> {
    let py = tx.py;
    if let StdVal::ModelOutput { .. } = s {
        if matches!(name, "to_tuple" | "get" | "keys" | "values" | "items") {
            return Ok(Value::BuiltinMethod(Rc::new((v.clone(), name.to_string()))));
        }
        return super::model_output::load_attr(tx, s, name);
    }
    if let (StdVal::HookHandle(_), "remove") = (s, name) {
        return Ok(Value::BuiltinMethod(Rc::new((v.clone(), name.to_string()))));
    }
    if let (StdVal::Signature { .. } | StdVal::SigParams { .. }, Value::Std(rc)) = (s, v) {
        return super::signature::load_attr(rc, name);
    }
    match (s, name) {
        (
            StdVal::InstDict { .. },
            "get" | "update" | "__getitem__" | "__setitem__" | "__contains__" | "keys" | "values"
            | "items",
        ) => Ok(Value::BuiltinMethod(Rc::new((v.clone(), name.to_string())))),
        (StdVal::Partial { func, .. }, "func") => Ok(func.clone()),
        (StdVal::Partial { args, .. }, "args") => Ok(Value::Tuple(args.clone())),
        (StdVal::Partial { keywords, .. }, "keywords") => Ok(Value::Dict(keywords.clone())),
        (StdVal::Deque(d), "maxlen") => Ok(match d.maxlen {
            Some(n) => Value::constant(py, n),
            None => Value::none(py),
        }),
        (StdVal::Deque(_) | StdVal::Set(_), _) if !name.starts_with('_') => {
            Ok(Value::BuiltinMethod(Rc::new((v.clone(), name.to_string()))))
        }
        _ => Err(Exit::brk(format!(
            "attribute '{name}' of a {}",
            s.type_name()
        ))),
    }
}

pub fn len(tx: &mut Tracer<'_>, s: &StdVal) -> TResult<Value> {
    let n = match s {
        StdVal::Deque(d) => d.items.borrow().len(),
        StdVal::Set(set) => set.len(tx.py),
        StdVal::ModuleSlice { items, .. } => items.len(),
        StdVal::SigParams { sig } => super::signature::param_names(tx, sig)?.len(),
        StdVal::ModelOutput { .. } => super::model_output::present(tx, s)?.len(),
        StdVal::InstDict { obj } => super::inst_dict::len(tx, obj)?,
        StdVal::DictView { dict, .. } => dict.len(),
        StdVal::ModelOutputView { out, .. } => super::model_output::present(tx, out)?.len(),
        other => {
            return Err(Exit::brk(format!(
                "TypeError: object of type '{}' has no len()",
                other.type_name()
            )))
        }
    };
    Ok(Value::constant(tx.py, n))
}

pub fn truthy_std(tx: &mut Tracer<'_>, s: &StdVal) -> bool {
    match s {
        StdVal::Deque(d) => !d.items.borrow().is_empty(),
        StdVal::Set(set) => set.len(tx.py) != 0,
        StdVal::ModuleSlice { items, .. } => !items.is_empty(),
        StdVal::SigParams { sig } => {
            super::signature::param_names(tx, sig).map_or(true, |n| !n.is_empty())
        }
        StdVal::ModelOutput { .. } => {
            super::model_output::present(tx, s).map_or(true, |p| !p.is_empty())
        }
        StdVal::InstDict { obj } => super::inst_dict::len(tx, obj).map_or(true, |n| n != 0),
        StdVal::DictView { dict, .. } => !dict.is_empty(),
        StdVal::ModelOutputView { out, .. } => {
            super::model_output::present(tx, out).map_or(true, |p| !p.is_empty())
        }
        _ => true,
    }
}

/// `iter(v)` for a modelled value.
pub fn get_iter_std(tx: &mut Tracer<'_>, v: &Value, s: &Rc<StdVal>) -> TResult<Value> {
    let items = match &**s {
        StdVal::Map { .. } | StdVal::Filter { .. } | StdVal::SeqIter { .. } => return Ok(v.clone()),
        StdVal::Deque(d) => d.items.borrow().iter().cloned().collect(),
        StdVal::Set(set) => set.iter_items(tx)?,
        StdVal::ModuleSlice { items, .. } => items.clone(),
        StdVal::SigParams { sig } => super::signature::param_names(tx, sig)?,
        StdVal::ModelOutput { .. } => super::model_output::keys(tx, s)?,
        StdVal::DictView { dict, kind } => kind.items(tx, dict)?,
        StdVal::ModelOutputView { out, kind } => super::model_output::view_items(tx, out, *kind)?,
        StdVal::InstDict { obj } => super::inst_dict::keys(tx, obj)?,
        other => {
            return Err(Exit::brk(format!(
                "'{}' object is not iterable",
                other.type_name()
            )))
        }
    };
    Ok(std(StdVal::SeqIter {
        owner: s.clone(),
        items,
        pos: Cell::new(0),
        version: s.version(),
    }))
}

/// `next(it)` for a modelled iterator.
pub fn iter_next_std(tx: &mut Tracer<'_>, s: &StdVal) -> TResult<Option<Value>> {
    match s {
        StdVal::SeqIter {
            owner,
            items,
            pos,
            version,
        } => {
            if owner.version() != *version {
                return Err(Exit::brk(format!(
                    "RuntimeError: {} changed during iteration",
                    owner.type_name()
                )));
            }
            let i = pos.get();
            let r = items.get(i).cloned();
            if r.is_some() {
                pos.set(i + 1);
            }
            Ok(r)
        }
        StdVal::Map { func, inners } => {
            let mut vals = Vec::with_capacity(inners.len());
            for i in inners {
                match iter_next(tx, i)? {
                    Some(v) => vals.push(v),
                    None => return Ok(None),
                }
            }
            crate::interp::families::call(tx, func, vals, Vec::new()).map(Some)
        }
        StdVal::Filter { func, inner } => loop {
            let Some(v) = iter_next(tx, inner)? else {
                return Ok(None);
            };
            let keep = match func {
                Some(f) => {
                    let r = crate::interp::families::call(tx, f, vec![v.clone()], Vec::new())?;
                    crate::interp::families::truthy(tx, &r)?
                }
                None => crate::interp::families::truthy(tx, &v)?,
            };
            if keep {
                return Ok(Some(v));
            }
        },
        other => Err(Exit::brk(format!(
            "'{}' object is not an iterator",
            other.type_name()
        ))),
    }
}

/// A new set value holding `items` (a `{...}` literal or `set(iterable)`).
pub fn new_set(tx: &mut Tracer<'_>, items: Vec<Value>) -> TResult<Value> {
    let s = std(StdVal::Set(SetVal::new(tx.py).map_err(|e| tx.err(e))?));
    if let Value::Std(sv) = &s {
        super::stdlib_set::set_update(tx, sv, &Value::new_tuple(items))?;
    }
    Ok(s)
}
