//! The core and gofer suite (`tests/suite`) on the seccomp-notify platform.

/// The platform every sandbox of this target uses.
const PLATFORM: &str = "seccomp-notify";

#[path = "suite/mod.rs"]
mod suite;
