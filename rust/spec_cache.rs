//! Function-spec cache: code object -> decoded program + argument-binding spec.
//!
//! Decoding a code object and reading its metadata happens once per code object; every
//! later trace (and every inlined call) reuses the `CodeSpec`. Binding follows CPython's
//! rules exactly (positional, positional-only, keyword, keyword-only, defaults, `*args`,
//! `**kwargs`) and reports errors with CPython's messages, so they can surface as the
//! same `TypeError` the user would see eagerly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::bytecode::{decode_code_object, Decoded};

pub const CO_VARARGS: u32 = 0x04;
pub const CO_VARKEYWORDS: u32 = 0x08;
pub const CO_GENERATOR: u32 = 0x20;
pub const CO_COROUTINE: u32 = 0x80;
pub const CO_ITERABLE_COROUTINE: u32 = 0x100;
pub const CO_ASYNC_GENERATOR: u32 = 0x200;

pub struct CodeSpec {
    pub code: Py<PyAny>,
    pub decoded: Decoded,
    pub name: String,
    pub qualname: String,
    pub filename: String,
    pub first_line: u32,
    pub argcount: usize,
    pub posonlyargcount: usize,
    pub kwonlyargcount: usize,
    pub flags: u32,
    pub varnames: Vec<String>,
    /// Names of every fast slot, in CPython 3.11 "localsplus" order:
    /// varnames, then cellvars that are not arguments, then freevars.
    pub localsplus: Vec<String>,
    /// Localsplus index of each free variable (closure cell i lands there).
    pub free_start: usize,
    /// Localsplus indices of the cell variables (arguments captured by inner functions,
    /// then the other cellvars), in `co_cellvars` order.
    pub cell_slots: Vec<usize>,
    pub nfree: usize,
    pub consts: Vec<Py<PyAny>>,
    pub names: Vec<String>,
    /// Live locals per instruction, computed at the first graph break in this code.
    liveness: OnceLock<Option<crate::bytecode::liveness::Liveness>>,
}

impl CodeSpec {
    fn read(code: &Bound<'_, PyAny>) -> PyResult<CodeSpec> {
        let mut decoded = decode_code_object(code)?;
        decoded.split_superinstructions();
        let strs = |attr: &str| -> PyResult<Vec<String>> { code.getattr(attr)?.extract() };
        let varnames = strs("co_varnames")?;
        let cellvars = strs("co_cellvars")?;
        let freevars = strs("co_freevars")?;
        let mut localsplus = varnames.clone();
        let mut cell_slots = Vec::with_capacity(cellvars.len());
        for c in &cellvars {
            match varnames.iter().position(|v| v == c) {
                Some(i) => cell_slots.push(i),
                None => {
                    cell_slots.push(localsplus.len());
                    localsplus.push(c.clone());
                }
            }
        }
        let free_start = localsplus.len();
        localsplus.extend(freevars.iter().cloned());
        let consts: Vec<Py<PyAny>> = code
            .getattr("co_consts")?
            .cast_into::<PyTuple>()?
            .iter()
            .map(|c| c.unbind())
            .collect();
        Ok(CodeSpec {
            code: code.clone().unbind(),
            decoded,
            name: code.getattr("co_name")?.extract()?,
            qualname: code.getattr("co_qualname")?.extract()?,
            filename: code.getattr("co_filename")?.extract()?,
            first_line: code.getattr("co_firstlineno")?.extract()?,
            argcount: code.getattr("co_argcount")?.extract()?,
            posonlyargcount: code.getattr("co_posonlyargcount")?.extract()?,
            kwonlyargcount: code.getattr("co_kwonlyargcount")?.extract()?,
            flags: code.getattr("co_flags")?.extract()?,
            varnames,
            nfree: freevars.len(),
            localsplus,
            free_start,
            cell_slots,
            consts,
            names: strs("co_names")?,
            liveness: OnceLock::new(),
        })
    }

