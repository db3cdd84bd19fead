//! The side-effect store (DESIGN.md §2): no pre-existing Python object is mutated while
//! tracing. Attribute stores and deletes, container mutations, global and closure-cell
//! writes and `print`s are recorded in program order (`store.rs`), seen by later reads in
//! the same trace (`mutate.rs`), and replayed after the graph runs (`replay.rs`). Objects
//! created in the trace (`new_objects.rs`) are rebuilt only when they escape, once per
//! call (`table.rs`). A trace that is abandoned applies nothing.

pub mod mutate;
pub mod new_objects;
pub mod replay;
pub mod store;
pub mod table;

pub use replay::ReplayPlan;
pub use store::SideEffects;
