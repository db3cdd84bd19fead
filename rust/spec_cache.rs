//! Function-spec cache: code object -> decoded program + argument-binding spec.
