//! Sans-IO SIP transaction (RFC 3261 §17, RFC 6026) and dialog engine.
