//! `--strace`: one line per trapped call, arguments decoded, written before the reply so that
//! the strings shown are those the call was made with.

use std::fmt::Write as _;
use std::io::Write;

use bumpalo::collections::String as ArenaString;
use parking_lot::Mutex;

use crate::guest::MAX_STRING;
use crate::platform::Reply;
use crate::syscalls::{Arg, Ctx, Entry};

/// Longest string shown before it is elided, as `strace -s`.
const SHOW: usize = 64;
/// Most argv entries shown.
const SHOW_ARGV: usize = 16;

/// Where trace lines go.
pub struct Strace {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Strace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Strace")
    }
}

impl Strace {
    /// Trace lines go to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Strace {
            out: Mutex::new(out),
        }
    }

    /// Decodes the call's arguments, while the guest is still stopped in it.
    pub fn begin<'a>(&self, ctx: &Ctx<'a>, entry: &Entry) -> ArenaString<'a> {
        let mut line = ArenaString::new_in(ctx.arena);
        let pid = ctx
            .sandbox
            .tasks
            .ids(ctx.trap.tid)
            .map(|i| i.ns_tid)
            .unwrap_or(0);
        let _ = write!(line, "[pid {pid:>5}] ");
        if entry.nr < 0 {
            let _ = write!(line, "syscall_{}(", ctx.trap.nr);
        } else {
            let _ = write!(line, "{}(", entry.name);
        }
        for (i, kind) in entry.args.iter().enumerate() {
            if i > 0 {
                line.push_str(", ");
            }
            format_arg(&mut line, ctx, *kind, ctx.arg(i));
        }
        line.push(')');
        line
    }

    /// Adds the result and writes the line.
    pub fn finish(&self, mut line: ArenaString<'_>, reply: Reply) {
        match reply {
            Reply::Value(v) if v > 0xffff => {
                let _ = write!(line, " = {v:#x}");
            }
            Reply::Value(v) => {
                let _ = write!(line, " = {v}");
            }
            Reply::Errno(e) => {
                let _ = write!(line, " = -1 {e:?} ({})", e.desc());
            }
            Reply::Continue => line.push_str(" = ? <runs natively>"),
            Reply::Fd { .. } => line.push_str(" = <fd>"),
        }
        line.push('\n');
        let _ = self.out.lock().write_all(line.as_bytes());
    }
}

fn push_string(line: &mut ArenaString<'_>, bytes: &[u8]) {
    line.push('"');
    for &b in bytes.iter().take(SHOW) {
        match b {
            b'"' => line.push_str("\\\""),
            b'\\' => line.push_str("\\\\"),
            b'\n' => line.push_str("\\n"),
            0x20..=0x7e => line.push(b as char),
            _ => {
                let _ = write!(line, "\\x{b:02x}");
            }
        }
    }
    line.push('"');
    if bytes.len() > SHOW {
        line.push_str("...");
    }
}

fn format_arg(line: &mut ArenaString<'_>, ctx: &Ctx<'_>, kind: Arg, raw: u64) {
    match kind {
        Arg::Int => {
            let _ = write!(line, "{}", raw as i64 as i32);
        }
        Arg::Hex => {
            let _ = write!(line, "{raw:#x}");
        }
        Arg::Ptr if raw == 0 => line.push_str("NULL"),
        Arg::Ptr => {
            let _ = write!(line, "{raw:#x}");
        }
        Arg::Str => match ctx.guest.read_cstr(ctx.arena, raw, MAX_STRING) {
            Ok(s) => push_string(line, s),
            Err(_) => {
                let _ = write!(line, "{raw:#x}");
            }
        },
        Arg::StrLen(n) => {
            let len = (ctx.arg(n as usize) as usize).min(SHOW + 1);
            let buf = ctx.arena.alloc_slice_fill_copy(len, 0u8);
            match ctx.guest.read_exact(raw, buf) {
                Ok(()) => push_string(line, buf),
                Err(_) => {
                    let _ = write!(line, "{raw:#x}");
                }
            }
        }
        Arg::StrArray => {
            line.push('[');
            for i in 0..SHOW_ARGV {
                let Ok(ptr) = ctx.guest.read_value::<u64>(raw + 8 * i as u64) else {
                    break;
                };
                if ptr == 0 {
                    break;
                }
                if i > 0 {
                    line.push_str(", ");
                }
                match ctx.guest.read_cstr(ctx.arena, ptr, MAX_STRING) {
                    Ok(s) => push_string(line, s),
                    Err(_) => line.push('?'),
                }
            }
            line.push(']');
        }
    }
}
