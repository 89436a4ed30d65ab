//! The messages: what the sentry asks, what the gofer answers.

use crate::codec::{DecodeError, Reader, Writer};

/// Longest path or name carried (PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// Largest frame either side sends (an xattr value is at most 64 KiB).
pub const MAX_FRAME: usize = 72 * 1024;
/// Most paths in one batched walk.
pub const MAX_BATCH: usize = 32;
/// Most objects one [`Request::HandIn`] names (a process's stdio and `--preserve-fds`).
pub const MAX_HANDED_IN: usize = 1024;
/// Most objects handed in that a sandbox records in all (its own and its joined processes').
pub const MAX_OUTSIDE: usize = 4096;
const MAX_VALUE: usize = 64 * 1024;

/// Most supplementary groups a request carries (a task with more is refused: leaving some out
/// could grant what a group entry denies).
pub const MAX_GROUPS: usize = 1024;

/// Who a request acts for: the guest thread's file identity as its own user namespace sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    /// Filesystem uid.
    pub uid: u32,
    /// Filesystem gid.
    pub gid: u32,
    /// Effective capabilities (the gofer takes on the file-related ones).
    pub caps: u64,
    /// Supplementary groups, each a little-endian u32.
    pub groups: &'a [u8],
}

impl Identity<'_> {
    /// `uid`/`gid` with every capability and no supplementary groups.
    pub const fn new(uid: u32, gid: u32) -> Self {
        Identity {
            uid,
            gid,
            caps: u64::MAX,
            groups: &[],
        }
    }

    /// The supplementary groups.
    pub fn group_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }
}

impl Default for Identity<'_> {
    fn default() -> Self {
        Identity::new(0, 0)
    }
}

/// A guest path: `path` as the guest gave it, and the guest-absolute directory it is relative to
/// (`/` for absolute paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc<'a> {
    /// Starting directory, absolute in the sandbox.
    pub base: &'a [u8],
    /// The path as given.
    pub path: &'a [u8],
}

/// Operation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Op {
    /// Open a file: answers with an fd.
    Open = 1,
    /// statx: answers with the raw `struct statx`.
    Stat = 2,
    /// readlink: answers with the target.
    Readlink = 3,
    /// mkdir.
    Mkdir = 4,
    /// mknod (fifo, regular file, socket).
    Mknod = 5,
    /// unlink or rmdir.
    Unlink = 6,
    /// renameat2.
    Rename = 7,
    /// linkat (with an fd for AT_EMPTY_PATH).
    Link = 8,
    /// symlink.
    Symlink = 9,
    /// chmod.
    Chmod = 10,
    /// chown.
    Chown = 11,
    /// utimensat.
    Utimens = 12,
    /// truncate.
    Truncate = 13,
    /// statfs: answers with the raw `struct statfs`.
    Statfs = 14,
    /// faccessat2.
    Access = 15,
    /// getxattr: answers with the value (or its size).
    GetXattr = 16,
    /// listxattr: answers with the names (or their size).
    ListXattr = 17,
    /// setxattr.
    SetXattr = 18,
    /// removexattr.
    RemoveXattr = 19,
    /// Walk several absolute paths at once: answers with O_PATH fds.
    Walk = 20,
    /// Bind the Unix socket sent along to a path.
    Bind = 21,
    /// An O_PATH handle on the Unix socket at a path, if the guest may reach it.
    Socket = 22,
    /// Objects handed in to a process that joined the sandbox: no attribute change for them.
    HandIn = 23,
}

impl Op {
    fn from_code(code: u16) -> Result<Op, DecodeError> {
        use Op::*;
        Ok(match code {
            1 => Open,
            2 => Stat,
            3 => Readlink,
            4 => Mkdir,
            5 => Mknod,
            6 => Unlink,
            7 => Rename,
            8 => Link,
            9 => Symlink,
            10 => Chmod,
            11 => Chown,
            12 => Utimens,
            13 => Truncate,
            14 => Statfs,
            15 => Access,
            16 => GetXattr,
            17 => ListXattr,
            18 => SetXattr,
            19 => RemoveXattr,
            20 => Walk,
            21 => Bind,
            22 => Socket,
            23 => HandIn,
            c => return Err(DecodeError::UnknownCode(c)),
        })
    }

