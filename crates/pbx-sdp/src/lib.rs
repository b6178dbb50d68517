//! Sans-IO SDP (RFC 8866) parse/print and offer/answer helpers for a B2BUA.
