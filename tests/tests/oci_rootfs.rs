//! A container's writable root is its bundle's rootfs (`root.readonly: false`, as with runc):
//! the gofer makes the writes there, confined to it, with the container's ids; a read-only root
//! refuses them; `--overlay=memory` keeps the bundle unchanged; the runtime itself adds only the
//! mount points; and `rvisor do` keeps its memory overlay.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rvisor_tests::{compile_c_static, ok, run_for, rvisor_do_on, stderr, stdout, Oci};

fn arg(p: &Path) -> String {
    p.display().to_string()
}

/// busybox applets these tests use beyond the harness's.
const MORE: [&str; 10] = [
    "rm", "mv", "chmod", "chown", "ln", "mkfifo", "rmdir", "stat", "tar", "readlink",
];

/// A bundle whose process runs `script` under `sh -c`; returns it and its rootfs.
fn bundle(
    oci: &Oci,
    name: &str,
    script: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (PathBuf, PathBuf) {
    let b = oci.bundle(name, &["sh", "-c", script], edit);
    let rootfs = b.join("rootfs");
    for tool in MORE {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool));
    }
    (b, rootfs)
}

fn writable(s: &mut serde_json::Value) {
    s["root"]["readonly"] = false.into();
}

/// Binds a Unix socket at argv[1] (busybox cannot).
const BIND_SOCK: &str = r#"
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(int argc, char **argv) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); return 1; }
    return 0;
}
"#;

fn install_probe(rootfs: &Path, name: &str, source: &str) {
    let bin = compile_c_static(name, source);
    std::fs::copy(bin, rootfs.join("bin").join(name)).unwrap();
}

