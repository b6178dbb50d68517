//! Sans-IO SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760): stateless nonces, server and client side.
