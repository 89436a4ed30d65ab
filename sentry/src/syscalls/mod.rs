//! The syscall table: for every x86_64 system call, whether it runs natively, runs natively under
//! an argument guard, is trapped and emulated, or is trapped and denied.
//!
//! One file per family declares its trapped calls; `native.rs` is the explicit allowlist. A call
//! in neither (an unknown or newly added number) is trapped and fails with ENOSYS, so the table
//! fails closed when the kernel grows.

#[cfg(test)]
mod audit;
mod denied;
mod fd_meta;
mod fs_attr;
mod fs_misc;
mod fs_open;
mod fs_path;
mod fs_stat;
mod fs_tree;
mod identity;
mod names;
mod native;
mod net;
mod process;
mod pseudo;
mod refused;
mod sockopt;
mod system;
mod view_attr;

use std::sync::LazyLock;

use bumpalo::Bump;
use nix::errno::Errno;

pub use identity::Ids;
pub use names::SYSCALL_NAMES;
pub use process::NAMESPACE_FLAGS;
pub use system::{join_guest_uts, UTS_LEN};

use crate::guest::Guest;
use crate::platform::{Reply, Trap};
use crate::sandbox::Sandbox;

/// Bumped whenever the set of native, trapped or denied calls changes.
pub const TABLE_VERSION: u32 = 12;

/// When a trapped call may be handed back to the host kernel ("continued").
///
/// Guest memory can change between the sentry's read and the kernel's, so a decision to continue
/// may rest only on register arguments, with one exception: path calls, which the kernel then
/// resolves in the guest's own mount namespace (read-only, nosuid, nodev, its own proc, sys and
/// dev). Whatever path a racing thread writes there, the kernel acts on something the guest
/// could reach natively anyway; nothing the gofer guards (writes to the tree, host sockets) is
/// reachable that way. The dispatcher enforces the classes: a call continued against its class
/// fails with EPERM instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continues {
    /// Never: emulated or refused.
    Never,
    /// Only on register arguments (the handler reads no guest memory before deciding).
    OnRegisters,
    /// Path calls: may continue after reading the path, into the guest's confined view.
    InGuestView,
}

impl Continues {
    /// Whether a handler of this class may continue a call, given whether it read guest memory.
    pub fn allows(self, read_memory: bool) -> bool {
        match self {
            Continues::Never => false,
            Continues::OnRegisters => !read_memory,
            Continues::InGuestView => true,
        }
    }

    /// How `rvisor syscalls` names the class.
    pub fn describe(self) -> &'static str {
        match self {
            Continues::Never => "never continued",
            Continues::OnRegisters => "continued on register arguments only",
            Continues::InGuestView => "continued only into the guest's read-only view",
        }
    }
}

/// Calls that may continue after reading guest memory: each resolves a path (or binds a Unix
/// socket address, which only creates) in the guest's read-only view.
pub const IN_GUEST_VIEW: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat",
    "access",
    "faccessat",
    "faccessat2",
    "statfs",
    "truncate",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "execve",
    "execveat",
    "chdir",
    "inotify_add_watch",
    "bind",
];

/// Calls whose handler may continue on register arguments alone (a guarded native call's
/// trapped case, or a check on numbers only).
pub const ON_REGISTERS: &[&str] = &[
    "clone",
    "prctl",
    "fchdir",
    "fstatfs",
    "connect",
    "sendmsg",
    "sendmmsg",
    "setsockopt",
    "socket",
];

/// What a handler sees of one trapped call.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The call.
    pub trap: &'a Trap,
    /// The caller's memory.
    pub guest: Guest<'a>,
    /// Scratch memory for this request only.
    pub arena: &'a Bump,
    /// The sandbox the caller belongs to.
    pub sandbox: &'a Sandbox,
    /// Set when the handler refused the call on policy (logged as a denial).
    pub refused: bool,
    /// The fd a `Reply::Fd` installs in the guest.
    pub injected: Option<std::os::fd::OwnedFd>,
    /// A signal the kernel would raise on the caller as the call returns: the worker sends it
    /// with the reply (see [`crate::raise`]).
    pub raise: Option<i32>,
}

impl Ctx<'_> {
    /// Completes the call by installing `fd` in the guest.
    pub fn give_fd(&mut self, fd: std::os::fd::OwnedFd, cloexec: bool) -> Result<Reply, Errno> {
        self.injected = Some(fd);
        Ok(Reply::Fd { cloexec })
    }

    /// Refuses the call on policy: fails it with `errno` and logs it as a denial.
    pub fn refuse(&mut self, errno: Errno) -> Result<Reply, Errno> {
        self.refused = true;
        Err(errno)
    }

    /// The caller's credentials (kept for its next calls only while this one still waits).
    pub fn creds(&self) -> Result<crate::task::Creds, Errno> {
        let guest = self.guest;
        self.sandbox
            .tasks
            .creds(self.trap.tid, &move || guest.still_pending())
    }

    /// Argument register `i`.
    pub fn arg(&self, i: usize) -> u64 {
        self.trap.args[i]
    }
}

