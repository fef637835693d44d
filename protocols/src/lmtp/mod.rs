//! LMTP (RFC 2033) session (in progress).
