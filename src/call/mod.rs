//! `call` module (in progress).
