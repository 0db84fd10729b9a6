//! `webrtc` module (in progress).