/// A trapped call's service routine. `Err(errno)` fails the call with that errno.
pub type Handler = fn(&mut Ctx<'_>) -> Result<Reply, Errno>;

/// A condition on one argument, checked by the BPF filter (32-bit compare: every guarded argument
/// is an `int` or a truncated flags word in the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// `(arg & mask) == value`.
    MaskedEq {
        /// Argument index.
        arg: u8,
        /// Bits compared.
        mask: u64,
        /// Expected value of those bits.
        value: u64,
    },
    /// `arg != value`.
    Ne {
        /// Argument index.
        arg: u8,
        /// Value the argument must not have.
        value: u64,
    },
    /// `confined` where the guest's reads are held to its root by Landlock, `otherwise`
    /// elsewhere (both plain conditions on one argument).
    Confined {
        /// The condition under Landlock.
        confined: &'static Cond,
        /// The condition without it.
        otherwise: &'static Cond,
    },
}

impl Cond {
    /// The argument index the condition reads.
    pub fn arg(&self) -> u8 {
        match *self {
            Cond::MaskedEq { arg, .. } | Cond::Ne { arg, .. } => arg,
            Cond::Confined { confined, .. } => confined.arg(),
        }
    }

    /// The plain condition the filter checks for a guest whose opens for reading are `reads`.
    pub fn resolve(&self, reads: crate::filter::ReadOpens) -> &Cond {
        match (self, reads) {
            (Cond::Confined { confined, .. }, crate::filter::ReadOpens::Native) => {
                confined.resolve(reads)
            }
            (Cond::Confined { otherwise, .. }, crate::filter::ReadOpens::Trapped) => {
                otherwise.resolve(reads)
            }
            (c, _) => c,
        }
    }
}

/// How one system call is treated.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Runs on the host kernel, never trapped.
    Native,
    /// Runs natively while every condition holds; otherwise trapped and given to `handler`.
    Guarded {
        /// Conditions under which the call is not trapped.
        allow_when: &'static [Cond],
        /// Service routine for the trapped case.
        handler: Handler,
    },
    /// Trapped and serviced by the sentry.
    Emulated(Handler),
    /// Trapped and refused with this errno (and logged).
    Denied(Errno),
}

impl Action {
    /// One word for `rvisor syscalls`.
    pub fn describe(&self) -> String {
        match self {
            Action::Native => "native".into(),
            Action::Guarded { allow_when, .. } => {
                let conds: Vec<String> = allow_when.iter().map(describe_cond).collect();
                format!("native-if({}) else trapped", conds.join(" && "))
            }
            Action::Emulated(_) => "trapped+emulated".into(),
            Action::Denied(e) => format!("trapped+denied({})", e.desc_name()),
        }
    }
}

fn describe_cond(c: &Cond) -> String {
    match *c {
        Cond::MaskedEq { arg, mask, value } => format!("arg{arg}&{mask:#x}=={value:#x}"),
        Cond::Ne { arg, value } => format!("arg{arg}!={value:#x}"),
        Cond::Confined {
            confined,
            otherwise,
        } => format!(
            "{} under Landlock, else {}",
            describe_cond(confined),
            describe_cond(otherwise)
        ),
    }
}

trait ErrnoName {
    fn desc_name(&self) -> &'static str;
}

impl ErrnoName for Errno {
    fn desc_name(&self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::EACCES => "EACCES",
            Errno::ENOSYS => "ENOSYS",
            Errno::EINVAL => "EINVAL",
            _ => "errno",
        }
    }
}

/// How `--strace` decodes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Signed decimal.
    Int,
    /// Hexadecimal (flags, commands).
    Hex,
    /// An untyped pointer, printed as an address.
    Ptr,
    /// A NUL-terminated string.
    Str,
    /// A byte string whose length is argument `n`.
    StrLen(u8),
    /// A NULL-terminated array of strings (argv).
    StrArray,
}

/// One family file's declaration of a trapped call.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// Kernel name of the call.
    pub name: &'static str,
    /// What the sentry does with it.
    pub action: Action,
    /// Argument decoding for `--strace`.
    pub args: &'static [Arg],
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// System call number.
    pub nr: i64,
    /// Kernel name.
    pub name: &'static str,
    /// Treatment.
    pub action: Action,
    /// Argument decoding for `--strace`.
    pub args: &'static [Arg],
    /// When the call may be continued.
    pub continues: Continues,
}

