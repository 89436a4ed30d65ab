//! The user namespace mapping that gives the guest its identity.

/// The `uid_map`/`gid_map` content for a sandbox whose id is `inside`, launched by host id
/// `invoker`.
///
/// Unprivileged, the launcher can map only itself: `inside` is backed by `invoker`. As root,
/// `inside` is backed by the same host id, so `--uid 1000` has exactly the host rights of uid
/// 1000; root stays mapped too, because the guest init (host root until it drops to `inside`)
/// must own the files it creates while building the sandbox. The guest cannot get back to 0:
/// every set*id call is serviced by the sentry, and every mount is nosuid.
pub fn map(inside: u32, invoker: u32, rootless: bool) -> String {
    if rootless {
        format!("{inside} {invoker} 1\n")
    } else if inside == 0 {
        "0 0 1\n".to_string()
    } else {
        format!("0 0 1\n{inside} {inside} 1\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootless_maps_to_the_invoker() {
        assert_eq!(map(0, 1000, true), "0 1000 1\n");
        assert_eq!(map(1000, 1000, true), "1000 1000 1\n");
    }

    #[test]
    fn root_maps_identity_and_keeps_root() {
        assert_eq!(map(0, 0, false), "0 0 1\n");
        assert_eq!(map(1000, 0, false), "0 0 1\n1000 1000 1\n");
    }
}
