//! `cargo fuzz run decode`: the request and response decoders never panic, and whatever decodes
//! re-encodes to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvisor_protocol::{Request, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok((who, req)) = Request::decode(data) {
        let mut again = Vec::new();
        req.encode(who, &mut again);
        assert_eq!(again, data);
    }
    if let Ok(resp) = Response::decode(data) {
        let mut again = Vec::new();
        resp.encode(&mut again);
        assert_eq!(again, data);
    }
});
