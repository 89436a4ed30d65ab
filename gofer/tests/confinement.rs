//! The gofer never resolves outside its root, whatever the guest plants; and its operations do
//! what the kernel's would. Runs against a temporary directory as the root, unprivileged.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use gofer::{Gofer, IdMap, IdRange};
use rvisor_protocol::{Identity, Loc, Request};

struct Fixture {
    dir: PathBuf,
    gofer: Gofer,
    who: Identity<'static>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("gofer-test-{name}-{}", std::process::id()));
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("outside")).unwrap();
    std::fs::write(root.join("etc/passwd"), "inside\n").unwrap();
    std::fs::write(dir.join("outside/secret"), "outside\n").unwrap();
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let ids = IdMap {
        uids: vec![IdRange {
            inside: uid,
            outside: uid,
            count: 1,
        }],
        gids: vec![IdRange {
            inside: gid,
            outside: gid,
            count: 1,
        }],
    };
    let fd: OwnedFd = std::fs::File::open(&root).unwrap().into();
    Fixture {
        dir,
        gofer: Gofer::new(fd, ids),
        who: Identity::new(uid, gid),
    }
}

fn at<'a>(path: &'a str) -> Loc<'a> {
    Loc {
        base: b"/",
        path: path.as_bytes(),
    }
}

fn read_opened(f: &mut Fixture, path: &str) -> Result<String, nix::errno::Errno> {
    let req = Request::Open {
        at: at(path),
        flags: libc::O_RDONLY as u32,
        mode: 0,
        resolve: 0,
    };
    match f.gofer.handle(f.who, &req, Vec::new())? {
        gofer::Outcome::Fd(fd) => {
            Ok(std::fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap())
        }
        other => panic!("expected an fd, got {other:?}"),
    }
}

#[test]
fn symlinks_and_dotdot_stay_inside() {
    let mut f = fixture("escape");
    let root = f.dir.join("root");
    symlink("/etc/passwd", root.join("abs")).unwrap();
    symlink("../../../../../../etc/passwd", root.join("rel")).unwrap();
    symlink(f.dir.join("outside/secret"), root.join("direct")).unwrap();
    symlink("/proc/self/root/etc/passwd", root.join("magic")).unwrap();
    assert_eq!(read_opened(&mut f, "/abs").unwrap(), "inside\n");
    assert_eq!(read_opened(&mut f, "/rel").unwrap(), "inside\n");
    assert_eq!(
        read_opened(&mut f, "/../../../etc/passwd").unwrap(),
        "inside\n"
    );
    assert_eq!(
        read_opened(&mut f, "etc/../../../outside/secret"),
        Err(nix::errno::Errno::ENOENT)
    );
    assert_eq!(
        read_opened(&mut f, "/direct"),
        Err(nix::errno::Errno::ENOENT)
    );
    assert!(
        read_opened(&mut f, "/magic").is_err(),
        "no /proc inside the root"
    );
}

#[test]
fn guest_relative_paths_use_the_base() {
    let mut f = fixture("base");
    let req = Request::Open {
        at: Loc {
            base: b"/etc",
            path: b"passwd",
        },
        flags: 0,
        mode: 0,
        resolve: 0,
    };
    assert!(matches!(
        f.gofer.handle(f.who, &req, Vec::new()),
        Ok(gofer::Outcome::Fd(_))
    ));
    // RESOLVE_BENEATH from the guest is relative to its directory: no way up.
    let req = Request::Open {
        at: Loc {
            base: b"/etc",
            path: b"../etc/passwd",
        },
        flags: 0,
        mode: 0,
        resolve: 0x08,
    };
    assert_eq!(
        f.gofer.handle(f.who, &req, Vec::new()).unwrap_err(),
        nix::errno::Errno::EXDEV
    );
}

