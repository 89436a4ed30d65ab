//! The commands' own output. Stdout may be a closed pipe or a full disk: that is an error to
//! report (or, for a reader that went away, to end quietly on), never a panic.

use std::fmt;
use std::io::{self, Write};

/// Exit status for a reader that went away (a closed pipe), as a process killed by SIGPIPE
/// shows in a shell.
pub const BROKEN_PIPE_EXIT: i32 = 128 + libc::SIGPIPE;

/// Writing the command's output failed.
#[derive(Debug)]
pub struct OutputError(pub io::Error);

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "writing output: {}", self.0)
    }
}

impl std::error::Error for OutputError {}

impl OutputError {
    /// Whether the reader went away (EPIPE): the command ends quietly.
    pub fn is_broken_pipe(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

/// Runs `write` on the locked stdout, then flushes it: every failure is an [`OutputError`].
pub fn stdout(
    write: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>,
) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(OutputError)
}

/// Writes `text` and a newline to stdout.
pub fn line(text: impl fmt::Display) -> Result<(), OutputError> {
    stdout(|out| writeln!(out, "{text}"))
}

/// Writes one line to stderr; a stderr that fails loses it (there is nowhere else to say so).
pub fn eprint_line(text: impl fmt::Display) {
    let _ = writeln!(io::stderr(), "{text}");
}