    /// Whether fast slot `slot` may still be read at instruction `index` (so a continuation
    /// starting there needs it). Cells always are; so is every slot of code that can read
    /// its locals by name (`locals()`, `vars()`, `eval`, `exec`, `dir()`, frame access),
    /// and `co_varnames[0]` where zero-argument `super()` reads it.
    pub fn is_live(&self, index: usize, slot: usize) -> bool {
        if self.cell_slots.contains(&slot) || slot >= self.free_start {
            return true;
        }
        let liveness = self.liveness.get_or_init(|| {
            const BY_NAME: [&str; 8] = [
                "locals",
                "vars",
                "eval",
                "exec",
                "dir",
                "breakpoint",
                "_getframe",
                "currentframe",
            ];
            if self.names.iter().any(|n| BY_NAME.contains(&n.as_str())) {
                return None;
            }
            Some(crate::bytecode::liveness::live_locals(
                &self.decoded,
                self.free_start,
            ))
        });
        match liveness {
            None => true,
            Some(_) if slot == 0 && self.names.iter().any(|n| n == "super") => true,
            Some(l) => l.is_live(index, slot),
        }
    }

    /// Whether a continuation of this code receives its free variables' cells as
    /// arguments (so it has no closure of its own and serves every function object of
    /// this code). Not for code that uses `__class__` (zero-argument `super()`), which
    /// CPython looks up among the free variables.
    pub fn frees_as_args(&self) -> bool {
        !self.localsplus[self.free_start..]
            .iter()
            .any(|n| n == "__class__")
    }

    /// How many leading fast slots a continuation receives: locals and cells, and the free
    /// variables too when [`frees_as_args`](Self::frees_as_args).
    pub fn passed_slots(&self) -> usize {
        if self.frees_as_args() {
            self.localsplus.len()
        } else {
            self.free_start
        }
    }

    /// The slots a continuation keeps as cells: the cell variables, then the free
    /// variables it receives as arguments.
    pub fn passed_cells(&self) -> Vec<usize> {
        let mut v = self.cell_slots.clone();
        if self.frees_as_args() {
            v.extend(self.free_start..self.localsplus.len());
        }
        v
    }

    pub fn is_generator_like(&self) -> bool {
        self.flags & (CO_GENERATOR | CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR) != 0
    }

    pub fn has_varargs(&self) -> bool {
        self.flags & CO_VARARGS != 0
    }

    pub fn has_varkw(&self) -> bool {
        self.flags & CO_VARKEYWORDS != 0
    }

    /// Number of named parameters (positional + keyword-only), excluding *args/**kwargs.
    pub fn n_named(&self) -> usize {
        self.argcount + self.kwonlyargcount
    }

