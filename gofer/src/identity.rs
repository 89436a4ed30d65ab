//! Taking on the file identity of the guest thread a request serves: filesystem uid and gid,
//! supplementary groups and the file-related capabilities, on this thread only. The kernel then
//! checks each access as it would the guest's own. What the thread holds is remembered, so a run of requests from
//! one identity switches nothing.

use nix::errno::Errno;
use rvisor_protocol::thread_creds::{narrow_file_caps, set_fs_ids, set_groups, FILE_CAPS};
use rvisor_protocol::Identity;

use crate::idmap::IdMap;

/// Switches this thread to a request's identity, doing only what changed.
#[derive(Debug, Default)]
pub struct Taker {
    /// (fs uid, fs gid, file capabilities) held, in our ids; None before the first request
    /// and after a failed switch.
    held: Option<(u32, u32, u64)>,
    /// The groups held, as last received (raw bytes).
    raw_groups: Vec<u8>,
    groups: Vec<u32>,
    /// setgroups is denied here (an unprivileged user namespace): the guest cannot change its
    /// groups either, so they are what this thread already has.
    groups_fixed: bool,
}

impl Taker {
    /// Takes on `who` (guest ids, mapped through `ids`). Fails with EPERM if an id has no
    /// mapping or the kernel refuses a step; the request is then refused.
    pub fn take(&mut self, who: &Identity<'_>, ids: &IdMap) -> Result<(), Errno> {
        let uid = ids.uid_out(who.uid).ok_or(Errno::EPERM)?;
        let gid = ids.gid_out(who.gid).ok_or(Errno::EPERM)?;
        // Capabilities act in our namespace, over more than the guest's when its map is not
        // everything to itself: there only a thread whose uid is our 0 keeps its file
        // capabilities (a remapped root acts as its plain uid).
        let caps = if uid == 0 || ids.is_identity() {
            who.caps & FILE_CAPS
        } else {
            0
        };
        let groups_same = self.raw_groups == who.groups;
        if groups_same && self.held == Some((uid, gid, caps)) {
            return Ok(());
        }
        self.held = None;
        set_fs_ids(uid, gid)?;
        if !groups_same {
            self.raw_groups.clear();
            self.groups.clear();
            // Groups the guest's namespace maps always map here (its map is our subset).
            self.groups
                .extend(who.group_ids().filter_map(|g| ids.gid_out(g)));
            if !self.groups_fixed {
                match set_groups(&self.groups) {
                    Ok(()) => {}
                    Err(Errno::EPERM) => self.groups_fixed = true,
                    Err(e) => return Err(e),
                }
            }
            self.raw_groups.extend_from_slice(who.groups);
        }
        // setfsuid already cleared (to non-zero) or restored (to 0) the file capabilities from
        // the permitted set: now narrow them to the guest's.
        narrow_file_caps(caps)?;
        self.held = Some((uid, gid, caps));
        Ok(())
    }
}
