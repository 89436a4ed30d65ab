//! Reopening through `/proc/self/fd/N` and changing an object through its fd link: a descriptor
//! handed in from outside grants what it grants, not what its inode would; a file of the tree
//! reopens as Linux allows; and a directory fd of the guest's read-only view (a native
//! O_DIRECTORY open) still lets tar and Python change modes through `/proc/self/fd`.

use std::process::Stdio;

use super::prelude::*;

#[test]
fn a_read_only_stdin_stays_read_only() {
    let dir = scratch(&format!("reopen-stdin-{}", crate::PLATFORM));
    let file = dir.join("ro.txt");
    std::fs::write(&file, "original\n").unwrap();
    set_mode(&file, 0o444);
    let o = run_for(
        rvisor_do([
            "--",
            "sh",
            "-c",
            "for p in /proc/self/fd/0 /proc/thread-self/fd/0 /dev/stdin /dev/fd/0; do \
             (echo PWNED > $p) 2>/dev/null; echo rc=$?; done",
        ])
        .stdin(Stdio::from(std::fs::File::open(&file).unwrap())),
        60,
    );
    assert!(
        stdout(&o).contains("rc=1") || stdout(&o).contains("rc=2"),
        "{o:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
}

#[test]
fn an_append_only_fd_handed_in_cannot_be_read_back() {
    let dir = scratch(&format!("reopen-append-{}", crate::PLATFORM));
    let file = dir.join("wo.log");
    std::fs::write(&file, "earlier line\n").unwrap();
    set_mode(&file, 0o600);
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    let mut cmd = rvisor_do([
        "--preserve-fds",
        "1",
        "--",
        "sh",
        "-c",
        "cat /proc/self/fd/3; echo rc=$?",
    ]);
    leave_open(&mut cmd, vec![(3, log.into())]);
    let o = run_for(&mut cmd, 60);
    assert!(!stdout(&o).contains("earlier line"), "{o:?}");
    assert!(stdout(&o).contains("rc=1"), "{o:?}");
}

#[test]
fn a_file_of_the_tree_reopens_wider_as_linux_allows() {
    let dir = scratch(&format!("reopen-tree-{}", crate::PLATFORM));
    std::fs::write(dir.join("f"), "hello\n").unwrap();
    let volume = format!("{}:/w", dir.display());
    let out = ok(&run_for(
        &mut rvisor_do([
            "-v",
            &volume,
            "--",
            "sh",
            "-c",
            "exec 3</w/f; echo more >> /proc/self/fd/3 && cat /w/f",
        ]),
        60,
    ));
    assert_eq!(out, "hello\nmore\n");
}

#[test]
fn tar_restores_directory_modes_and_python_chmods_without_following() {
    let out = ok(&sh(
        "cd /tmp && mkdir -p a/b && chmod 750 a/b && tar cf t.tar a && mkdir x && \
         tar xf t.tar -C x && stat -c %a x/a/b && touch f && \
         python3 -c \"import os; os.chmod('f', 0o600, follow_symlinks=False); \
         print(oct(os.stat('f').st_mode & 0o777))\"",
    ));
    assert_eq!(out, "750\n0o600\n");
}
