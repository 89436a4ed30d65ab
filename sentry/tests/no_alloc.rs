//! Steady-state servicing makes no global-allocator call: a counting `#[global_allocator]` must
//! see zero allocations while the sentry serves 10,000 trapped getppid calls from a real guest,
//! then 10,000 trapped write checks (`access(W_OK)`) answered from the fd cache (a real gofer serves a temporary
//! root on a thread of this process, so its allocations would count too).
//!
//! `harness = false`: the process must be single-threaded when it forks the guest. The same file
//! is built twice: `no_alloc` on seccomp-notify, `no_alloc_ptrace` on the ptrace platform (this
//! thread seizes the guest and serves it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use sentry::filter::{compile, install, install_with_listener, ReadOpens, TrapReturn};
use sentry::platform::ptrace::reserved;
use sentry::platform::{Platform, Ptrace, SeccompNotify};
use sentry::sandbox::{Sandbox, SandboxConfig};
use sentry::server::Sentry;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator with the caller's arguments unchanged;
// the counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout, which satisfies alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for alloc.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator (hence System) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (hence System) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Which platform this build of the test serves the guest with.
const PTRACE: bool = matches!(env!("CARGO_CRATE_NAME").as_bytes(), b"no_alloc_ptrace");

const WARM_UP: usize = 100;
const MEASURED: usize = 10_000;

/// The guest: installs the sandbox filter, hands the listener's number to the parent, then
/// checks every trapped getppid and stat answer. Exit 0 only if all were right.
fn guest(report: OwnedFd, seized: OwnedFd, path: &std::ffi::CStr) -> ! {
    let parent = libc::c_long::from(std::os::unix::process::parent_id());
    let number = if PTRACE {
        // A RET_TRACE filter without a tracer fails calls: wait to be seized.
        let mut byte = 0u8;
        // SAFETY: one byte into a buffer we own, from a pipe fd we own.
        unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&seized),
                std::ptr::addr_of_mut!(byte).cast(),
                1,
            )
        };
        install(&compile(TrapReturn::Trace, ReadOpens::Trapped).expect("compile filter"))
            .expect("install filter");
        [0; 4]
    } else {
        let prog = compile(TrapReturn::UserNotif, ReadOpens::Trapped).expect("compile filter");
        let listener = install_with_listener(&prog).expect("install filter");
        let number = std::os::fd::AsRawFd::as_raw_fd(&listener).to_ne_bytes();
        // The parent copies it out of our fd table.
        std::mem::forget(listener);
        number
    };
    // SAFETY: writing a 4-byte buffer we own to a pipe fd we own; write is native under the filter.
    unsafe {
        libc::write(
            std::os::fd::AsRawFd::as_raw_fd(&report),
            number.as_ptr().cast(),
            4,
        )
    };
    for _ in 0..WARM_UP + MEASURED {
        // SAFETY: getppid takes no arguments.
        if unsafe { libc::syscall(libc::SYS_getppid) } != parent {
            // SAFETY: _exit takes an int.
            unsafe { libc::_exit(1) };
        }
    }
    for _ in 0..WARM_UP + MEASURED {
        // (stat runs natively; a write check is trapped and served from the fd cache.)
        // SAFETY: a NUL-terminated path and a mode.
        if unsafe { libc::access(path.as_ptr(), libc::W_OK) } != 0 {
            // SAFETY: _exit takes an int.
            unsafe { libc::_exit(2) };
        }
    }
    // SAFETY: _exit takes an int.
    unsafe { libc::_exit(0) }
}

