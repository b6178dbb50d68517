//! Locating and loading the shared SIP conformance corpora (filled in with the parser).
