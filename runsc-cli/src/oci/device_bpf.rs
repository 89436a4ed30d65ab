//! The devices cgroup on cgroup v2, which has no devices controller: a `BPF_CGROUP_DEVICE`
//! program built from the folded rules ([`super::device_rules::fold`]), attached to the guest's
//! cgroup. The kernel runs it on every open and mknod of a device node by a task in that cgroup
//! (or below it) and refuses the access (EPERM) when it returns 0.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::device_rules::{Folded, Kind, ANY};
use crate::sandbox::unix_guard::{bpf, insn, BPF_PROG_ATTACH, BPF_PROG_LOAD};

const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `enum bpf_attach_type`: `BPF_CGROUP_DEVICE`.
const BPF_CGROUP_DEVICE: u32 = 6;
/// Other programs (systemd's, a parent's) keep running too; all must allow.
const BPF_F_ALLOW_MULTI: u32 = 2;
/// `BPF_DEVCG_DEV_BLOCK`, `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One instruction whose offset, if it is a jump, is to the end of its block.
struct Insn {
    code: u8,
    dst: u8,
    src: u8,
    off: i16,
    imm: i32,
    to_next: bool,
}

const fn op(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
        to_next: false,
    }
}

const fn skip(code: u8, dst: u8, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src: 0,
        off: 0,
        imm,
        to_next: true,
    }
}

/// eBPF opcodes used.
const LDX_W: u8 = 0x61;
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const RSH64_K: u8 = 0x77;
const AND64_K: u8 = 0x57;
const JNE32_K: u8 = 0x56;
const JEQ32_K: u8 = 0x16;
const EXIT: u8 = 0x95;