#[test]
fn writes_reach_the_bundles_rootfs_while_it_runs_and_after() {
    let oci = Oci::new("rootfs-writes");
    let script = "trap 'echo bye > /bye; exit 0' TERM; \
                  echo more >> /old && rm /gone && mv /from /to && chmod 0600 /perm && \
                  mkdir -p /d/e && echo f > /d/e/f && ln -s d/e/f /sym && ln /d/e/f /hard && \
                  mkfifo /fifo && bindsock /sock && rmdir /emptied && echo t > /tmp/t && \
                  echo ready > /ready; while true; do sleep 0.05; done";
    let (b, rootfs) = bundle(&oci, "b", script, writable);
    install_probe(&rootfs, "bindsock", BIND_SOCK);
    for (name, text) in [
        ("old", "old\n"),
        ("gone", "x"),
        ("from", "moved\n"),
        ("perm", ""),
    ] {
        std::fs::write(rootfs.join(name), text).unwrap();
    }
    std::fs::set_permissions(rootfs.join("perm"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::create_dir(rootfs.join("emptied")).unwrap();
    oci.ok(&["run", "-d", "--bundle", &arg(&b), "w1"]);
    rvisor_tests::wait_until("/ready in the bundle's rootfs", || {
        rootfs.join("ready").exists()
    });
    // While it runs.
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap_or_default();
    assert_eq!(read("old"), "old\nmore\n");
    assert!(!rootfs.join("gone").exists() && !rootfs.join("from").exists());
    assert_eq!(read("to"), "moved\n");
    let mode = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap().mode();
    assert_eq!(mode("perm") & 0o7777, 0o600);
    assert_eq!(read("d/e/f"), "f\n");
    assert_eq!(
        std::fs::read_link(rootfs.join("sym")).unwrap(),
        Path::new("d/e/f")
    );
    let (f, hard) = (
        std::fs::metadata(rootfs.join("d/e/f")).unwrap(),
        std::fs::metadata(rootfs.join("hard")).unwrap(),
    );
    assert_eq!((hard.ino(), hard.nlink()), (f.ino(), 2));
    let kind = |p: &str| {
        std::fs::symlink_metadata(rootfs.join(p))
            .unwrap()
            .file_type()
    };
    assert!(kind("fifo").is_fifo());
    assert!(kind("sock").is_socket());
    assert!(!rootfs.join("emptied").exists());
    // The rootfs's own /tmp, as with runc: part of the snapshot.
    assert_eq!(read("tmp/t"), "t\n");
    // And what it writes as it ends.
    oci.ok(&["kill", "w1", "TERM"]);
    let o = oci.run(&["wait", "w1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(read("bye"), "bye\n");
    oci.ok(&["delete", "w1"]);
    assert_eq!(read("to"), "moved\n");
}

#[test]
fn a_missing_working_directory_is_made_in_the_rootfs() {
    let oci = Oci::new("rootfs-cwd");
    let (b, rootfs) = bundle(&oci, "b", "pwd && echo w > here", |s| {
        writable(s);
        s["process"]["cwd"] = "/work/dir".into();
    });
    let o = oci.run(&["run", "--bundle", &arg(&b), "c1"]);
    assert_eq!(stdout(&o), "/work/dir\n", "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(rootfs.join("work/dir/here")).unwrap(),
        "w\n"
    );
}

#[test]
fn files_are_owned_by_the_containers_ids_on_the_host() {
    let oci = Oci::new("rootfs-owners");
    let (b, rootfs) = bundle(
        &oci,
        "b",
        "touch /byroot /given && chown 4321:5432 /given && mkdir /pub && chmod 1777 /pub",
        |s| {
            writable(s);
            // chown needs CAP_CHOWN, which the default spec (as runc's) leaves out.
            for set in ["bounding", "effective", "permitted"] {
                s["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push("CAP_CHOWN".into());
            }
        },
    );
    oci.ok(&["run", "--bundle", &arg(&b), "o1"]);
    let owner = |p: &Path| {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner(&rootfs.join("byroot")), (0, 0));
    assert_eq!(owner(&rootfs.join("given")), (4321, 5432));
    // Another user of the same bundle.
    let config = b.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    spec["process"]["user"] = serde_json::json!({"uid": 1234, "gid": 2345});
    spec["process"]["args"] = serde_json::json!(["sh", "-c", "touch /pub/byuser; touch /denied"]);
    std::fs::write(&config, spec.to_string()).unwrap();
    let o = oci.run(&["run", "--bundle", &arg(&b), "o2"]);
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    assert_eq!(owner(&rootfs.join("pub/byuser")), (1234, 2345));
    assert!(!rootfs.join("denied").exists());

    // With a user namespace the ids are the mapped ones (a rootfs owned by the mapped root, as
    // runc needs it).
    let base = 200_000u32;
    let script = "touch /mapped && id -u";
    let (b, rootfs) = bundle(&oci, "u", script, |s| {
        writable(s);
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "user"}));
        let map = serde_json::json!([{"containerID": 0, "hostID": base, "size": 65536}]);
        s["linux"]["uidMappings"] = map.clone();
        s["linux"]["gidMappings"] = map;
    });
    ok(&run_for(
        std::process::Command::new("chown").args(["-R", &format!("{base}:{base}"), &arg(&rootfs)]),
        30,
    ));
    let o = oci.run(&["run", "--bundle", &arg(&b), "o3"]);
    assert_eq!(stdout(&o), "0\n", "{}", stderr(&o));
    assert_eq!(owner(&rootfs.join("mapped")), (base, base));
}

#[test]
fn a_read_only_root_refuses_writes_but_its_volumes_take_them() {
    let oci = Oci::new("rootfs-ro");
    let (b, rootfs) = bundle(&oci, "b", "echo one > /kept", writable);
    oci.ok(&["run", "--bundle", &arg(&b), "r1"]);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("kept")).unwrap(),
        "one\n"
    );
    let vol = oci.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let config = b.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    spec["root"]["readonly"] = true.into();
    spec["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "cat /kept; echo two > /kept; rm /kept; mkdir /new; echo v > /vol/v && \
         echo s > /scratch/s && cat /scratch/s && mkfifo /scratch/f && exec 3<>/scratch/f && \
         echo fifo >&3 && read x <&3 && echo $x"
    ]);
    spec["mounts"].as_array_mut().unwrap().extend([
        serde_json::json!({"destination": "/vol", "type": "bind", "source": arg(&vol), "options": ["rbind", "rw"]}),
        serde_json::json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    ]);
    std::fs::write(&config, spec.to_string()).unwrap();
    let o = oci.run(&["run", "--bundle", &arg(&b), "r2"]);
    // A FIFO in the spec's tmpfs opens for writing natively, as in a volume.
    assert_eq!(stdout(&o), "one\ns\nfifo\n", "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("Read-only file system").count(), 3, "{err}");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("kept")).unwrap(),
        "one\n"
    );
    assert!(!rootfs.join("new").exists());
    assert_eq!(std::fs::read_to_string(vol.join("v")).unwrap(), "v\n");
}

