//! SIPp scenarios against the running transport.
