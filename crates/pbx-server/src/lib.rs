//! CloudPBX assembly: configuration, and (as the platform grows) the wiring of transports,
//! engines, store and API into one process that boots in-process for tests.

pub mod config;