/// The program: r2 = type, r3 = access, r4 = major, r5 = minor; then one block per exception,
/// which returns the opposite of the default when the access matches it; then the default.
pub fn program(f: &Folded) -> Vec<u64> {
    let mut out = vec![
        insn(LDX_W, 2, 1, 0, 0), // r2 = ctx->access_type
        insn(MOV64_X, 3, 2, 0, 0),
        insn(RSH64_K, 3, 0, 0, 16),     // r3 = access
        insn(AND64_K, 2, 0, 0, 0xffff), // r2 = type
        insn(LDX_W, 4, 1, 4, 0),        // r4 = major
        insn(LDX_W, 5, 1, 8, 0),        // r5 = minor
    ];
    let verdict = |allow: bool| i32::from(allow);
    for e in &f.exceptions {
        let kind = match e.kind {
            Kind::Char => DEV_CHAR,
            Kind::Block => DEV_BLOCK,
            Kind::All => continue,
        };
        let mut block = vec![skip(JNE32_K, 2, kind), op(MOV64_X, 6, 3, 0, 0)];
        if f.default_allow {
            // Refused if any bit asked is among the exception's.
            block.push(op(AND64_K, 6, 0, 0, i32::from(e.access)));
            block.push(skip(JEQ32_K, 6, 0));
        } else {
            // Allowed only if every bit asked is among the exception's.
            block.push(op(AND64_K, 6, 0, 0, i32::from(!e.access & 7)));
            block.push(skip(JNE32_K, 6, 0));
        }
        if e.major != ANY {
            block.push(skip(JNE32_K, 4, e.major as i32));
        }
        if e.minor != ANY {
            block.push(skip(JNE32_K, 5, e.minor as i32));
        }
        block.push(op(MOV64_K, 0, 0, 0, verdict(!f.default_allow)));
        block.push(op(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.into_iter().enumerate() {
            let off = if ins.to_next {
                (len - i - 1) as i16
            } else {
                ins.off
            };
            out.push(insn(ins.code, ins.dst, ins.src, off, ins.imm));
        }
    }
    out.push(insn(MOV64_K, 0, 0, 0, verdict(f.default_allow)));
    out.push(insn(EXIT, 0, 0, 0, 0));
    out
}

fn load(insns: &[u64]) -> Result<OwnedFd, Errno> {
    let license = c"GPL";
    // union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, ...,
    // expected_attach_type at 68.
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_CGROUP_DEVICE.to_ne_bytes());
    attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[68..72].copy_from_slice(&BPF_CGROUP_DEVICE.to_ne_bytes());
    let fd = bpf(BPF_PROG_LOAD, &attr)?;
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Loads the program for `f` and attaches it to the cgroup2 directory `cgroup`. The attachment
/// lives as long as the cgroup.
pub fn attach(cgroup: &std::path::Path, f: &Folded) -> Result<(), String> {
    let prog = load(&program(f)).map_err(|e| format!("loading the device program: {e}"))?;
    let dir = std::fs::File::open(cgroup).map_err(|e| format!("{}: {e}", cgroup.display()))?;
    // union bpf_attr, BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type, attach_flags.
    let mut attr = [0u8; 32];
    attr[0..4].copy_from_slice(&dir.as_raw_fd().to_ne_bytes());
    attr[4..8].copy_from_slice(&prog.as_raw_fd().to_ne_bytes());
    attr[8..12].copy_from_slice(&BPF_CGROUP_DEVICE.to_ne_bytes());
    attr[12..16].copy_from_slice(&BPF_F_ALLOW_MULTI.to_ne_bytes());
    bpf(BPF_PROG_ATTACH, &attr)
        .map(drop)
        .map_err(|e| format!("attaching the device program: {e}"))
}

#[cfg(test)]
mod tests {
    use super::super::device_rules::fold;
    use super::*;
    use std::process::Command;

    /// Opens `nodes` (read) from a shell in a new cgroup2 cgroup under `mount` carrying the
    /// program for `rules`; each node's open status.
    fn opens(mount: &std::path::Path, rules: serde_json::Value, nodes: &[&str]) -> Vec<bool> {
        let dir = mount.join(format!("rvisor-devtest-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let list: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
            serde_json::from_value(rules).unwrap();
        let attached = attach(
            &dir,
            &fold(&super::super::device_rules::rules(Some(&list)).unwrap()),
        );
        let mut script = format!("echo $$ > {}/cgroup.procs || exit 9", dir.display());
        for node in nodes {
            script.push_str(&format!("; (exec 3<{node}) 2>/dev/null; echo $?"));
        }
        let out = attached
            .as_ref()
            .ok()
            .map(|()| Command::new("sh").arg("-c").arg(script).output().unwrap());
        let _ = std::fs::remove_dir(&dir);
        attached.unwrap();
        let out = out.unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l == "0")
            .collect()
    }

    /// The program in a real cgroup2 cgroup (the unified hierarchy of a hybrid host, or the
    /// pure v2 one), against real opens.
    #[test]
    fn the_program_refuses_what_the_rules_refuse() {
        let mount = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(std::path::Path::new)
            .find(|p| p.join("cgroup.procs").exists() && !p.join("tasks").exists());
        let (Some(mount), true) = (mount, nix::unistd::geteuid().is_root()) else {
            return;
        };
        let nodes = ["/dev/zero", "/dev/null", "/dev/kmsg", "/dev/full"];
        // Default deny: runc's nodes only.
        assert_eq!(
            opens(mount, serde_json::json!([]), &nodes),
            [true, true, false, true]
        );
        // Default allow but one device, and one access of another.
        assert_eq!(
            opens(
                mount,
                serde_json::json!([
                    {"allow": true, "access": "rwm"},
                    {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rw"},
                ]),
                &nodes
            ),
            [true, true, false, true]
        );
        assert_eq!(
            opens(
                mount,
                serde_json::json!([
                    {"allow": true, "access": "rwm"},
                    {"allow": false, "type": "c", "major": 1, "access": "r"},
                ]),
                &["/dev/kmsg", "/dev/ptmx"]
            ),
            [false, true]
        );
    }
}
