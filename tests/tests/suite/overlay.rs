//! The memory overlay: the guest changes anything, the host sees nothing; files made in the
//! sandbox run; `--overlay=none` writes only through rw volumes.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::prelude::*;

/// Content, mode and owner of every file under `dir` (no link followed).
fn digest(dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, u32, u32)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let content = if m.is_file() {
            std::fs::read(&p).unwrap_or_default()
        } else if m.file_type().is_symlink() {
            std::fs::read_link(&p)
                .map(|t| t.into_os_string().into_encoded_bytes())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        out.insert(p.display().to_string(), (content, m.mode(), m.uid()));
        if m.is_dir() {
            digest(&p, out);
        }
    }
}

fn snapshot() -> BTreeMap<String, (Vec<u8>, u32, u32)> {
    let mut d = BTreeMap::new();
    for dir in ["/etc", "/usr/share/doc", "/usr/local"] {
        digest(Path::new(dir), &mut d);
    }
    d
}

#[test]
fn host_tree_is_byte_identical_after_destructive_changes() {
    let before = snapshot();
    assert!(before.len() > 100, "too little to compare");
    let script = "rm -rf /usr/share/doc && echo x > /etc/passwd && mv /etc/hostname /etc/h2 \
                  && chmod 000 /etc/shells && chown 0:0 /etc/h2 && mkdir /newdir && ln -s /x /usr/local/l \
                  && ls /usr/share/doc 2>/dev/null; cat /etc/passwd; test -e /etc/hostname || echo moved; \
                  stat -c %a /etc/shells; readlink /usr/local/l; test -d /newdir && echo newdir";
    let out = ok(&sh(script));
    assert_eq!(out, "x\nmoved\n0\n/x\nnewdir\n");
    assert_eq!(before, snapshot(), "the host tree changed");
    assert!(!Path::new("/newdir").exists());
}

#[test]
fn files_made_in_the_sandbox_can_be_executed() {
    let out = ok(&sh("cp /bin/true /usr/local/bin/rvisor-x && rvisor-x && echo ran; \
                      printf '#!/bin/sh\\necho script-ran\\n' > /tmp/s && chmod +x /tmp/s && /tmp/s"));
    assert_eq!(out, "ran\nscript-ran\n");
    assert!(!Path::new("/usr/local/bin/rvisor-x").exists());
}

#[test]
fn overlay_none_writes_through_rw_volumes_only() {
    let rw = scratch("overlay-none-rw");
    let ro = scratch("overlay-none-ro");
    std::fs::write(ro.join("f"), "ro\n").unwrap();
    let o = run_for(
        &mut rvisor_do([
            "--overlay=none".to_string(),
            format!("--volume={}:/tmp/rw", rw.display()),
            format!("--volume={}:/tmp/ro:ro", ro.display()),
            "--".to_string(),
            "sh".to_string(),
            "-c".to_string(),
            "echo through > /tmp/rw/out && (echo no > /tmp/ro/f) 2>&1; (touch /usr/x) 2>&1; echo end".to_string(),
        ]),
        60,
    );
    let out = ok(&o);
    assert_eq!(out.matches("Read-only file system").count(), 2, "{out}");
    assert_eq!(
        std::fs::read_to_string(rw.join("out")).unwrap(),
        "through\n"
    );
    assert_eq!(std::fs::read_to_string(ro.join("f")).unwrap(), "ro\n");
}

/// `script` under `rvisor do --overlay-size 64m` (rootless with `rootless`), its stderr folded
/// into stdout.
fn in_64m(rootless: bool, script: &str) -> std::process::Output {
    let args = [
        "--overlay-size",
        "64m",
        "--",
        "sh",
        "-c",
        &format!("exec 2>&1; {script}"),
    ];
    let mut cmd = do_as(rootless, args);
    run_for(&mut cmd, 120)
}

