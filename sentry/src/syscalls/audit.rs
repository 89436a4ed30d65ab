//! The table audit: every trapped call's handler, run against guest memory full of what a
//! hostile guest would put there, may continue the call only as its class allows
//! ([`super::Continues`]): never after reading guest memory, except path calls, which the kernel
//! then resolves in the guest's own confined view.

use std::cell::Cell;

use bumpalo::Bump;

use super::{Action, Continues, Ctx, Entry, TABLE};
use crate::guest::Guest;
use crate::platform::fake::{FakePlatform, BASE};
use crate::platform::{Reply, Trap};
use crate::sandbox::{Sandbox, SandboxConfig};

/// What the guest's memory holds at [`BASE`] (every pointer argument points there).
fn contents() -> Vec<Vec<u8>> {
    let unix = |path: &[u8]| {
        let mut a = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(path);
        a.push(0);
        a
    };
    let mut inet = (libc::AF_INET as u16).to_ne_bytes().to_vec();
    inet.extend_from_slice(&[0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    vec![
        b"/proc/self/status\0".to_vec(),
        b"/dev/null\0".to_vec(),
        b"/etc/passwd\0".to_vec(),
        b"relative/name\0".to_vec(),
        b"\0".to_vec(),
        unix(b"/tmp/some.sock"),
        unix(b"/proc/self/fd/0"),
        inet,
        // clone_args / open_how / msghdr-shaped: small numbers, then pointers back into memory.
        [1u64, BASE, 16, BASE, 1, 0, 0, 0]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect(),
    ]
}

/// Argument registers: pointers to the memory in every position that takes one, with the fds,
/// flags and lengths the families use around them.
fn arg_sets() -> Vec<[u64; 6]> {
    const CWD: u64 = libc::AT_FDCWD as u32 as u64;
    const EMPTY: u64 = libc::AT_EMPTY_PATH as u64;
    vec![
        [0; 6],
        [BASE; 6],
        [BASE, 0, 0, 0, 0, 0],
        [BASE, 0o644, 0, 0, 0, 0],
        [CWD, BASE, 0, 0, 0, 0],
        [CWD, BASE, BASE, 0, 0, 0],
        [CWD, BASE, libc::O_PATH as u64, 0, 0, 0],
        [CWD, BASE, CWD, BASE, 0, 0],
        [0, BASE, BASE, EMPTY, 0, 0],
        [1, BASE, 110, 0, 0, 0],
        [1, BASE, 16, 0, BASE, 110],
        [1, BASE, 0, 0, 0, 0],
        [BASE, 64, 0, 0, 0, 0],
        [libc::CLONE_UNTRACED as u64, 0, 0, 0, 0, 0],
        [1, 8, BASE, 0, 0, 0],
        [u64::MAX; 6],
    ]
}

/// A sandbox whose "guest" is this test process: its stdio and `/dev/null` count as handed in
/// from outside, so the attribute changes the handlers make themselves (`view_attr.rs`) refuse
/// them rather than change the host's files.
fn this_process_as_outside() -> SandboxConfig {
    let id = |st: nix::sys::stat::FileStat| (st.st_dev, st.st_ino);
    let mut outside: Vec<(u64, u64)> = (0..3)
        .filter_map(|fd| nix::sys::stat::fstat(fd).ok().map(id))
        .collect();
    outside.extend(nix::sys::stat::stat("/dev/null").ok().map(id));
    SandboxConfig {
        outside,
        ..SandboxConfig::default()
    }
}

/// Runs `entry`'s handler once; returns its reply and whether it read guest memory.
fn run(sandbox: &Sandbox, entry: &Entry, memory: &[u8], args: [u64; 6]) -> (Reply, bool) {
    let mut mem = memory.to_vec();
    mem.resize(8192, 0);
    let platform = FakePlatform::new(mem);
    let trap = Trap {
        tid: nix::unistd::gettid().as_raw(),
        nr: entry.nr,
        args,
        ..Trap::default()
    };
    let arena = Bump::new();
    let read = Cell::new(false);
    let mut ctx = Ctx {
        trap: &trap,
        guest: Guest::new(&platform, &trap, &read),
        arena: &arena,
        sandbox,
        refused: false,
        injected: None,
        raise: None,
    };
    let handler = match entry.action {
        Action::Emulated(h) | Action::Guarded { handler: h, .. } => h,
        Action::Native | Action::Denied(_) => unreachable!("only handlers are run"),
    };
    let reply = handler(&mut ctx).unwrap_or_else(Reply::Errno);
    (reply, read.get())
}

#[test]
fn no_handler_continues_against_its_class() {
    let sandbox = Sandbox::new(&this_process_as_outside());
    let mut runs = 0;
    let mut continued = 0;
    for entry in TABLE.iter() {
        if !matches!(entry.action, Action::Emulated(_) | Action::Guarded { .. }) {
            continue;
        }
        for memory in contents() {
            for args in arg_sets() {
                let (reply, read) = run(&sandbox, entry, &memory, args);
                runs += 1;
                if reply == Reply::Continue {
                    continued += 1;
                    assert!(
                        entry.continues.allows(read),
                        "{} continued ({} memory read) but is classed {:?}: args {args:x?}, \
                         memory {:?}",
                        entry.name,
                        if read { "after a" } else { "with no" },
                        entry.continues,
                        String::from_utf8_lossy(&memory),
                    );
                }
            }
        }
    }
    // The walk reached the handlers and saw both outcomes (a walk that never continues proves
    // nothing about the classes).
    assert!(runs > 10_000, "{runs} runs");
    assert!(continued > 0, "no handler continued at all");
}

#[test]
fn calls_that_act_on_memory_the_kernel_rereads_are_never_continued() {
    // The escape classes of the review: flags or addresses in memory decide what the kernel does.
    for name in ["clone3", "sendto", "seccomp"] {
        let entry = TABLE.by_name(name).unwrap();
        assert_eq!(entry.continues, Continues::Never, "{name}");
        assert!(!matches!(entry.action, Action::Native), "{name} is native");
    }
    // sendmsg may continue, but only on what its fd register names (a socket that cannot address
    // a path), decided before any memory is read.
    for name in ["connect", "sendmsg", "sendmmsg"] {
        let entry = TABLE.by_name(name).unwrap();
        assert_eq!(entry.continues, Continues::OnRegisters, "{name}");
        assert!(!matches!(entry.action, Action::Native), "{name} is native");
    }
}

#[test]
fn in_view_calls_take_a_path_or_a_socket_address() {
    use super::Arg;
    for entry in TABLE
        .iter()
        .filter(|e| e.continues == Continues::InGuestView)
    {
        assert!(
            entry.args.contains(&Arg::Str) || entry.name == "bind",
            "{} is classed as a path call but takes no path",
            entry.name
        );
    }
}

#[test]
fn the_dispatcher_refuses_a_continue_against_the_class() {
    fn continues_after_reading(ctx: &mut Ctx<'_>) -> Result<Reply, nix::errno::Errno> {
        let _: u64 = ctx.guest.read_value(ctx.arg(0))?;
        Ok(Reply::Continue)
    }
    let sandbox = Sandbox::new(&SandboxConfig::default());
    let platform = FakePlatform::new(vec![0; 64]);
    let trap = Trap {
        args: [BASE, 0, 0, 0, 0, 0],
        ..Trap::default()
    };
    let arena = Bump::new();
    for (class, expect) in [
        (Continues::Never, Reply::Errno(nix::errno::Errno::EPERM)),
        (
            Continues::OnRegisters,
            Reply::Errno(nix::errno::Errno::EPERM),
        ),
        (Continues::InGuestView, Reply::Continue),
    ] {
        let read = Cell::new(false);
        let mut ctx = Ctx {
            trap: &trap,
            guest: Guest::new(&platform, &trap, &read),
            arena: &arena,
            sandbox: &sandbox,
            refused: false,
            injected: None,
            raise: None,
        };
        let entry = Entry {
            nr: 0,
            name: "test",
            action: Action::Emulated(continues_after_reading),
            args: &[],
            continues: class,
        };
        assert_eq!(
            crate::server::dispatch(&entry, &mut ctx),
            expect,
            "{class:?}"
        );
    }
}
