//! rvisor's gofer: the only process that resolves paths on the host.
//!
//! It holds the sandbox root as a directory fd (and is pivoted into it), and serves the sentry's
//! requests one at a time. Every lookup goes through `openat2` with
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, so `..`, absolute symlinks, symlinks the guest
//! plants and magic links cannot leave the root. Each request runs with the filesystem identity
//! of the guest thread it serves.

pub mod filter;
mod identity;
mod idmap;
mod meta;
mod mutate;
mod open;
mod resolve;
mod server;
mod socket;

pub use idmap::{IdMap, IdRange};
/// openat2 with retry on EAGAIN, for the runtime's own in-tree lookups (mount points).
pub use resolve::{openat2, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};
pub use server::{Gofer, GoferError, Outcome};
