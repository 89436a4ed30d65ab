//! The core and gofer suite (`tests/suite`) on the ptrace platform.

/// The platform every sandbox of this target uses.
const PLATFORM: &str = "ptrace";

#[path = "suite/mod.rs"]
mod suite;