/// Trapped calls with no number in the table (or not in the allowlist) fail like this.
pub const UNKNOWN: Entry = Entry {
    nr: -1,
    name: "unknown",
    action: Action::Denied(Errno::ENOSYS),
    args: &[Arg::Hex, Arg::Hex, Arg::Hex, Arg::Hex, Arg::Hex, Arg::Hex],
    continues: Continues::Never,
};

/// The class of the call called `name`.
fn continues(name: &str) -> Continues {
    if IN_GUEST_VIEW.contains(&name) {
        Continues::InGuestView
    } else if ON_REGISTERS.contains(&name) || identity::CHANGES_CREDS.contains(&name) {
        Continues::OnRegisters
    } else {
        Continues::Never
    }
}

/// The whole table, indexed by number.
#[derive(Debug)]
pub struct Table {
    entries: Vec<Entry>,
    by_nr: Vec<Option<u16>>,
}

fn families() -> impl Iterator<Item = &'static Def> {
    [
        process::DEFS,
        identity::DEFS,
        fd_meta::DEFS,
        system::DEFS,
        denied::DEFS,
        refused::DEFS,
        fs_open::DEFS,
        fs_stat::DEFS,
        fs_tree::DEFS,
        fs_attr::DEFS,
        fs_misc::DEFS,
        net::DEFS,
        sockopt::DEFS,
    ]
    .into_iter()
    .flatten()
}

impl Table {
    fn build() -> Table {
        let mut entries = Vec::with_capacity(SYSCALL_NAMES.len());
        for &(nr, name) in SYSCALL_NAMES {
            let def = families().find(|d| d.name == name);
            let (action, args) = match def {
                Some(d) => (d.action, d.args),
                None if native::NATIVE.contains(&name) => (Action::Native, &[][..]),
                None => (UNKNOWN.action, UNKNOWN.args),
            };
            entries.push(Entry {
                nr,
                name,
                action,
                args,
                continues: continues(name),
            });
        }
        let max = entries.iter().map(|e| e.nr).max().unwrap_or(0) as usize;
        let mut by_nr = vec![None; max + 1];
        for (i, e) in entries.iter().enumerate() {
            by_nr[e.nr as usize] = Some(i as u16);
        }
        Table { entries, by_nr }
    }

    /// The row for `nr`, or [`UNKNOWN`].
    pub fn get(&self, nr: i64) -> &Entry {
        usize::try_from(nr)
            .ok()
            .and_then(|i| self.by_nr.get(i).copied().flatten())
            .map_or(&UNKNOWN, |i| &self.entries[i as usize])
    }

    /// The row for a name.
    pub fn by_name(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Every row, by number.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}

/// The table, built on first use.
pub static TABLE: LazyLock<Table> = LazyLock::new(Table::build);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_name_is_a_real_syscall() {
        for d in families() {
            assert!(
                TABLE.by_name(d.name).is_some(),
                "{} is not an x86_64 syscall",
                d.name
            );
        }
        for n in native::NATIVE {
            assert!(TABLE.by_name(n).is_some(), "{n} is not an x86_64 syscall");
            assert!(
                families().all(|d| d.name != *n),
                "{n} is both native and trapped"
            );
        }
    }

    #[test]
    fn dangerous_calls_are_never_native() {
        for name in [
            "mount",
            "umount2",
            "pivot_root",
            "bpf",
            "io_uring_setup",
            "setns",
            "fsopen",
            "move_mount",
            "open_tree",
            "kexec_load",
            "init_module",
            "userfaultfd",
            "getppid",
            "uname",
            "clone3",
            "execve",
        ] {
            assert!(
                !matches!(TABLE.by_name(name).unwrap().action, Action::Native),
                "{name}"
            );
        }
    }

    #[test]
    fn the_lists_of_calls_continued_on_their_number_name_their_handlers() {
        let names = |defs: &[Def]| defs.iter().map(|d| d.name).collect::<Vec<_>>();
        assert_eq!(identity::CHANGES_CREDS, names(identity::DEFS));
    }

    #[test]
    fn unknown_numbers_fail_with_enosys() {
        assert!(matches!(
            TABLE.get(9999).action,
            Action::Denied(Errno::ENOSYS)
        ));
        assert!(matches!(
            TABLE.get(-5).action,
            Action::Denied(Errno::ENOSYS)
        ));
        assert_eq!(TABLE.get(110).name, "getppid");
    }
}
