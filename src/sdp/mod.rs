//! `sdp` module (in progress).
