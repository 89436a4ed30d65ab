//! The user namespace mappings that give the gofer and the guest their identities.

use gofer::{IdMap, IdRange};

/// The guest's map, as written by the gofer for the guest's user namespace (a child of the
/// gofer's): `inside` is the sandbox id of the command.
///
/// Unprivileged, the gofer's own namespace maps only its id 0 (the caller): the sandbox id is
/// backed by it. As root, the sandbox id is backed by the same host id, so `--uid 1000` has
/// exactly the host rights of uid 1000; root stays mapped too, because the guest init (host root
/// until it drops to `inside`) must own the files it creates while building its view. The guest
/// cannot get back to 0: every set*id call is serviced by the sentry, and every mount is nosuid.
pub fn guest_ranges(inside: u32, rootless: bool) -> Vec<IdRange> {
    if rootless {
        vec![IdRange {
            inside,
            outside: 0,
            count: 1,
        }]
    } else if inside == 0 {
        vec![IdRange {
            inside: 0,
            outside: 0,
            count: 1,
        }]
    } else {
        vec![
            IdRange {
                inside: 0,
                outside: 0,
                count: 1,
            },
            IdRange {
                inside,
                outside: inside,
                count: 1,
            },
        ]
    }
}

/// The guest's uid and gid maps.
/// Every id, mapped to itself: an OCI container's ids, as root (as runc without a user
/// namespace: any user `exec` names exists, and file owners in the bundle are what they say).
pub const ALL_IDS: IdRange = IdRange {
    inside: 0,
    outside: 0,
    count: u32::MAX,
};

/// The map of a root-run container without mappings of its own (see [`ALL_IDS`]).
pub fn container_map() -> IdMap {
    IdMap {
        uids: vec![ALL_IDS],
        gids: vec![ALL_IDS],
    }
}

pub fn guest_map(uid: u32, gid: u32, extra_gids: &[u32], rootless: bool) -> IdMap {
    let mut gids = guest_ranges(gid, rootless);
    // As root, a container's supplementary groups map to themselves too.
    if !rootless {
        for &g in extra_gids {
            if !gids
                .iter()
                .any(|r| (r.inside..r.inside + r.count).contains(&g))
            {
                gids.push(IdRange {
                    inside: g,
                    outside: g,
                    count: 1,
                });
            }
        }
    }
    IdMap {
        uids: guest_ranges(uid, rootless),
        gids,
    }
}

pub fn lines(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootless_backs_the_sandbox_id_with_the_gofers_root() {
        assert_eq!(lines(&guest_ranges(0, true)), "0 0 1\n");
        assert_eq!(lines(&guest_ranges(1000, true)), "1000 0 1\n");
    }

    #[test]
    fn root_maps_identity_and_keeps_root() {
        assert_eq!(lines(&guest_ranges(0, false)), "0 0 1\n");
        assert_eq!(lines(&guest_ranges(1000, false)), "0 0 1\n1000 1000 1\n");
    }
}
