//! Guards: sources (access paths), leaf checks, the guard tree, and the per-code cache.
