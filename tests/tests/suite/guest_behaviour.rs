//! What a platform must not change: signals (stop and continue, an alternate stack, a SIGSEGV
//! handler, real-time signals, SIGTRAP), many threads trapping at once (served by several
//! workers, some callers killed mid-call), and an fd table with
//! nothing in it the guest did not open (the ptrace platform's reserved socket included).

use super::prelude::*;

fn run_probe(name: &str, source: &str) -> String {
    let probe = compile_c(name, source);
    ok(&run_for(
        &mut rvisor_do(["--".as_ref(), probe.as_os_str()]),
        120,
    ))
}

/// `ptrace` on the ptrace platform, else `other`.
fn on_ptrace_else<'a>(ptrace: &'a str, other: &'a str) -> &'a str {
    if crate::PLATFORM == "ptrace" {
        ptrace
    } else {
        other
    }
}

#[test]
fn signals_behave_as_natively() {
    let out = run_probe("signals", include_str!("probes/signals.c"));
    assert_eq!(
        out,
        "stopped by 19\ncontinued, exit 0\nsegv handled on_alt=1 opened=1\nrt=1 trap=1\n"
    );
}

#[test]
fn sixty_four_threads_trap_at_once() {
    let out = run_probe("threads", include_str!("probes/threads.c"));
    assert_eq!(out, "threads=64 bad=0\n");
}

#[test]
fn overlapping_calls_served_by_several_workers_get_their_own_answers() {
    let probe = compile_c("workers", include_str!("probes/workers.c"));
    // The default (as many workers as CPUs, up to 4) and more workers than CPUs.
    for workers in [None, Some("4")] {
        let mut args: Vec<&std::ffi::OsStr> = Vec::new();
        if let Some(n) = workers {
            args.push("--workers".as_ref());
            args.push(n.as_ref());
        }
        args.push("--".as_ref());
        args.push(probe.as_os_str());
        let out = ok(&run_for(&mut rvisor_do(args), 120));
        assert_eq!(
            out, "threads=8 bad=0 killed=2 children_ok=2\n",
            "workers {workers:?}"
        );
    }
}

/// On ptrace every guest process holds the same reserved socket: a second handle to it, passed
/// in SCM_RIGHTS, once let a process that had dropped root receive the fds the tracer handed to
/// a root one (1,998 of 2,000 in a hostile review), because a native sendmsg carried it.
#[test]
fn the_guest_sees_and_reaches_only_its_own_fds() {
    let out = run_probe("reserved_fd", include_str!("probes/reserved_fd.c"));
    // Over the fd the ptrace platform reserves, dup2 is refused; elsewhere nothing holds it.
    let dup2 = on_ptrace_else("EBADF", "ok");
    assert_eq!(
        out,
        format!(
            "listed: 0 1 2 3\ngetfd=EBADF\nwrite=EBADF\nclose=EBADF\npidfd_getfd=EBADF\n\
             pass=EBADF pass_own=ok\ndup2={dup2}\nclose_range=ok\nopen_after=3 read=1\nexec_open=ok\n"
        )
    );
}

/// A guest's hour-long send timeout on a full queue does not hold the sentry (a hostile review
/// hung a ptrace sandbox this way: no call served, `kill -9` of the guest never reaped); Linux
/// AIO is refused on ptrace (it could read the reserved socket and destroy others' new fds).
#[test]
fn a_guest_send_timeout_cannot_hold_the_sentry() {
    let out = run_probe("send_timeout", include_str!("probes/send_timeout.c"));
    let aio = on_ptrace_else("ENOSYS", "ok");
    assert_eq!(out, format!("full_queue_send=EINTR\nio_setup={aio}\n"));
}
