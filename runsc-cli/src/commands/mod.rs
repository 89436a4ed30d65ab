//! One file per subcommand.

pub mod do_cmd;
pub mod syscalls;
