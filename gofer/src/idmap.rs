//! Translation between the guest's ids and the gofer's (the guest's user namespace is a child of
//! the gofer's).

/// One `uid_map` line: `count` ids from `inside` (guest) map to `outside` (gofer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First guest id.
    pub inside: u32,
    /// First gofer id.
    pub outside: u32,
    /// How many.
    pub count: u32,
}

/// The guest's uid and gid maps, as written for its user namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    /// uid ranges.
    pub uids: Vec<IdRange>,
    /// gid ranges.
    pub gids: Vec<IdRange>,
}

/// The kernel's overflow id, shown for ids the guest's namespace cannot name.
pub const OVERFLOW_ID: u32 = 65534;

fn to_outside(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| id >= r.inside && id - r.inside < r.count)
        .map(|r| r.outside + (id - r.inside))
}

fn to_inside(ranges: &[IdRange], id: u32) -> u32 {
    ranges
        .iter()
        .find(|r| id >= r.outside && id - r.outside < r.count)
        .map_or(OVERFLOW_ID, |r| r.inside + (id - r.outside))
}

impl IdMap {
    /// Gofer uid for a guest uid; None if the guest cannot name it (EINVAL, as natively).
    pub fn uid_out(&self, id: u32) -> Option<u32> {
        to_outside(&self.uids, id)
    }
    /// Gofer gid for a guest gid.
    pub fn gid_out(&self, id: u32) -> Option<u32> {
        to_outside(&self.gids, id)
    }
    /// Whether every id maps to itself (a container run as root without a user namespace of
    /// its own).
    pub fn is_identity(&self) -> bool {
        let all = |r: &[IdRange]| matches!(r, [IdRange { inside: 0, outside: 0, count }] if *count == u32::MAX);
        all(&self.uids) && all(&self.gids)
    }

    /// Guest uid for a gofer uid (overflow id if unmapped).
    pub fn uid_in(&self, id: u32) -> u32 {
        to_inside(&self.uids, id)
    }
    /// Guest gid for a gofer gid.
    pub fn gid_in(&self, id: u32) -> u32 {
        to_inside(&self.gids, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways_and_overflows() {
        let m = IdMap {
            uids: vec![
                IdRange {
                    inside: 0,
                    outside: 0,
                    count: 1,
                },
                IdRange {
                    inside: 1000,
                    outside: 1000,
                    count: 1,
                },
            ],
            gids: vec![IdRange {
                inside: 0,
                outside: 5000,
                count: 1,
            }],
        };
        assert_eq!(m.uid_out(1000), Some(1000));
        assert_eq!(m.uid_out(5), None);
        assert_eq!(m.uid_in(7), OVERFLOW_ID);
        assert_eq!(m.gid_out(0), Some(5000));
        assert_eq!(m.gid_in(5000), 0);
        assert_eq!(m.uid_out(u32::MAX), None);
    }
}
