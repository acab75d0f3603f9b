//! Empty: the canary exists for its dependency, not its code.
