//! The integration suite of the sandbox core and the gofer, run once per platform: each test
//! target that includes this module names its platform in `PLATFORM` (`teardown` has targets of
//! its own, since it must run alone).

mod prelude;

mod attr_races;
mod confinement;
mod cred_races;
mod do_basics;
mod escape_classes;
mod escapes;
mod exec_threads;
mod fail_closed;
mod guest_behaviour;
mod identity;
mod interrupted_calls;
mod isolation;
mod last_close;
mod linux_edges;
mod open_flags;
mod overlay;
mod programs;
mod reopen;
mod rootless;
mod sentry_services;
mod sockets;
mod strace;
