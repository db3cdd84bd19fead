//! Decoding and assembling CPython code objects (3.11 first; one opcode table per version).