/// Fills `path` with 200 MiB; on a 64 MiB budget the writer gets ENOSPC, and the sandbox goes on:
/// the file is removed, a small one written and read back, and the command's status comes out.
fn fills_with_enospc_and_recovers(rootless: bool, path: &str) {
    let o = in_64m(
        rootless,
        &format!(
            "head -c 200M /dev/zero > {path}; echo fill=$?; \
             rm {path} && echo small > {path}.small && cat {path}.small; exit 3"
        ),
    );
    let out = stdout(&o);
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.contains("fill=1\n"), "{out}");
    assert!(out.ends_with("small\n"), "{out}");
    assert_eq!(o.status.code(), Some(3), "{out}");
}

#[test]
fn overlay_size_fills_the_root_with_enospc_and_the_sandbox_recovers() {
    fills_with_enospc_and_recovers(false, "/var/tmp/rvisor-fill");
}

#[test]
fn overlay_size_bounds_tmp_too() {
    fills_with_enospc_and_recovers(false, "/tmp/fill");
}

/// The overlay's upper layer, /tmp and /dev/shm share one budget: 40 MiB in one leaves too little
/// for 40 MiB in another.
#[test]
fn overlay_size_is_one_budget_for_the_root_tmp_and_shm() {
    let o = in_64m(
        false,
        "head -c 40M /dev/zero > /tmp/a && echo tmp-ok; \
         head -c 40M /dev/zero > /var/tmp/rvisor-b || echo root-full; \
         head -c 40M /dev/zero > /dev/shm/c || echo shm-full; \
         rm /tmp/a && head -c 40M /dev/zero > /dev/shm/c && echo shm-ok",
    );
    let out = ok(&o);
    for word in ["tmp-ok\n", "root-full\n", "shm-full\n", "shm-ok\n"] {
        assert!(out.contains(word), "{word:?} missing: {out}");
    }
}

/// Rootless, the root is composed of one overlay per top-level directory on a tmpfs `/`: they
/// all draw on the one budget, with /tmp.
#[test]
fn rootless_overlay_size_is_one_budget_for_every_overlay() {
    let o = in_64m(
        true,
        "head -c 40M /dev/zero > /usr/rvisor-a && echo usr-ok; \
         head -c 40M /dev/zero > /rvisor-b || echo top-full; \
         head -c 40M /dev/zero > /tmp/c || echo tmp-full; \
         rm /usr/rvisor-a /rvisor-b /tmp/c && echo small > /tmp/d && cat /tmp/d",
    );
    let out = ok(&o);
    for word in ["usr-ok\n", "top-full\n", "tmp-full\n"] {
        assert!(out.contains(word), "{word:?} missing: {out}");
    }
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.ends_with("small\n"), "{out}");
}

#[test]
fn rootless_overlay_size_fills_with_enospc_and_the_sandbox_recovers() {
    fills_with_enospc_and_recovers(true, "/usr/rvisor-fill");
}

#[test]
fn overlay_size_refuses_bad_values_in_one_line() {
    for bad in ["abc", "0", "-1", "200%", "1.5g"] {
        let o = run_for(
            &mut rvisor_do([&format!("--overlay-size={bad}"), "--", "echo", "ran"]),
            30,
        );
        let err = stderr(&o);
        assert!(!o.status.success(), "{bad}: {err}");
        assert_eq!(stdout(&o), "", "{bad}: the command ran");
        assert_eq!(err.lines().count(), 1, "{bad}: {err}");
        assert!(
            err.contains("--overlay-size") && err.contains(&format!("{bad:?}")),
            "{bad}: {err}"
        );
    }
}

/// A FIFO's reader and writer meet only each other: the sandbox must not open the FIFO itself
/// when it serves the writer's open (it did, non-blocking, to learn the type: the reader waiting
/// in its open took that for its partner, read EOF when it closed, and the writer then waited
/// forever, in about 1 run of 4).
#[test]
fn a_fifos_reader_and_writer_meet_only_each_other() {
    // The pause only makes it likely that the reader waits in its open before the writer
    // comes; the check holds either way (a writer left waiting holds the run to its limit).
    let script = "cd /tmp && for i in $(seq 20); do mkfifo f$i && { cat f$i > out$i & } && \
                  sleep 0.05 && echo hello$i > f$i || echo FAIL$i; done; \
                  wait; cat out* | grep -c hello";
    let o = run_for(&mut rvisor_do(["--", "sh", "-c", script]), 120);
    assert_eq!(ok(&o), "20\n", "{o:?}");
}
