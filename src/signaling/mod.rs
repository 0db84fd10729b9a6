//! `signaling` module (in progress).
