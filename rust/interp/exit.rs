//! The ways a trace can stop short of a graph (DESIGN.md §3). Kept distinct.

use pyo3::prelude::*;

/// Where in the user's program something happened.
#[derive(Clone, Debug, Default)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub function: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} in {}", self.file, self.line, self.function)
    }
}

#[derive(Debug)]
pub enum Exit {
    /// The step cannot be traced: compile what came before, run the rest eagerly.
    Break { reason: String, at: Location },
    /// The traced program raised: handlers in the trace's frames see it (exceptions.rs);
    /// one that escapes the compiled frame runs it eagerly.
    Observed {
        exc: std::rc::Rc<super::exceptions::ExcVal>,
        at: Location,
    },
    /// Give up on this frame: run it eagerly.
    Skip { reason: String },
    /// Something the user asked for that is impossible: raised to the user.
    Hard(PyErr),
    /// A bug in ferrodyn: reported, the frame runs eagerly.
    Internal { message: String, at: Location },
}

impl Exit {
    pub fn brk(reason: impl Into<String>) -> Exit {
        Exit::Break {
            reason: reason.into(),
            at: Location::default(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Exit {
        Exit::Internal {
            message: message.into(),
            at: Location::default(),
        }
    }

    /// Fill in the location if the exit was raised without one (innermost frame wins).
    pub fn located(mut self, loc: &Location) -> Exit {
        match &mut self {
            Exit::Break { at, .. } | Exit::Observed { at, .. } | Exit::Internal { at, .. }
                if at.file.is_empty() =>
            {
                *at = loc.clone();
            }
            _ => {}
        }
        self
    }

    pub fn describe(&self, py: Python<'_>) -> String {
        match self {
            Exit::Break { reason, at } => format!("graph break: {reason} at {at}"),
            Exit::Observed { exc, at } => {
                format!(
                    "exception raised by traced code: {} at {at}",
                    exc.describe(py)
                )
            }
            Exit::Skip { reason } => format!("frame skipped: {reason}"),
            Exit::Hard(e) => format!("error: {}", e.value(py)),
            Exit::Internal { message, at } => format!("ferrodyn internal error: {message} at {at}"),
        }
    }
}

pub type TResult<T> = Result<T, Exit>;

/// Convert a Python error raised while ferrodyn was computing something into an exit.
/// `ferrodyn.exc.Unsupported` raised by a Python tracker is a graph break; anything else
/// raised by our own Python code is an internal error.
pub fn from_pyerr(py: Python<'_>, err: PyErr, unsupported: &Bound<'_, PyAny>) -> Exit {
    if err.get_type(py).is_subclass(unsupported).unwrap_or(false) {
        return Exit::brk(err.value(py).to_string());
    }
    if err.get_type(py).name().is_ok_and(|n| n == "SkipFrame") {
        return Exit::Skip {
            reason: err.value(py).to_string(),
        };
    }
    // A shape constraint the user gave (mark_dynamic ranges) that this call violates, or
    // a member access on an opaque object: errors the user sees, as with torch.compile.
    if err
        .get_type(py)
        .name()
        .is_ok_and(|n| n == "ConstraintViolationError" || n == "UnsafeScriptObjectError")
    {
        return Exit::Hard(err);
    }
    Exit::internal(format!(
        "{}: {}",
        err.get_type(py)
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default(),
        err.value(py)
    ))
}

const UNCAUGHT: &str = "raised by traced code is not caught";

/// The split reason for an exception leaving the compiled frame uncaught.
pub fn uncaught_exception_reason(exception: &str) -> String {
    format!("exception {exception} {UNCAUGHT}")
}

/// The observe event of a split: an exception the traced code does not catch ends the
/// graph where it is raised, but is not a graph break (torch.compile does not count one).
pub fn split_event(reason: &str) -> &'static str {
    if reason.ends_with(UNCAUGHT) {
        "exception"
    } else {
        "break"
    }
}