    /// Whether the operation changes the tree (and so invalidates cached lookups).
    pub fn mutates(self) -> bool {
        use Op::*;
        matches!(
            self,
            Mkdir
                | Mknod
                | Unlink
                | Rename
                | Link
                | Symlink
                | Chmod
                | Chown
                | SetXattr
                | RemoveXattr
                | Bind
        )
    }
}

/// The two `timespec`s (atime, mtime) of a [`Request::Utimens`]'s `times`, for utimensat.
pub fn timespecs(times: &[i64; 4]) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: times[0],
            tv_nsec: times[1],
        },
        libc::timespec {
            tv_sec: times[2],
            tv_nsec: times[3],
        },
    ]
}

/// A request from the sentry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// openat2 with the guest's flags, mode and resolve flags.
    Open {
        /// Where.
        at: Loc<'a>,
        /// open flags.
        flags: u32,
        /// Creation mode (umask applied by the sentry).
        mode: u32,
        /// The guest's RESOLVE_* flags.
        resolve: u64,
    },
    /// statx; `flags` carries AT_SYMLINK_NOFOLLOW.
    Stat {
        /// Where.
        at: Loc<'a>,
        /// AT_* flags.
        flags: u32,
    },
    /// readlink.
    Readlink {
        /// Where.
        at: Loc<'a>,
    },
    /// mkdir.
    Mkdir {
        /// Where.
        at: Loc<'a>,
        /// Mode (umask applied).
        mode: u32,
    },
    /// mknod.
    Mknod {
        /// Where.
        at: Loc<'a>,
        /// Type and mode (umask applied).
        mode: u32,
        /// Device number (must be 0: no devices).
        dev: u64,
    },
    /// unlink; AT_REMOVEDIR for rmdir.
    Unlink {
        /// Where.
        at: Loc<'a>,
        /// AT_* flags.
        flags: u32,
    },
    /// renameat2.
    Rename {
        /// Source.
        from: Loc<'a>,
        /// Destination.
        to: Loc<'a>,
        /// RENAME_* flags.
        flags: u32,
    },
    /// linkat; with AT_EMPTY_PATH the source is the fd sent along.
    Link {
        /// Source.
        from: Loc<'a>,
        /// New name.
        to: Loc<'a>,
        /// AT_* flags.
        flags: u32,
    },
    /// symlink.
    Symlink {
        /// Link content.
        target: &'a [u8],
        /// New name.
        at: Loc<'a>,
    },
    /// fchmodat2.
    Chmod {
        /// Where.
        at: Loc<'a>,
        /// Mode.
        mode: u32,
        /// AT_* flags.
        flags: u32,
    },
    /// fchownat.
    Chown {
        /// Where.
        at: Loc<'a>,
        /// New owner (guest id; u32::MAX keeps).
        uid: u32,
        /// New group (guest id; u32::MAX keeps).
        gid: u32,
        /// AT_* flags.
        flags: u32,
    },
    /// utimensat: `times` is atime sec/nsec, mtime sec/nsec (UTIME_NOW/OMIT as in the kernel).
    Utimens {
        /// Where.
        at: Loc<'a>,
        /// The two timespecs.
        times: [i64; 4],
        /// AT_* flags.
        flags: u32,
    },
    /// truncate, as a process whose RLIMIT_FSIZE is `limit` (growing past it is EFBIG).
    Truncate {
        /// Where.
        at: Loc<'a>,
        /// New length.
        length: i64,
        /// The caller's RLIMIT_FSIZE soft limit (`u64::MAX`: none).
        limit: u64,
    },
    /// statfs.
    Statfs {
        /// Where.
        at: Loc<'a>,
    },
    /// faccessat2.
    Access {
        /// Where.
        at: Loc<'a>,
        /// R_OK/W_OK/X_OK/F_OK.
        mode: u32,
        /// AT_* flags.
        flags: u32,
    },
    /// getxattr (size 0 asks for the size).
    GetXattr {
        /// Where.
        at: Loc<'a>,
        /// Attribute name.
        name: &'a [u8],
        /// Guest buffer size.
        size: u32,
        /// AT_* flags.
        flags: u32,
    },
    /// listxattr (size 0 asks for the size).
    ListXattr {
        /// Where.
        at: Loc<'a>,
        /// Guest buffer size.
        size: u32,
        /// AT_* flags.
        flags: u32,
    },
    /// setxattr.
    SetXattr {
        /// Where.
        at: Loc<'a>,
        /// Attribute name.
        name: &'a [u8],
        /// Value.
        value: &'a [u8],
        /// XATTR_CREATE/XATTR_REPLACE.
        xflags: u32,
        /// AT_* flags.
        flags: u32,
    },
    /// removexattr.
    RemoveXattr {
        /// Where.
        at: Loc<'a>,
        /// Attribute name.
        name: &'a [u8],
        /// AT_* flags.
        flags: u32,
    },
    /// bind(2) of the Unix socket sent along, to `at`, with the guest's umask.
    Bind {
        /// Where the socket appears.
        at: Loc<'a>,
        /// The guest's umask (the socket inode's mode is 0777 & !umask).
        umask: u32,
    },
    /// An O_PATH handle on the Unix socket `at` resolves to (symlinks followed in the root),
    /// for connect and sendto: refused unless the sandbox made the socket or host sockets are
    /// allowed.
    Socket {
        /// The socket's path.
        at: Loc<'a>,
    },
    /// Objects (device, inode) handed in from outside to a process that joined the sandbox
    /// (`rvisor exec`): the gofer refuses attribute changes to them, as to the init's.
    HandIn {
        /// At most [`MAX_HANDED_IN`].
        objects: Vec<(u64, u64)>,
    },
    /// O_PATH lookups of several absolute paths.
    Walk {
        /// The paths (at most MAX_BATCH).
        paths: Vec<&'a [u8]>,
        /// Keep a final symlink itself instead of following it.
        nofollow: bool,
    },
}

