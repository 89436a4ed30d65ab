//! The rvisor runtime: launches sandboxes (a sentry process and a guest) and reports their fate.
//!
//! The binary in `main.rs` only parses the command line and calls into here.

pub mod oci;
pub mod sandbox;
