//! `config` module (in progress).