fn put_loc(w: &mut Writer<'_>, at: &Loc<'_>) {
    w.bytes(at.base).bytes(at.path);
}

fn get_loc<'a>(r: &mut Reader<'a>) -> Result<Loc<'a>, DecodeError> {
    let base = r.string(MAX_PATH)?;
    let path = r.string(MAX_PATH)?;
    Ok(Loc { base, path })
}

impl<'a> Request<'a> {
    /// The operation.
    pub fn op(&self) -> Op {
        match self {
            Request::Open { .. } => Op::Open,
            Request::Stat { .. } => Op::Stat,
            Request::Readlink { .. } => Op::Readlink,
            Request::Mkdir { .. } => Op::Mkdir,
            Request::Mknod { .. } => Op::Mknod,
            Request::Unlink { .. } => Op::Unlink,
            Request::Rename { .. } => Op::Rename,
            Request::Link { .. } => Op::Link,
            Request::Symlink { .. } => Op::Symlink,
            Request::Chmod { .. } => Op::Chmod,
            Request::Chown { .. } => Op::Chown,
            Request::Utimens { .. } => Op::Utimens,
            Request::Truncate { .. } => Op::Truncate,
            Request::Statfs { .. } => Op::Statfs,
            Request::Access { .. } => Op::Access,
            Request::GetXattr { .. } => Op::GetXattr,
            Request::ListXattr { .. } => Op::ListXattr,
            Request::SetXattr { .. } => Op::SetXattr,
            Request::RemoveXattr { .. } => Op::RemoveXattr,
            Request::Walk { .. } => Op::Walk,
            Request::HandIn { .. } => Op::HandIn,
            Request::Bind { .. } => Op::Bind,
            Request::Socket { .. } => Op::Socket,
        }
    }