/// Swaps `/race/d` between a directory and a symlink to argv[1] while renaming and creating
/// files in it; writes `/race/done` at the end.
const RACE: &str = r#"
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
static const char *target;
static volatile int stop;
static void *swapper(void *arg) {
    (void)arg;
    while (!stop) {
        rename("/race/d", "/race/real");
        symlink(target, "/race/d");
        unlink("/race/d");
        rename("/race/real", "/race/d");
    }
    return 0;
}
int main(int argc, char **argv) {
    target = argv[1];
    mkdir("/race", 0755);
    mkdir("/race/d", 0755);
    pthread_t t;
    pthread_create(&t, 0, swapper, 0);
    char name[64];
    for (int i = 0; i < 3000; i++) {
        int fd = open("/race/src", O_CREAT | O_WRONLY, 0644);
        if (fd >= 0) close(fd);
        rename("/race/src", "/race/d/f");
        snprintf(name, sizeof name, "/race/d/n%d", i);
        fd = open(name, O_CREAT | O_WRONLY, 0644);
        if (fd >= 0) close(fd);
        snprintf(name, sizeof name, "/race/d/m%d", i);
        mkdir(name, 0755);
    }
    stop = 1;
    pthread_join(t, 0);
    int fd = open("/race/done", O_CREAT | O_WRONLY, 0644);
    return fd < 0;
}
"#;

