//! `cargo fuzz run decode`: the request and response decoders never panic, and whatever decodes
//! re-encodes to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| rvisor_protocol::assert_roundtrip(data));