    /// Encodes the request for `who` into `buf`.
    pub fn encode(&self, who: Identity<'_>, buf: &mut Vec<u8>) {
        let mut w = Writer::new(buf);
        w.u16(self.op() as u16)
            .u32(who.uid)
            .u32(who.gid)
            .u64(who.caps)
            .bytes(who.groups);
        match self {
            Request::Open {
                at,
                flags,
                mode,
                resolve,
            } => {
                put_loc(&mut w, at);
                w.u32(*flags).u32(*mode).u64(*resolve);
            }
            Request::Stat { at, flags } | Request::Unlink { at, flags } => {
                put_loc(&mut w, at);
                w.u32(*flags);
            }
            Request::Readlink { at } | Request::Statfs { at } => put_loc(&mut w, at),
            Request::Mkdir { at, mode } => {
                put_loc(&mut w, at);
                w.u32(*mode);
            }
            Request::Mknod { at, mode, dev } => {
                put_loc(&mut w, at);
                w.u32(*mode).u64(*dev);
            }
            Request::Rename { from, to, flags } | Request::Link { from, to, flags } => {
                put_loc(&mut w, from);
                put_loc(&mut w, to);
                w.u32(*flags);
            }
            Request::Symlink { target, at } => {
                w.bytes(target);
                put_loc(&mut w, at);
            }
            Request::Chmod { at, mode, flags } | Request::Access { at, mode, flags } => {
                put_loc(&mut w, at);
                w.u32(*mode).u32(*flags);
            }
            Request::Chown {
                at,
                uid,
                gid,
                flags,
            } => {
                put_loc(&mut w, at);
                w.u32(*uid).u32(*gid).u32(*flags);
            }
            Request::Utimens { at, times, flags } => {
                put_loc(&mut w, at);
                for t in times {
                    w.i64(*t);
                }
                w.u32(*flags);
            }
            Request::Truncate { at, length, limit } => {
                put_loc(&mut w, at);
                w.i64(*length).u64(*limit);
            }
            Request::Bind { at, umask } => {
                put_loc(&mut w, at);
                w.u32(*umask);
            }
            Request::Socket { at } => put_loc(&mut w, at),
            Request::GetXattr {
                at,
                name,
                size,
                flags,
            } => {
                put_loc(&mut w, at);
                w.bytes(name).u32(*size).u32(*flags);
            }
            Request::ListXattr { at, size, flags } => {
                put_loc(&mut w, at);
                w.u32(*size).u32(*flags);
            }
            Request::SetXattr {
                at,
                name,
                value,
                xflags,
                flags,
            } => {
                put_loc(&mut w, at);
                w.bytes(name).bytes(value).u32(*xflags).u32(*flags);
            }
            Request::RemoveXattr { at, name, flags } => {
                put_loc(&mut w, at);
                w.bytes(name).u32(*flags);
            }
            Request::HandIn { objects } => {
                w.u32(objects.len() as u32);
                for (dev, ino) in objects {
                    w.u64(*dev).u64(*ino);
                }
            }
            Request::Walk { paths, nofollow } => {
                w.u32(u32::from(*nofollow)).u32(paths.len() as u32);
                for p in paths {
                    w.bytes(p);
                }
            }
        }
    }