#[test]
fn links_and_races_in_the_rootfs_cannot_write_outside_it() {
    let oci = Oci::new("rootfs-links");
    let outside = oci.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let out_rel = outside.strip_prefix("/").unwrap();
    let script = "for d in abs rel dotdot/inside; do \
                    echo p > /$d/pwn; mkdir /$d/dir; mkfifo /$d/fifo; ln -s /x /$d/sl; \
                    bindsock /$d/sock; ln /hl /$d/hl; done; mv /moved /abs/moved; \
                    chmod 0777 /abs; race /$(readlink /abs); race ../../../../../../../..$(readlink /abs)";
    let (b, rootfs) = bundle(&oci, "b", script, writable);
    install_probe(&rootfs, "bindsock", BIND_SOCK);
    install_probe(&rootfs, "race", RACE);
    // Planted by a hostile image: links out of the rootfs, as the host would follow them.
    std::os::unix::fs::symlink(&outside, rootfs.join("abs")).unwrap();
    let up = "../".repeat(outside.components().count() + 3);
    std::os::unix::fs::symlink(format!("{up}{}", out_rel.display()), rootfs.join("rel")).unwrap();
    std::os::unix::fs::symlink("/..", rootfs.join("dotdot")).unwrap();
    std::fs::create_dir_all(rootfs.join("inside")).unwrap();
    // Inside the root, the links name this directory.
    let landing = rootfs.join(out_rel);
    std::fs::create_dir_all(&landing).unwrap();
    for f in ["hl", "moved"] {
        std::fs::write(rootfs.join(f), "x").unwrap();
    }
    let o = oci.run(&["run", "--bundle", &arg(&b), "l1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "written outside the rootfs: {left:?}");
    assert_eq!(
        std::fs::metadata(&outside).unwrap().mode() & 0o777,
        0o755,
        "chmod through a link"
    );
    for dir in [&landing, &rootfs.join("inside")] {
        for name in ["pwn", "dir", "fifo", "sl", "sock", "hl"] {
            assert!(
                std::fs::symlink_metadata(dir.join(name)).is_ok(),
                "{name} should have landed in {}",
                dir.display()
            );
        }
    }
    assert!(landing.join("moved").exists());
    assert!(rootfs.join("race/done").exists());
    // The swap raced the creations: many went through the link, and landed inside the root
    // (beyond the 7 names made above).
    assert!(std::fs::read_dir(&landing).unwrap().count() > 7 + 10);
}

#[test]
fn a_rootfs_that_is_a_mount_point_takes_the_writes_and_only_the_mount_points_are_added() {
    let oci = Oci::new("rootfs-mount");
    let vol = oci.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("file"), "").unwrap();
    let (b, rootfs) = bundle(
        &oci,
        "b",
        "echo n > /new && rm /etc/gone && ls /mnt/vol /scratch",
        |s| {
            writable(s);
            s["mounts"].as_array_mut().unwrap().extend([
                serde_json::json!({"destination": "/mnt/vol", "type": "bind", "source": arg(&vol), "options": ["rbind", "ro"]}),
                serde_json::json!({"destination": "/mnt/one", "type": "bind", "source": arg(&vol.join("file")), "options": ["rbind", "ro"]}),
                serde_json::json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
            ]);
        },
    );
    // As containerd gives it: an overlay of the image's layers and the container's own.
    let (lower, upper, work) = (b.join("lower"), b.join("upper"), b.join("work"));
    std::fs::rename(&rootfs, &lower).unwrap();
    std::fs::write(lower.join("etc/gone"), "x").unwrap();
    for d in [&rootfs, &upper, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    ok(&run_for(
        std::process::Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&rootfs),
        30,
    ));
    let o = oci.run(&["run", "--bundle", &arg(&b), "m1"]);
    let mut changed = Vec::new();
    let mut stack = vec![upper.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let name = e.path().strip_prefix(&upper).unwrap().display().to_string();
            let whiteout = m.file_type().is_char_device() && m.rdev() == 0;
            changed.push(if whiteout { format!("-{name}") } else { name });
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    changed.sort();
    let _ = std::process::Command::new("umount").arg(&rootfs).status();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "/mnt/vol:\nfile\n\n/scratch:\n");
    assert_eq!(
        changed,
        [
            "-etc/gone",
            "etc",
            "mnt",
            "mnt/one",
            "mnt/vol",
            "new",
            "scratch"
        ]
    );
    assert_eq!(std::fs::read_to_string(upper.join("new")).unwrap(), "n\n");
    assert!(lower.join("etc/gone").exists());
}

#[test]
fn device_nodes_in_the_rootfs_do_not_open_and_a_memory_overlay_keeps_the_bundle() {
    let oci = Oci::new("rootfs-dev");
    let script = "head -c 4 /zero | wc -c; echo m > /m && cat /m";
    for (i, overlay) in [None, Some("--overlay=memory")].into_iter().enumerate() {
        let (b, rootfs) = bundle(&oci, &format!("b{i}"), script, writable);
        // A hostile image may hold device nodes (containerd unpacks them as root).
        ok(&run_for(
            std::process::Command::new("mknod")
                .arg(rootfs.join("zero"))
                .args(["c", "1", "5"]),
            30,
        ));
        let id = format!("d{i}");
        let mut args: Vec<&str> = overlay.into_iter().collect();
        args.extend(["run", "--bundle"]);
        let bundle_arg = arg(&b);
        args.extend([bundle_arg.as_str(), id.as_str()]);
        let o = oci.run(&args);
        assert_eq!(stdout(&o), "0\nm\n", "{overlay:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
        assert_eq!(rootfs.join("m").exists(), overlay.is_none(), "{overlay:?}");
    }
}

#[test]
fn rvisor_do_keeps_its_memory_overlay_and_refuses_a_written_through_root() {
    let root = rvisor_tests::mini_root("rootfs-do");
    let o = run_for(
        &mut rvisor_do_on(
            "seccomp-notify",
            [
                "--root",
                &arg(&root),
                "--",
                "/bin/sh",
                "-c",
                "echo x > /f && cat /f",
            ],
        ),
        60,
    );
    assert_eq!(ok(&o), "x\n");
    assert!(!root.join("f").exists());
    let mut none = std::process::Command::new(rvisor_tests::rvisor());
    none.args(["--overlay=none", "do", "--root", &arg(&root), "--"])
        .args(["/bin/sh", "-c", "echo x > /f"])
        .current_dir("/");
    let o = run_for(&mut none, 60);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert!(!root.join("f").exists());
    let mut rootfs = std::process::Command::new(rvisor_tests::rvisor());
    rootfs
        .args([
            "--overlay=rootfs",
            "do",
            "--root",
            &arg(&root),
            "--",
            "/bin/true",
        ])
        .current_dir("/");
    let o = run_for(&mut rootfs, 60);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("--overlay=rootfs is for containers"),
        "{}",
        stderr(&o)
    );
    assert!(!root.join("f").exists());
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_symlink_at_a_mount_point_resolves_inside_the_root() {
    let oci = Oci::new("rootfs-mntlink");
    let host = oci.dir.join("host");
    let vol = oci.dir.join("vol");
    for d in [&host, &vol] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(vol.join("file"), "").unwrap();
    for (i, overlay) in ["--overlay=memory", "--overlay=rootfs"]
        .into_iter()
        .enumerate()
    {
        let (b, rootfs) = bundle(&oci, &format!("b{i}"), "ls /mnt/vol /mnt/t", |s| {
            writable(s);
            s["mounts"].as_array_mut().unwrap().extend([
                serde_json::json!({"destination": "/mnt/vol", "type": "bind", "source": arg(&vol), "options": ["rbind", "ro"]}),
                serde_json::json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
            ]);
        });
        // A hostile image's link to a host directory: inside the root it names this one.
        std::os::unix::fs::symlink(&host, rootfs.join("mnt")).unwrap();
        let inside = rootfs.join(host.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        let id = format!("s{i}");
        let o = oci.run(&[overlay, "run", "--bundle", &arg(&b), &id]);
        assert_eq!(
            stdout(&o),
            "/mnt/t:\n\n/mnt/vol:\nfile\n",
            "{overlay}: {}",
            stderr(&o)
        );
        let made: Vec<_> = std::fs::read_dir(&host).unwrap().flatten().collect();
        assert!(made.is_empty(), "{overlay}: made on the host: {made:?}");
        assert_eq!(
            inside.join("vol").is_dir() && inside.join("t").is_dir(),
            overlay == "--overlay=rootfs"
        );
    }
}

/// A rootfs holding nothing but busybox, with the spec `rvisor spec` writes: runc makes the
/// directories its /proc, /dev and /sys go on, and so must we, whether the root is read-only or
/// written through (it failed with "mount destination /dev/shm: Read-only file system").
#[test]
fn a_rootfs_of_only_a_binary_runs_read_only_and_written_through() {
    let oci = Oci::new("bare-rootfs");
    for (id, readonly) in [("bare-ro", true), ("bare-rw", false)] {
        let bundle = oci.dir.join(id);
        let bin = bundle.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox-static");
        std::fs::copy(busybox, bin.join("busybox")).unwrap();
        ok(&run_for(
            std::process::Command::new(rvisor_tests::rvisor())
                .args(["spec", "--bundle"])
                .arg(&bundle),
            30,
        ));
        let config = bundle.join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] =
            serde_json::json!(["/bin/busybox", "ls", "/dev/shm", "/proc/self"]);
        spec["root"]["readonly"] = readonly.into();
        std::fs::write(&config, spec.to_string()).unwrap();
        let o = oci.run(&["run", "--bundle", &arg(&bundle), id]);
        assert_eq!(o.status.code(), Some(0), "{id}: {}", stderr(&o));
        assert!(stdout(&o).contains("exe"), "{id}: {}", stdout(&o));
        for d in ["proc", "dev", "sys"] {
            assert!(bundle.join("rootfs").join(d).is_dir(), "{id}: no {d}");
        }
    }
}
