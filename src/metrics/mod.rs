//! `metrics` module (in progress).
