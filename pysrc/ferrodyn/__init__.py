"""ferrodyn: torch.compile's bytecode tracer rebuilt around a Rust core."""