    /// How a call's arguments land in the frame's first slots.
    ///
    /// `get_default(i)` yields `__defaults__[i]`, `get_kwdefault(name)` the keyword-only
    /// default; they are called only for defaults the call actually uses (so a trace
    /// guards only those). `make_tuple`/`make_dict` build `*args` / `**kwargs`.
    #[allow(clippy::too_many_arguments)]
    pub fn bind<T: Clone, E>(
        &self,
        args: Vec<T>,
        kwargs: Vec<(String, T)>,
        n_defaults: usize,
        mut get_default: impl FnMut(usize) -> Result<T, E>,
        mut get_kwdefault: impl FnMut(&str) -> Result<Option<T>, E>,
        make_tuple: impl FnOnce(Vec<T>) -> T,
        make_dict: impl FnOnce(Vec<(String, T)>) -> T,
        type_error: impl Fn(String) -> E,
    ) -> Result<Vec<Option<T>>, E> {
        let fname = &self.qualname;
        let n_named = self.n_named();
        let mut slots: Vec<Option<T>> = vec![None; self.localsplus.len().max(n_named + 2)];
        let nargs = args.len();
        let mut extra_pos = Vec::new();
        for (i, a) in args.into_iter().enumerate() {
            if i < self.argcount {
                slots[i] = Some(a);
            } else {
                extra_pos.push(a);
            }
        }
        let mut extra_kw = Vec::new();
        for (name, v) in kwargs {
            let pos = self.varnames[..n_named]
                .iter()
                .position(|n| *n == name)
                .filter(|&p| p >= self.posonlyargcount);
            match pos {
                Some(p) => {
                    if slots[p].is_some() {
                        return Err(type_error(format!(
                            "{fname}() got multiple values for argument '{name}'"
                        )));
                    }
                    slots[p] = Some(v);
                }
                None => {
                    if self.has_varkw() {
                        if extra_kw.iter().any(|(n, _): &(String, T)| *n == name) {
                            return Err(type_error(format!(
                                "{fname}() got multiple values for keyword argument '{name}'"
                            )));
                        }
                        extra_kw.push((name, v));
                    } else if self.varnames[..self.posonlyargcount].contains(&name) {
                        return Err(type_error(format!(
                            "{fname}() got some positional-only arguments passed as keyword arguments: '{name}'"
                        )));
                    } else {
                        return Err(type_error(format!(
                            "{fname}() got an unexpected keyword argument '{name}'"
                        )));
                    }
                }
            }
        }
        // CPython binds keywords first: their errors win over too many positionals.
        if !extra_pos.is_empty() && !self.has_varargs() {
            let given = nargs;
            let expect = self.argcount;
            let n_def = n_defaults.min(expect);
            let takes = if n_def > 0 {
                format!("from {} to {} positional arguments", expect - n_def, expect)
            } else {
                format!(
                    "{} positional argument{}",
                    expect,
                    if expect == 1 { "" } else { "s" }
                )
            };
            let kwonly_given = slots[self.argcount..n_named]
                .iter()
                .filter(|s| s.is_some())
                .count();
            let kwonly = if kwonly_given > 0 {
                format!(
                    " positional argument{} (and {} keyword-only argument{})",
                    if given == 1 { "" } else { "s" },
                    kwonly_given,
                    if kwonly_given == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            return Err(type_error(format!(
                "{fname}() takes {takes} but {given}{kwonly} {} given",
                if given == 1 && kwonly_given == 0 {
                    "was"
                } else {
                    "were"
                }
            )));
        }
        // Defaults for missing positionals.
        let first_default = self.argcount.saturating_sub(n_defaults);
        let mut missing = Vec::new();
        #[allow(clippy::needless_range_loop)]
        for i in 0..self.argcount {
            if slots[i].is_none() {
                if i >= first_default {
                    slots[i] = Some(get_default(i - first_default)?);
                } else {
                    missing.push(self.varnames[i].clone());
                }
            }
        }
        if !missing.is_empty() {
            return Err(type_error(missing_message(fname, "positional", &missing)));
        }
        let mut missing_kw = Vec::new();
        #[allow(clippy::needless_range_loop)]
        for i in self.argcount..n_named {
            if slots[i].is_none() {
                match get_kwdefault(&self.varnames[i])? {
                    Some(v) => slots[i] = Some(v),
                    None => missing_kw.push(self.varnames[i].clone()),
                }
            }
        }
        if !missing_kw.is_empty() {
            return Err(type_error(missing_message(
                fname,
                "keyword-only",
                &missing_kw,
            )));
        }
        let mut next = n_named;
        if self.has_varargs() {
            slots[next] = Some(make_tuple(extra_pos));
            next += 1;
        }
        if self.has_varkw() {
            slots[next] = Some(make_dict(extra_kw));
        }
        slots.truncate(self.localsplus.len());
        Ok(slots)
    }
}

fn missing_message(fname: &str, what: &str, names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    let list = match quoted.len() {
        1 => quoted[0].clone(),
        2 => format!("{} and {}", quoted[0], quoted[1]),
        _ => format!(
            "{}, and {}",
            quoted[..quoted.len() - 1].join(", "),
            quoted[quoted.len() - 1]
        ),
    };
    format!(
        "{fname}() missing {} required {what} argument{}: {list}",
        names.len(),
        if names.len() == 1 { "" } else { "s" }
    )
}

/// The cache itself: keyed by code object identity; holds the code object alive so the
/// key cannot be reused. Cleared by `ferrodyn.reset()`.
#[derive(Default)]
pub struct SpecCache {
    map: Mutex<HashMap<usize, Arc<CodeSpec>>>,
}

impl SpecCache {
    pub fn get(&self, code: &Bound<'_, PyAny>) -> PyResult<Arc<CodeSpec>> {
        let key = code.as_ptr() as usize;
        if let Some(s) = self.map.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(s);
        }
        let spec = Arc::new(CodeSpec::read(code)?);
        if let Ok(mut m) = self.map.lock() {
            m.insert(key, spec.clone());
        }
        Ok(spec)
    }

    pub fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }
}

pub static SPEC_CACHE: std::sync::LazyLock<SpecCache> =
    std::sync::LazyLock::new(SpecCache::default);