#[test]
fn mutations_happen_inside_the_root() {
    let mut f = fixture("mutate");
    let root = f.dir.join("root");
    let ok = |f: &mut Fixture, req: Request<'_>| {
        f.gofer
            .handle(f.who, &req, Vec::new())
            .unwrap_or_else(|e| panic!("{req:?}: {e}"));
    };
    ok(
        &mut f,
        Request::Mkdir {
            at: at("/d"),
            mode: 0o750,
        },
    );
    ok(
        &mut f,
        Request::Symlink {
            target: b"/etc",
            at: at("/d/l"),
        },
    );
    ok(
        &mut f,
        Request::Mknod {
            at: at("/d/fifo"),
            mode: libc::S_IFIFO | 0o600,
            dev: 0,
        },
    );
    ok(
        &mut f,
        Request::Rename {
            from: at("/etc/passwd"),
            to: at("/d/moved"),
            flags: 0,
        },
    );
    ok(
        &mut f,
        Request::Link {
            from: at("/d/moved"),
            to: at("/d/hard"),
            flags: 0,
        },
    );
    ok(
        &mut f,
        Request::Chmod {
            at: at("/d/hard"),
            mode: 0o600,
            flags: 0,
        },
    );
    ok(
        &mut f,
        Request::Truncate {
            at: at("/d/hard"),
            length: 2,
            limit: u64::MAX,
        },
    );
    ok(
        &mut f,
        Request::Unlink {
            at: at("/d/moved"),
            flags: 0,
        },
    );
    assert_eq!(std::fs::read_to_string(root.join("d/hard")).unwrap(), "in");
    assert_eq!(
        std::fs::read_link(root.join("d/l")).unwrap(),
        Path::new("/etc")
    );
    assert!(!root.join("etc/passwd").exists());
    // Through a symlink to outside, a mkdir lands inside.
    symlink(f.dir.join("outside"), root.join("out")).unwrap();
    let r = f.gofer.handle(
        f.who,
        &Request::Mkdir {
            at: at("/out/new"),
            mode: 0o755,
        },
        Vec::new(),
    );
    assert!(r.is_err());
    assert!(!f.dir.join("outside/new").exists());
    // Devices cannot be made.
    let dev = Request::Mknod {
        at: at("/d/null"),
        mode: libc::S_IFCHR | 0o666,
        dev: 0x103,
    };
    assert_eq!(
        f.gofer.handle(f.who, &dev, Vec::new()).unwrap_err(),
        nix::errno::Errno::EPERM
    );
    // Removing the root itself is refused.
    assert!(f
        .gofer
        .handle(
            f.who,
            &Request::Unlink {
                at: at("/"),
                flags: 0x200
            },
            Vec::new()
        )
        .is_err());
}

fn stat_uid(g: &mut Gofer, who: Identity<'_>, path: &str) -> u32 {
    let out = g
        .handle(
            who,
            &Request::Stat {
                at: at(path),
                flags: 0,
            },
            Vec::new(),
        )
        .unwrap();
    let gofer::Outcome::Bytes(len) = out else {
        panic!("{out:?}")
    };
    assert_eq!(len, std::mem::size_of::<libc::statx>());
    // SAFETY: the gofer returned exactly a struct statx's bytes.
    let stx: libc::statx = unsafe { std::ptr::read_unaligned(g.reply_bytes(len).as_ptr().cast()) };
    stx.stx_uid
}

#[test]
fn stat_reports_owners_in_guest_terms() {
    let mut f = fixture("stat");
    let who = f.who;
    assert_eq!(stat_uid(&mut f.gofer, who, "/etc/passwd"), who.uid);
    // The guest's 4242 is our uid: the file shows as owned by 4242.
    f.gofer = Gofer::new(
        std::fs::File::open(f.dir.join("root")).unwrap().into(),
        IdMap {
            uids: vec![IdRange {
                inside: 4242,
                outside: who.uid,
                count: 1,
            }],
            gids: vec![IdRange {
                inside: 4242,
                outside: who.gid,
                count: 1,
            }],
        },
    );
    assert_eq!(
        stat_uid(&mut f.gofer, Identity::new(4242, 4242), "/etc/passwd"),
        4242
    );
    // An id the guest's namespace cannot name shows as the overflow id.
    f.gofer = Gofer::new(
        std::fs::File::open(f.dir.join("root")).unwrap().into(),
        IdMap {
            uids: vec![
                IdRange {
                    inside: 7,
                    outside: who.uid.wrapping_add(1),
                    count: 1,
                },
                IdRange {
                    inside: 8,
                    outside: who.uid,
                    count: 1,
                },
            ],
            gids: vec![IdRange {
                inside: 7,
                outside: who.gid,
                count: 1,
            }],
        },
    );
    let root_owned = stat_uid(&mut f.gofer, Identity::new(8, 7), "/etc/passwd");
    assert_eq!(root_owned, 8);
}

#[test]
fn walk_returns_several_fds_and_errnos() {
    let mut f = fixture("walk");
    let req = Request::Walk {
        paths: vec![b"/etc/passwd", b"/nope", b"/etc"],
        nofollow: false,
    };
    let gofer::Outcome::Walked(results, fds) = f.gofer.handle(f.who, &req, Vec::new()).unwrap()
    else {
        panic!()
    };
    assert_eq!(results, vec![0, libc::ENOENT, 0]);
    assert_eq!(fds.len(), 2);
    // Without following, a symlink is found as itself.
    std::os::unix::fs::symlink("/etc/passwd", f.dir.join("root/link")).unwrap();
    for (nofollow, kind) in [(false, libc::S_IFREG), (true, libc::S_IFLNK)] {
        let req = Request::Walk {
            paths: vec![b"/link"],
            nofollow,
        };
        let gofer::Outcome::Walked(_, fds) = f.gofer.handle(f.who, &req, Vec::new()).unwrap()
        else {
            panic!()
        };
        let st = nix::sys::stat::fstat(fds[0].as_raw_fd()).unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, kind);
    }
}

