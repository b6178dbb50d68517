//! Integration tests of pbx-sip-net.
