//! Cache entries from a trace (`CompiledCode::compile`): the traced graph handed to the
//! backend, with its guard tree, shape guard, glue for a split trace and side-effect replay;
//! or, for a trace that failed, an entry that runs the frame eagerly (`failure_entry`),
//! after reporting the break.

use super::*;

impl CompiledCode {
    pub(super) fn compile(
        &self,
        py: Python<'_>,
        state: GlobalState,
        mut out: TraceOutput,
    ) -> PyResult<CacheEntry<Arc<Artifact>>> {
        // A split trace: build (or reuse) the glue first; if that fails the frame runs
        // eagerly under the guards installed so far.
        let split = match out.split.take() {
            Some(sp) if self.fullgraph => {
                let exc = py.import_cached("ferrodyn.exc")?.getattr("Unsupported")?;
                return Err(PyErr::from_value(exc.call1((format!(
                    "ferrodyn (fullgraph=True): graph break: {} at {}",
                    sp.reason, sp.at
                ),))?));
            }
            Some(sp) => {
                // A break in a resume function: split the original code at the same point.
                let mut sp = sp;
                let (spec, func, caches) = match self.origin.as_ref() {
                    Some(o) if sp.map_to_origin(o.body_start, &o.slot_origin) => {
                        (o.spec.clone(), o.func.bind(py).clone(), o.caches.clone())
                    }
                    _ => (
                        self.spec.clone(),
                        self.func.bind(py).clone(),
                        self.caches.clone(),
                    ),
                };
                let ctx = crate::glue::GlueContext {
                    spec: &spec,
                    func: &func,
                    compiler: self.compiler.bind(py),
                    recompile_limit: self.limit,
                    caches: &caches,
                };
                observe(py, crate::interp::exit::split_event(&sp.reason), |d| {
                    d.set_item("fn", &self.spec.qualname)?;
                    d.set_item("reason", &sp.reason)?;
                    d.set_item("file", &sp.at.file)?;
                    d.set_item("line", sp.at.line)?;
                    d.set_item("function", &sp.at.function)
                });
                match crate::glue::glue_for(&ctx, &sp) {
                    Ok(g) => Some((sp, g)),
                    Err(e) => {
                        logs_call(
                            py,
                            "graph_breaks",
                            format!(
                                "{}: cannot build graph-break glue ({e}); running eagerly",
                                self.spec.qualname
                            ),
                        );
                        let tree = GuardTree::build(py, &out.guards, &[])?;
                        return Ok(CacheEntry {
                            shape_guard: None,
                            state,
                            tree,
                            artifact: Arc::new(Artifact::Eager { reason: sp.reason }),
                        });
                    }
                }
            }
            None => None,
        };
        let outputs = PyList::new(py, out.graph_outputs.iter().map(|o| o.bind(py)))?;
        let (compiled, ops, shape_guard): (Bound<'_, PyAny>, usize, Option<Py<PyAny>>) = py
            .import_cached("ferrodyn.output")?
            .call_method1(
                "compile_graph",
                (
                    out.graph_builder.bind(py),
                    outputs,
                    self.compiler.bind(py),
                    &self.spec.qualname,
                ),
            )?
            .extract()?;
        self.caches.ops_compiled.fetch_add(ops, Ordering::Relaxed);
        // A resume function's ops count for the function it continues too.
        if let Some(o) = &self.origin {
            o.caches.ops_compiled.fetch_add(ops, Ordering::Relaxed);
        }
        let guards_start = std::time::Instant::now();
        // Identity constraints need both sources fetched: append the missing ones after
        // the sources the artifact indexes (so existing indices stay valid).
        let mut fetch = out.fetch.clone();
        let slot_of = |s: &Arc<crate::guards::Source>,
                       fetch: &mut Vec<Arc<crate::guards::Source>>| {
            fetch.iter().position(|f| f == s).unwrap_or_else(|| {
                fetch.push(s.clone());
                fetch.len() - 1
            })
        };
        let constraints: Vec<(usize, usize, bool, String)> = out
            .identity
            .iter()
            .map(|(a, b, same)| {
                let (ia, ib) = (slot_of(a, &mut fetch), slot_of(b, &mut fetch));
                (ia, ib, *same, format!("{} is {}", a.render(), b.render()))
            })
            .collect();
        let mut tree = GuardTree::build(py, &out.guards, &fetch)?;
        for (a, b, same, what) in constraints {
            tree.add_identity_constraint(a, b, same, what);
        }
        let guards_s = guards_start.elapsed().as_secs_f64();
        observe(py, "guards", |d| {
            d.set_item("fn", &self.spec.qualname)?;
            let mut lines = tree.describe();
            lines.extend(shape_guard_lines(py, shape_guard.as_ref()));
            d.set_item("guards", lines)?;
            d.set_item("seconds", guards_s)
        });
        let artifact = match split {
            Some((mut sp, glue)) => Artifact::Split {
                compiled: compiled.unbind(),
                n_inputs: out.n_graph_inputs,
                stack: {
                    // A call that broke inside an inlined user function: call a compiled
                    // wrapper of the callee, so its own frame splits at its break.
                    if let Some(Some(t)) = sp.wrap_callee.and_then(|i| sp.stack.get_mut(i)) {
                        let helper = py
                            .import_cached("ferrodyn._glue")?
                            .getattr("compiled_callee")?
                            .unbind();
                        let inner = std::mem::replace(t, OutTemplate::Const(py.None()));
                        let limit = self.limit.into_pyobject(py)?.into_any().unbind();
                        *t = OutTemplate::Call(
                            helper,
                            vec![
                                inner,
                                OutTemplate::Const(self.compiler.clone_ref(py)),
                                OutTemplate::Const(limit),
                            ],
                        );
                    }
                    sp.stack
                },
                locals: sp.locals.into_iter().map(|(_, t)| t).collect(),
                glue,
                replay: out.replay,
            },
            None => Artifact::Graph {
                compiled: compiled.unbind(),
                n_inputs: out.n_graph_inputs,
                template: out.template,
                replay: out.replay,
            },
        };
        Ok(CacheEntry {
            shape_guard,
            state,
            tree,
            artifact: Arc::new(artifact),
        })
    }

    pub(super) fn failure_entry(
        &self,
        py: Python<'_>,
        state: GlobalState,
        fail: TraceFailure,
    ) -> PyResult<CacheEntry<Arc<Artifact>>> {
        let reason = fail.exit.describe(py);
        let event = match &fail.exit {
            Exit::Break { reason: why, at } | Exit::Internal { message: why, at } => {
                Some((why.clone(), at))
            }
            Exit::Observed { exc, at } => Some((
                format!("exception raised by traced code: {}", exc.describe(py)),
                at,
            )),
            _ => None,
        };
        if let Some((why, at)) = event {
            observe(py, "break", |d| {
                d.set_item("fn", &self.spec.qualname)?;
                d.set_item("reason", &why)?;
                d.set_item("file", &at.file)?;
                d.set_item("line", at.line)?;
                d.set_item("function", &at.function)
            });
        }
        match fail.exit {
            Exit::Hard(e) => return Err(e),
            Exit::Break { .. } | Exit::Observed { .. } if self.fullgraph => {
                let exc = py.import_cached("ferrodyn.exc")?.getattr("Unsupported")?;
                return Err(PyErr::from_value(
                    exc.call1((format!("ferrodyn (fullgraph=True): {reason}"),))?,
                ));
            }
            Exit::Internal { .. } if self.strict(py) || self.fullgraph => {
                let exc = py.import_cached("ferrodyn.exc")?.getattr("InternalError")?;
                return Err(PyErr::from_value(exc.call1((reason,))?));
            }
            _ => {}
        }
        logs_call(
            py,
            "graph_breaks",
            format!("{}: running eagerly: {reason}", self.spec.qualname),
        );
        if let Exit::Skip { reason: why } = &fail.exit {
            observe(py, "skip", |d| {
                d.set_item("fn", &self.spec.qualname)?;
                d.set_item("reason", why)
            });
            logs_call(
                py,
                "graph_breaks",
                format!(
                    "{}: frame skipped (runs eagerly): {why}",
                    self.spec.qualname
                ),
            );
        }
        let tree = GuardTree::build(py, &fail.guards, &[])?;
        Ok(CacheEntry {
            shape_guard: None,
            state,
            tree,
            artifact: Arc::new(Artifact::Eager { reason }),
        })
    }
}
