#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| siphon::fuzzing::sip_challenge(data));