    /// Decodes a request frame.
    pub fn decode(frame: &'a [u8]) -> Result<(Identity<'a>, Request<'a>), DecodeError> {
        if frame.len() > MAX_FRAME {
            return Err(DecodeError::TooLong {
                len: frame.len(),
                max: MAX_FRAME,
            });
        }
        let mut r = Reader::new(frame);
        let op = Op::from_code(r.u16()?)?;
        let who = Identity {
            uid: r.u32()?,
            gid: r.u32()?,
            caps: r.u64()?,
            groups: r.bytes(MAX_GROUPS * 4)?,
        };
        if !who.groups.len().is_multiple_of(4) {
            return Err(DecodeError::BadGroups);
        }
        let req = match op {
            Op::Open => Request::Open {
                at: get_loc(&mut r)?,
                flags: r.u32()?,
                mode: r.u32()?,
                resolve: r.u64()?,
            },
            Op::Stat => Request::Stat {
                at: get_loc(&mut r)?,
                flags: r.u32()?,
            },
            Op::Readlink => Request::Readlink {
                at: get_loc(&mut r)?,
            },
            Op::Mkdir => Request::Mkdir {
                at: get_loc(&mut r)?,
                mode: r.u32()?,
            },
            Op::Mknod => Request::Mknod {
                at: get_loc(&mut r)?,
                mode: r.u32()?,
                dev: r.u64()?,
            },
            Op::Unlink => Request::Unlink {
                at: get_loc(&mut r)?,
                flags: r.u32()?,
            },
            Op::Rename => Request::Rename {
                from: get_loc(&mut r)?,
                to: get_loc(&mut r)?,
                flags: r.u32()?,
            },
            Op::Link => Request::Link {
                from: get_loc(&mut r)?,
                to: get_loc(&mut r)?,
                flags: r.u32()?,
            },
            Op::Symlink => Request::Symlink {
                target: r.string(MAX_PATH)?,
                at: get_loc(&mut r)?,
            },
            Op::Chmod => Request::Chmod {
                at: get_loc(&mut r)?,
                mode: r.u32()?,
                flags: r.u32()?,
            },
            Op::Chown => Request::Chown {
                at: get_loc(&mut r)?,
                uid: r.u32()?,
                gid: r.u32()?,
                flags: r.u32()?,
            },
            Op::Utimens => {
                let at = get_loc(&mut r)?;
                let times = [r.i64()?, r.i64()?, r.i64()?, r.i64()?];
                Request::Utimens {
                    at,
                    times,
                    flags: r.u32()?,
                }
            }
            Op::Bind => Request::Bind {
                at: get_loc(&mut r)?,
                umask: r.u32()?,
            },
            Op::Socket => Request::Socket {
                at: get_loc(&mut r)?,
            },
            Op::Truncate => Request::Truncate {
                at: get_loc(&mut r)?,
                length: r.i64()?,
                limit: r.u64()?,
            },
            Op::Statfs => Request::Statfs {
                at: get_loc(&mut r)?,
            },
            Op::Access => Request::Access {
                at: get_loc(&mut r)?,
                mode: r.u32()?,
                flags: r.u32()?,
            },
            Op::GetXattr => Request::GetXattr {
                at: get_loc(&mut r)?,
                name: r.string(MAX_PATH)?,
                size: r.u32()?,
                flags: r.u32()?,
            },
            Op::ListXattr => Request::ListXattr {
                at: get_loc(&mut r)?,
                size: r.u32()?,
                flags: r.u32()?,
            },
            Op::SetXattr => Request::SetXattr {
                at: get_loc(&mut r)?,
                name: r.string(MAX_PATH)?,
                value: r.bytes(MAX_VALUE)?,
                xflags: r.u32()?,
                flags: r.u32()?,
            },
            Op::RemoveXattr => Request::RemoveXattr {
                at: get_loc(&mut r)?,
                name: r.string(MAX_PATH)?,
                flags: r.u32()?,
            },
            Op::HandIn => {
                let n = r.u32()? as usize;
                if n > MAX_HANDED_IN {
                    return Err(DecodeError::TooLong {
                        len: n,
                        max: MAX_HANDED_IN,
                    });
                }
                let mut objects = Vec::with_capacity(n);
                for _ in 0..n {
                    objects.push((r.u64()?, r.u64()?));
                }
                Request::HandIn { objects }
            }
            Op::Walk => {
                let nofollow = match r.u32()? {
                    0 => false,
                    1 => true,
                    v => return Err(DecodeError::UnknownCode(v as u16)),
                };
                let n = r.u32()? as usize;
                if n > MAX_BATCH {
                    return Err(DecodeError::TooLong {
                        len: n,
                        max: MAX_BATCH,
                    });
                }
                let mut paths = Vec::with_capacity(n);
                for _ in 0..n {
                    paths.push(r.string(MAX_PATH)?);
                }
                Request::Walk { paths, nofollow }
            }
        };
        r.finish()?;
        Ok((who, req))
    }
}

