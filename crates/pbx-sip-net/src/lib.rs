//! Tokio SIP transports (UDP, TCP, TLS; IPv4 and IPv6) driving pbx-sip-engine.
