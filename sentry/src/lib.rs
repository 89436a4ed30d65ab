//! rvisor's sentry: traps a guest's system calls and services them in user space.
//!
//! The guest runs natively under a seccomp filter compiled from [`syscalls::TABLE`]; calls the
//! table marks as trapped reach a [`platform::Platform`], and a [`server::Worker`] answers them
//! with the handler of the call's family.

pub mod fd_cache;
pub mod file_identity;
pub mod filter;
pub mod gofer_client;
pub mod guest;
pub mod landlock;
pub mod loader;
pub mod own_filter;
pub mod pidfd;
pub mod platform;
pub mod procfs;
pub mod raise;
pub mod sandbox;
mod scaling;
pub mod server;
pub mod strace;
pub mod syscalls;
pub mod task;
