//! `media` module (in progress).