/// Runs `talk` against a gofer serving the fixture `name` on one end of a socket pair (the
/// other end given to `talk`, as the sentry's); checks that the gofer ends cleanly when that
/// end is dropped.
fn serving(name: &str, talk: impl FnOnce(OwnedFd, Identity<'static>, &Path)) {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsFd;

    let mut f = fixture(name);
    let (sentry, gofer_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let (who, dir) = (f.who, f.dir.clone());
    std::thread::scope(|s| {
        let server = s.spawn(|| f.gofer.serve(gofer_end.as_fd()));
        talk(sentry, who, &dir);
        assert!(server.join().unwrap().is_ok());
    });
}

/// Bad frames get EBADMSG and the gofer keeps serving; a hang-up ends it cleanly.
#[test]
fn malformed_frames_are_refused_and_serving_goes_on() {
    use rvisor_protocol::{recv_frame, send_frame, FrameBuf, Response};
    use std::os::fd::AsFd;

    serving("frames", |sentry, who, _| {
        let mut buf = FrameBuf::default();
        let mut fds = Vec::new();
        let mut good = Vec::new();
        Request::Stat {
            at: at("/etc/passwd"),
            flags: 0,
        }
        .encode(who, &mut good);
        let mut bad_len = good.clone();
        // The group list's length (after op, uid, gid and caps) is the first.
        bad_len[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
        let garbage: Vec<Vec<u8>> = vec![
            vec![0xff, 0xff],
            vec![1],
            good[..good.len() - 1].to_vec(),
            [good.clone(), vec![0]].concat(),
            bad_len,
            vec![0x42; 5000],
        ];
        for frame in &garbage {
            send_frame(sentry.as_fd(), frame, &[]).unwrap();
            recv_frame(sentry.as_fd(), &mut buf, &mut fds).unwrap();
            assert_eq!(
                Response::decode(buf.frame()).unwrap(),
                Response::Errno(libc::EBADMSG),
                "{frame:?}"
            );
        }
        send_frame(sentry.as_fd(), &good, &[]).unwrap();
        recv_frame(sentry.as_fd(), &mut buf, &mut fds).unwrap();
        assert!(matches!(
            Response::decode(buf.frame()).unwrap(),
            Response::Bytes(_)
        ));
    });
}

/// After a response with fds comes `RELEASED`, and by then the gofer holds no copy: a file it
/// opened for writing has no writer left once ours is closed (a read lease is granted).
#[test]
fn released_follows_fds_once_the_gofers_copies_are_closed() {
    use rvisor_protocol::{recv_frame, send_frame, FrameBuf, Response, RELEASED};
    use std::os::fd::AsFd;

    serving("released", |sentry, who, dir| {
        let file = dir.join("root/written");
        let mut buf = FrameBuf::default();
        let mut fds = Vec::new();
        for _ in 0..50 {
            let mut req = Vec::new();
            Request::Open {
                at: at("/written"),
                flags: (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u32,
                mode: 0o644,
                resolve: 0,
            }
            .encode(who, &mut req);
            send_frame(sentry.as_fd(), &req, &[]).unwrap();
            recv_frame(sentry.as_fd(), &mut buf, &mut fds).unwrap();
            assert_eq!(Response::decode(buf.frame()).unwrap(), Response::Fd);
            assert_eq!(fds.len(), 1);
            let mut released = Vec::new();
            recv_frame(sentry.as_fd(), &mut buf, &mut released).unwrap();
            assert_eq!(buf.frame(), RELEASED);
            assert!(released.is_empty());
            fds.clear();
            let reader = std::fs::File::open(&file).unwrap();
            // SAFETY: fcntl on a file we own; F_SETLEASE takes an int.
            let rc = unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETLEASE, libc::F_RDLCK) };
            assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        }
        // A response without fds has no RELEASED after it.
        let mut req = Vec::new();
        Request::Stat {
            at: at("/etc/passwd"),
            flags: 0,
        }
        .encode(who, &mut req);
        send_frame(sentry.as_fd(), &req, &[]).unwrap();
        recv_frame(sentry.as_fd(), &mut buf, &mut fds).unwrap();
        assert!(matches!(
            Response::decode(buf.frame()).unwrap(),
            Response::Bytes(_)
        ));
    });
}
