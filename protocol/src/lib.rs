//! The sentry-gofer protocol.
//!
//! One request, one response, each a single `SOCK_SEQPACKET` message (so framing is the
//! kernel's); fds travel beside the bytes with `SCM_RIGHTS`, several per message where a request
//! yields several. Every request names the identity it acts for. Decoding borrows from the
//! received buffer and checks every bound: a malformed frame is an error, never a panic.

mod codec;
mod message;
pub mod thread_creds;
mod transport;

pub use codec::{DecodeError, Reader, Writer};
pub use message::timespecs;
pub use message::{
    Identity, Loc, Op, Request, Response, MAX_BATCH, MAX_FRAME, MAX_GROUPS, MAX_HANDED_IN,
    MAX_OUTSIDE, MAX_PATH, RELEASED,
};
pub use transport::{
    recv_frame, recv_frame_polling, send_frame, FrameBuf, TransportError, MAX_FDS,
};

/// The decoders' contract, for the fuzz target and its stable stand-in: decoding `data` never
/// panics, and whatever decodes re-encodes to exactly `data`.
pub fn assert_roundtrip(data: &[u8]) {
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
}
