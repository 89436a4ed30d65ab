//! The single-id user namespace mapping that gives the guest its identity.

/// `uid_map`/`gid_map` lines for a sandbox whose id `inside` is backed by host id `outside`.
pub fn map_line(inside: u32, outside: u32) -> String {
    format!("{inside} {outside} 1\n")
}

/// The host id that backs the sandbox id `inside`, for a launcher running as `invoker`.
///
/// An unprivileged launcher can only map itself. As root, the sandbox id is backed by the same
/// host id, so `--uid 1000` has exactly the host rights of uid 1000.
pub fn outside_id(inside: u32, invoker: u32, rootless: bool) -> u32 {
    if rootless {
        invoker
    } else {
        inside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootless_maps_to_the_invoker_root_maps_identity() {
        assert_eq!(map_line(0, outside_id(0, 1000, true)), "0 1000 1\n");
        assert_eq!(map_line(1000, outside_id(1000, 0, false)), "1000 1000 1\n");
        assert_eq!(map_line(0, outside_id(0, 0, false)), "0 0 1\n");
    }
}