/// The gofer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// Success with a value (0 for most operations, a size for xattr size queries).
    Value(i64),
    /// Failure with this errno.
    Errno(i32),
    /// Success; one fd travels with the message.
    Fd,
    /// Per path of a walk: 0 where an fd travels with the message (in order), else the errno.
    Walked(Vec<i32>),
    /// Success with bytes (a statx, a statfs, a link target, an xattr value or list).
    Bytes(&'a [u8]),
    /// The target is a FIFO: the guest's own kernel must open it (it may block), in the guest's
    /// read-only view of the same tree.
    Native,
}

/// The frame the gofer sends after a response with fds, once it has closed its own copies.
/// The sentry waits for it before the guest may use them: the guest's close must be a file's
/// last (its close event, the release of its flock lock, exec's ETXTBSY check).
pub const RELEASED: &[u8] = b"released";

impl<'a> Response<'a> {
    /// Whether the gofer sends `RELEASED` after this response.
    pub fn carries_fds(&self) -> bool {
        matches!(self, Response::Fd | Response::Walked(_))
    }

    /// Encodes into `buf`.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let mut w = Writer::new(buf);
        match self {
            Response::Value(v) => {
                w.u16(1).i64(*v);
            }
            Response::Errno(e) => {
                w.u16(2).u32(*e as u32);
            }
            Response::Fd => {
                w.u16(3);
            }
            Response::Walked(results) => {
                w.u16(4).u32(results.len() as u32);
                for r in results {
                    w.u32(*r as u32);
                }
            }
            Response::Bytes(b) => {
                w.u16(5).bytes(b);
            }
            Response::Native => {
                w.u16(6);
            }
        }
    }

    /// Decodes a response frame.
    pub fn decode(frame: &'a [u8]) -> Result<Response<'a>, DecodeError> {
        let mut r = Reader::new(frame);
        let resp = match r.u16()? {
            1 => Response::Value(r.i64()?),
            2 => Response::Errno(r.u32()? as i32),
            3 => Response::Fd,
            4 => {
                let n = r.u32()? as usize;
                if n > MAX_BATCH {
                    return Err(DecodeError::TooLong {
                        len: n,
                        max: MAX_BATCH,
                    });
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(r.u32()? as i32);
                }
                Response::Walked(v)
            }
            5 => Response::Bytes(r.bytes(MAX_FRAME)?),
            6 => Response::Native,
            c => return Err(DecodeError::UnknownCode(c)),
        };
        r.finish()?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(req: Request<'_>) {
        let who = Identity {
            uid: 7,
            gid: 8,
            caps: 5,
            groups: &[1, 0, 0, 0, 2, 0, 0, 0],
        };
        let mut buf = Vec::new();
        req.encode(who, &mut buf);
        let (w, back) = Request::decode(&buf).unwrap();
        assert_eq!((w, back), (who, req));
    }

    #[test]
    fn every_request_roundtrips() {
        let at = Loc {
            base: b"/usr",
            path: b"lib/x",
        };
        let to = Loc {
            base: b"/",
            path: b"/tmp/y",
        };
        for req in [
            Request::Open {
                at,
                flags: 0o101,
                mode: 0o644,
                resolve: 8,
            },
            Request::Stat { at, flags: 0x100 },
            Request::Readlink { at },
            Request::Mkdir { at, mode: 0o755 },
            Request::Mknod {
                at,
                mode: 0o10644,
                dev: 0,
            },
            Request::Unlink { at, flags: 0x200 },
            Request::Rename {
                from: at,
                to,
                flags: 1,
            },
            Request::Link {
                from: at,
                to,
                flags: 0x400,
            },
            Request::Symlink {
                target: b"../t",
                at,
            },
            Request::Chmod {
                at,
                mode: 0o600,
                flags: 0,
            },
            Request::Chown {
                at,
                uid: 1,
                gid: u32::MAX,
                flags: 0,
            },
            Request::Utimens {
                at,
                times: [1, 2, 3, (1 << 30) - 2],
                flags: 0,
            },
            Request::Truncate {
                at,
                length: 99,
                limit: 1 << 20,
            },
            Request::Statfs { at },
            Request::Access {
                at,
                mode: 4,
                flags: 0x200,
            },
            Request::GetXattr {
                at,
                name: b"user.a",
                size: 10,
                flags: 0,
            },
            Request::ListXattr {
                at,
                size: 0,
                flags: 0,
            },
            Request::SetXattr {
                at,
                name: b"user.a",
                value: b"\0v",
                xflags: 1,
                flags: 0,
            },
            Request::RemoveXattr {
                at,
                name: b"user.a",
                flags: 0,
            },
            Request::Bind { at, umask: 0o022 },
            Request::Socket { at },
            Request::Walk {
                paths: vec![b"/a", b"/b/c"],
                nofollow: true,
            },
            Request::HandIn {
                objects: vec![(1, 2), (u64::MAX, 0)],
            },
        ] {
            roundtrip(req);
        }
    }

    #[test]
    fn every_response_roundtrips() {
        for resp in [
            Response::Value(-3),
            Response::Errno(13),
            Response::Fd,
            Response::Walked(vec![0, 2, 0]),
            Response::Bytes(b"\x00\x01target"),
            Response::Native,
        ] {
            let mut buf = Vec::new();
            resp.encode(&mut buf);
            assert_eq!(Response::decode(&buf).unwrap(), resp);
        }
    }

    #[test]
    fn bad_frames_are_rejected() {
        let mut buf = Vec::new();
        Request::Open {
            at: Loc {
                base: b"/",
                path: b"etc",
            },
            flags: 0,
            mode: 0,
            resolve: 0,
        }
        .encode(Identity::default(), &mut buf);
        // Every truncation fails cleanly.
        for cut in 0..buf.len() {
            assert!(Request::decode(&buf[..cut]).is_err(), "truncated at {cut}");
        }
        // Trailing garbage.
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(Request::decode(&long), Err(DecodeError::Trailing(1)));
        // Unknown op.
        assert_eq!(
            Request::decode(&[0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::UnknownCode(0xffff))
        );
        // A length that runs past the frame, and one over the limit.
        // (The first length field is the group list's, after op, uid, gid and caps.)
        let mut bad = buf.clone();
        bad[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Request::decode(&bad),
            Err(DecodeError::TooLong { .. })
        ));
        bad[18..22].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            Request::decode(&bad),
            Err(DecodeError::Truncated(_))
        ));
        // A group list that is not whole ids.
        let mut odd = Vec::new();
        Request::Readlink {
            at: Loc {
                base: b"/",
                path: b"a",
            },
        }
        .encode(
            Identity {
                groups: &[1, 2, 3],
                ..Identity::default()
            },
            &mut odd,
        );
        assert_eq!(Request::decode(&odd), Err(DecodeError::BadGroups));
        // A NUL inside a path.
        let mut nul = Vec::new();
        Request::Readlink {
            at: Loc {
                base: b"/",
                path: b"a\0b",
            },
        }
        .encode(Identity::default(), &mut nul);
        assert_eq!(Request::decode(&nul), Err(DecodeError::Nul));
        // Too many paths in a walk.
        let many: Vec<&[u8]> = vec![b"/x"; MAX_BATCH + 1];
        let mut walk = Vec::new();
        Request::Walk {
            paths: many,
            nofollow: false,
        }
        .encode(Identity::default(), &mut walk);
        assert!(matches!(
            Request::decode(&walk),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(Response::decode(&[9, 0]).is_err());
        assert!(Response::decode(&[]).is_err());
    }
}
