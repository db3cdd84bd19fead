//! Guards: sources (access paths), leaf checks, the guard tree, and the per-code cache.

mod access;
pub mod cache;
mod dict_tag;
mod global_state;
mod global_state_native;
pub mod leaf;
mod module_memory;
mod node;
pub mod source;
mod tensor_impl;
pub mod tensor_meta;
mod tensor_native;
pub mod tree;
mod tree_build;

#[cfg(test)]
mod tests;

pub use access::{seq_iterator_state, IterPart, IterView};
pub use cache::{CacheEntry, CodeCache, DEFAULT_RECOMPILE_LIMIT};
pub use dict_tag::dict_tags_supported;
pub use global_state::{global_state_readers, GlobalState};
pub use leaf::Guard;
pub use source::{DictKey, Source};
pub use tensor_meta::TensorMeta;
pub use tensor_native::{
    init_native_tensor_reader, native_tensor_reader_active, native_tensor_reader_note,
    torch_lib_dir,
};
pub use tree::GuardTree;
