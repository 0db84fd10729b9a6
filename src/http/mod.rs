//! `http` module (in progress).
