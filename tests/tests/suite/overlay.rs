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