/// Serves `count` trapped calls, then `count` more counting allocations; returns them and the
/// mean time per call.
fn measure<P: Platform>(worker: &mut sentry::server::Worker<'_, P>) -> (usize, f64) {
    for _ in 0..WARM_UP {
        worker.serve_one().expect("serve");
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let started = std::time::Instant::now();
    for _ in 0..MEASURED {
        worker.serve_one().expect("serve");
    }
    let elapsed = started.elapsed();
    (
        ALLOCATIONS.load(Ordering::Relaxed) - before,
        elapsed.as_nanos() as f64 / MEASURED as f64,
    )
}

/// The guest's listener `number`, copied from its fd table.
fn listener_of(child: libc::pid_t, number: [u8; 4]) -> OwnedFd {
    // SAFETY: pidfd_open takes integers and returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child, 0) };
    assert!(pidfd >= 0, "pidfd_open");
    // SAFETY: the pidfd is valid; pidfd_getfd copies the child's fd into our table.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, i32::from_ne_bytes(number), 0) };
    assert!(fd >= 0, "pidfd_getfd");
    // SAFETY: the kernel returned these fds to us; each is owned exactly once.
    drop(unsafe { OwnedFd::from_raw_fd(pidfd as i32) });
    // SAFETY: as above.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills a two-int array we own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just created these fds; each is owned exactly once.
    let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: as above.
    let write = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    (read, write)
}

/// Runs the test; also the entry point of `no_alloc_ptrace`.
pub fn main() {
    // The gofer's root: a temporary directory holding "f" (3 bytes).
    let dir = std::env::temp_dir().join(format!("rvisor-no-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), "abc").unwrap();
    let path = std::ffi::CString::new("/f").unwrap();
    let (read_end, write_end) = pipe();
    let (go_read, go_write) = pipe();
    // SAFETY: single-threaded (harness = false); the child runs only `guest`, which never returns.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        drop(read_end);
        drop(go_write);
        guest(write_end, go_read, &path);
    }
    drop(write_end);
    drop(go_read);
    let tracer = PTRACE.then(|| {
        let (sender, guest_end) = reserved::pair().expect("socketpair");
        let platform = Ptrace::seize(nix::unistd::Pid::from_raw(child), sender, guest_end)
            .expect("PTRACE_SEIZE");
        // SAFETY: one byte from a literal into a pipe fd we own.
        unsafe {
            libc::write(
                std::os::fd::AsRawFd::as_raw_fd(&go_write),
                [1u8].as_ptr().cast(),
                1,
            )
        };
        platform
    });
    let mut number = [0u8; 4];
    // SAFETY: reading 4 bytes into a buffer we own.
    let n = unsafe {
        libc::read(
            std::os::fd::AsRawFd::as_raw_fd(&read_end),
            number.as_mut_ptr().cast(),
            4,
        )
    };
    assert_eq!(n, 4, "the guest did not report its listener");
    let platform: Box<dyn Platform> = match tracer {
        Some(ptrace) => Box::new(ptrace),
        None => Box::new(SeccompNotify::new(listener_of(child, number))),
    };
    // The gofer serves the temporary root on a thread (created after the fork: the guest must be
    // forked from a single-threaded process).
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let (sentry_end, gofer_end) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let root: OwnedFd = std::fs::File::open(&dir).unwrap().into();
    let ids = gofer::IdMap {
        uids: vec![gofer::IdRange {
            inside: uid,
            outside: uid,
            count: 1,
        }],
        gids: vec![gofer::IdRange {
            inside: gid,
            outside: gid,
            count: 1,
        }],
    };
    std::thread::spawn(move || {
        gofer::Gofer::new(root, ids).serve(std::os::fd::AsFd::as_fd(&gofer_end))
    });
    let config = SandboxConfig::default();
    let sandbox =
        Sandbox::new(&config).with_gofer(sentry::gofer_client::GoferClient::new(sentry_end));
    let sentry = Sentry::new(platform, sandbox, None);
    let name = if PTRACE { "ptrace" } else { "seccomp-notify" };
    let mut worker = sentry.worker();
    let (getppid_allocs, getppid_ns) = measure(&mut worker);
    let (stat_allocs, stat_ns) = measure(&mut worker);
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child into an int we own.
        unsafe { libc::waitpid(child, &mut status, libc::__WALL) };
        if !libc::WIFSTOPPED(status) {
            break;
        }
        // Traced: let it through its exit stop.
        // SAFETY: integer arguments; the child is in a ptrace-stop.
        unsafe { libc::ptrace(libc::PTRACE_CONT, child, 0, 0) };
    }
    let _ = std::fs::remove_dir_all(&dir);
    let guest_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    println!("no_alloc ({name}): {MEASURED} trapped getppid: {getppid_allocs} allocations, {getppid_ns:.0} ns/call (information only)");
    println!("no_alloc ({name}): {MEASURED} trapped access(W_OK) from the fd cache: {stat_allocs} allocations, {stat_ns:.0} ns/call (information only)");
    if !guest_ok {
        println!("no_alloc: the guest saw a wrong answer (status {status:#x})");
    }
    let failed = !guest_ok || getppid_allocs != 0 || stat_allocs != 0;
    println!(
        "test result: {}. {} passed; {} failed",
        if failed { "FAILED" } else { "ok" },
        u8::from(!failed),
        u8::from(failed)
    );
    std::process::exit(i32::from(failed));
}
