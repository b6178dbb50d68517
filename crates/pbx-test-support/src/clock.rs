//! Virtual clock for sans-IO tests (filled in with the transaction engine).
