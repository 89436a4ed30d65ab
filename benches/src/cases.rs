//! The measured operations: what the probe runs, and which system call the kernel floor traps
//! for each.

/// One measured operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// Name in tables and JSON.
    pub name: &'static str,
    /// The system call the floor's supervisor traps (the one the operation is about).
    pub nr: libc::c_long,
    /// Iterations in a full run (a quick run does a tenth).
    pub iterations: u64,
    /// What it does.
    pub what: &'static str,
}

/// Every case, in table order.
pub const CASES: [Case; 18] = [
    Case {
        name: "getppid",
        nr: libc::SYS_getppid,
        iterations: 200_000,
        what: "getppid()",
    },
    Case {
        name: "clock_gettime",
        nr: libc::SYS_clock_gettime,
        iterations: 200_000,
        what: "clock_gettime(MONOTONIC), vDSO",
    },
    Case {
        name: "getuid",
        nr: libc::SYS_getuid,
        iterations: 200_000,
        what: "getuid()",
    },
    Case {
        name: "uname",
        nr: libc::SYS_uname,
        iterations: 100_000,
        what: "uname()",
    },
    Case {
        name: "open_close",
        nr: libc::SYS_openat,
        iterations: 50_000,
        what: "open+close of /etc/passwd (cached path)",
    },
    Case {
        name: "open_close_new",
        nr: libc::SYS_openat,
        iterations: 20_000,
        what: "open+close of a file not opened before (a fresh name each iteration, pre-created)",
    },
    Case {
        name: "open_write",
        nr: libc::SYS_openat,
        iterations: 20_000,
        what: "open(O_WRONLY|O_APPEND)+close of a file in /tmp opened before (served: an fd installed in the guest)",
    },
    Case {
        name: "stat",
        nr: libc::SYS_newfstatat,
        iterations: 50_000,
        what: "stat(/etc/passwd)",
    },
    Case {
        name: "read_zero",
        nr: libc::SYS_read,
        iterations: 200_000,
        what: "1-byte read from /dev/zero",
    },
    Case {
        name: "write_null",
        nr: libc::SYS_write,
        iterations: 200_000,
        what: "1-byte write to /dev/null",
    },
    Case {
        name: "pipe_pingpong",
        nr: libc::SYS_write,
        iterations: 50_000,
        what: "1-byte round trip over two pipes, two processes",
    },
    Case {
        name: "mmap_munmap",
        nr: libc::SYS_mmap,
        iterations: 100_000,
        what: "mmap+munmap of 4 KiB anonymous",
    },
    Case {
        name: "fork_wait",
        nr: libc::SYS_clone,
        iterations: 2_000,
        what: "fork, child _exit, waitpid",
    },
    Case {
        name: "execve_static",
        nr: libc::SYS_execve,
        iterations: 500,
        what: "fork, execve of busybox-static true, waitpid",
    },
    Case {
        name: "socketpair_pingpong",
        nr: libc::SYS_write,
        iterations: 50_000,
        what: "1-byte round trip over a socketpair, two processes",
    },
    Case {
        name: "sendmsg_unix",
        nr: libc::SYS_sendmsg,
        iterations: 50_000,
        what: "1-byte sendmsg on a Unix stream socketpair, read back",
    },
    Case {
        name: "sendto_udp",
        nr: libc::SYS_sendto,
        iterations: 50_000,
        what: "1-byte sendto 127.0.0.1 (with the address) to a bound UDP socket, read back",
    },
    Case {
        name: "connect_unix",
        nr: libc::SYS_connect,
        iterations: 20_000,
        what: "socket+connect+close of a Unix datagram socket to a bound path in /tmp",
    },
];

/// The case called `name`.
pub fn find(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}

/// Where the driver pre-creates the files `open_close_new` opens, one each iteration (`f0`,
/// `f1`, ...): made on the host before the sandbox starts, so that no sandbox has seen them
/// (every mode runs a new sandbox, so one set serves them all).
pub const FRESH_DIR: &str = "/var/tmp/rvisor-bench-work/fresh";

/// The name of the `i`th file of [`FRESH_DIR`].
pub fn fresh_name(i: u64) -> String {
    format!("f{i}")
}

/// A static binary for the exec case (Debian's busybox-static).
pub const STATIC_BINARY: &str = "/bin/busybox";
