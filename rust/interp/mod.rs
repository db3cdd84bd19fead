//! The symbolic interpreter: values, frames, and the instruction dispatch loop.
