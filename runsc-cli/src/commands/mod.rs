//! One module per subcommand.

pub mod bench;
pub mod create;
pub mod delete;
pub mod do_cmd;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod syscalls;
pub mod wait;
