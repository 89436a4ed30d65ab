//! `rvisor do`: exit status, stdio pass-through, terminals, bad input.

use std::io::{Read, Write};
use std::process::Stdio;

use super::prelude::*;

#[test]
fn prints_and_exits_with_the_commands_code() {
    let o = sh("echo hello; exit 7");
    assert_eq!(stdout(&o), "hello\n");
    assert_eq!(o.status.code(), Some(7));
}

#[test]
fn death_by_signal_n_exits_128_plus_n() {
    for (sig, code) in [("KILL", 137), ("TERM", 143), ("SEGV", 139), ("INT", 130)] {
        let o = sh(&format!("kill -{sig} $$; sleep 5"));
        assert_eq!(o.status.code(), Some(code), "SIG{sig}: {}", stderr(&o));
    }
}

#[test]
fn stdout_and_stderr_stay_separate() {
    let o = sh("echo to-out; echo to-err >&2; echo more-out");
    assert_eq!(stdout(&o), "to-out\nmore-out\n");
    assert!(stderr(&o).ends_with("to-err\n"), "{}", stderr(&o));
}

/// 100 MB in through stdin and back out through stdout, byte for byte.
#[test]
fn hundred_megabytes_through_a_pipe() {
    const TOTAL: usize = 100 * 1024 * 1024;
    let mut child = rvisor_do(["--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut block = vec![0u8; 1 << 16];
        let mut sent = 0usize;
        while sent < TOTAL {
            for (i, b) in block.iter_mut().enumerate() {
                *b = ((sent + i) % 251) as u8;
            }
            stdin.write_all(&block).unwrap();
            sent += block.len();
        }
    });
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut seen = 0usize;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, ((seen + i) % 251) as u8, "byte {} differs", seen + i);
        }
        seen += n;
    }
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(seen, TOTAL);
}

/// All output is in the pipe by the time rvisor exits, even from a process that writes and
/// exits at once.
#[test]
fn exits_only_after_output_is_flushed() {
    let o = run_for(
        &mut rvisor_do(["--", "head", "-c", "30000000", "/dev/zero"]),
        120,
    );
    assert!(o.status.success());
    assert_eq!(o.stdout.len(), 30_000_000);
}

#[test]
fn stdin_reaches_the_command() {
    let mut child = rvisor_do(["--", "sort"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"pear\napple\nfig\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "apple\nfig\npear\n");
}

/// Under a real pty (`script`), the guest sees a terminal on stdio and can name it.
#[test]
fn terminal_passes_through() {
    let inner = format!(
        "{} do -- sh -c 'test -t 0 && test -t 1 && echo both-tty; tty; stty size >/dev/null && echo stty-ok'",
        rvisor().display()
    );
    let o = run_for(
        std::process::Command::new("script").args(["-qec", &inner, "/dev/null"]),
        60,
    );
    let text = stdout(&o);
    assert!(text.contains("both-tty"), "{text}");
    assert!(text.contains("/dev/console"), "{text}");
    assert!(text.contains("stty-ok"), "{text}");
}

#[test]
fn missing_command_exits_127_with_a_message() {
    let o = run_for(&mut rvisor_do(["--", "/no/such/program"]), 60);
    assert_eq!(o.status.code(), Some(127));
    assert!(
        stderr(&o).contains("/no/such/program: No such file or directory"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_input_is_refused_clearly() {
    let cases: [(&[&str], &str); 6] = [
        (&["--volume", "relative:/x", "--", "true"], "absolute"),
        (
            &["--volume", "/nonexistent-src:/x", "--", "true"],
            "does not exist",
        ),
        (
            &["--root", "/nonexistent-root", "--", "true"],
            "not a directory",
        ),
        (&["--env", "NOEQUALS", "--", "true"], "expected K=V"),
        (
            &["--network", "bridge", "--", "true"],
            "unknown network mode",
        ),
        (
            &["--cwd", "/no/such/dir", "--", "true"],
            "working directory /no/such/dir",
        ),
    ];
    for (args, msg) in cases {
        let o = run_for(&mut rvisor_do(args), 60);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
    let o = run_for(std::process::Command::new(rvisor()).arg("do"), 60);
    assert!(!o.status.success());
}

/// A signal sent to rvisor reaches the command through the sentry, the gofer and the init.
#[test]
fn signals_sent_to_rvisor_reach_the_command() {
    let script = "trap 'echo got-usr1; exit 3' USR1; echo ready; sleep 100 & wait";
    let mut child = rvisor_do(["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    out.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    let rc = std::process::Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got-usr1\n");
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

/// A volume whose source lies under the host's /tmp (which the sandbox replaces with its own):
/// a directory and a file, both mounted as what they are.
#[test]
fn volumes_from_under_the_hosts_tmp_work() {
    let dir = std::path::PathBuf::from(format!("/tmp/rvisor-vol-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), "from a tmp dir\n").unwrap();
    let file = dir.with_extension("file");
    std::fs::write(&file, "from a tmp file\n").unwrap();
    let o = run_for(
        &mut rvisor_do([
            "-v".to_string(),
            format!("{}:/vol", dir.display()),
            "-v".to_string(),
            format!("{}:/etc/rvisor-file-vol:ro", file.display()),
            "--".to_string(),
            "cat".to_string(),
            "/vol/f".to_string(),
            "/etc/rvisor-file-vol".to_string(),
        ]),
        60,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&file);
    assert_eq!(ok(&o), "from a tmp dir\nfrom a tmp file\n");
}

/// Every guest process starts with default signal dispositions, as under runc: rvisor's own
/// runtime ignores SIGPIPE, and an ignored signal survives exec.
#[test]
fn guest_processes_start_with_default_signal_dispositions() {
    let o = sh("grep SigIgn /proc/self/status; yes | head -1 >/dev/null; echo done");
    assert_eq!(ok(&o), "SigIgn:\t0000000000000000\ndone\n");
    assert!(!stderr(&o).contains("Broken pipe"), "{}", stderr(&o));
}
