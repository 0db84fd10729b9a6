//! `sip` module (in progress).
