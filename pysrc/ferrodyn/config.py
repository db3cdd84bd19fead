"""Process-wide settings. Change them by assignment: `ferrodyn.config.recompile_limit = 4`."""

from __future__ import annotations

# Compiles per code object before ferrodyn stops recompiling and runs new inputs eagerly.
recompile_limit: int = 8
# Raise internal errors instead of falling back to eager (for ferrodyn's own debugging).
strict: bool = False
# Upper bound on inlining depth of user functions; deeper calls break the graph.
max_inline_depth: int = 64
