//! Sans-IO SIP message model: zero-copy parse and print, URIs, typed headers, stream framing.
