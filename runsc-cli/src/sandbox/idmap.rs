//! The user namespace mappings that give the gofer and the guest their identities.

use gofer::{IdMap, IdRange};

/// The guest's map, as written by the gofer for the guest's user namespace (a child of the
/// gofer's): `inside` is the sandbox id of the command.
///
/// Unprivileged, the gofer's own namespace maps only its id 0 (the caller): the sandbox id is
/// backed by it, and the guest can take no other id (as under `unshare --map-root-user`). As
/// root, every id maps to itself, so a guest that drops privileges (`setuid`, a server's
/// workers) really holds the ids it took, and the kernel checks them: `--uid 1000` has exactly
/// the host rights of uid 1000. The guest cannot get back to 0: every mount it sees is nosuid.
pub fn guest_ranges(inside: u32, rootless: bool) -> Vec<IdRange> {
    if rootless {
        vec![IdRange {
            inside,
            outside: 0,
            count: 1,
        }]
    } else {
        vec![ALL_IDS]
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
    // As root every group maps to itself already; unprivileged, only the one id can.
    let _ = extra_gids;
    let gids = guest_ranges(gid, rootless);
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
    fn root_maps_every_id_to_itself() {
        assert_eq!(lines(&guest_ranges(0, false)), "0 0 4294967295\n");
        assert_eq!(lines(&guest_ranges(1000, false)), "0 0 4294967295\n");
    }
}
