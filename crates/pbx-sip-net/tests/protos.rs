//! PROTOS c07-sip over UDP.
