//! `linux.resources.devices`: the spec's allow/deny rules, then runc's default allowances, read
//! with the v1 devices controller's semantics from a default of deny (as runc does). v1 takes
//! the rules as they are, one write each; v2 has no devices controller, so the rules are folded
//! here into a default and its exceptions, which a `BPF_CGROUP_DEVICE` program checks
//! ([`super::device_bpf`]).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::OciError;

/// `*` for a major or minor number.
pub const ANY: u32 = u32::MAX;

/// Access bits, as the kernel's `DEVCG_ACC_*` (and the BPF context's).
pub const MKNOD: u8 = 1;
/// Read.
pub const READ: u8 = 2;
/// Write.
pub const WRITE: u8 = 4;

/// Device kind of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every device (`a`).
    All,
    /// Character devices.
    Char,
    /// Block devices.
    Block,
}

/// One rule, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Allow, or deny.
    pub allow: bool,
    /// Which kind.
    pub kind: Kind,
    /// Major number, or [`ANY`].
    pub major: u32,
    /// Minor number, or [`ANY`].
    pub minor: u32,
    /// `MKNOD | READ | WRITE` bits.
    pub access: u8,
}

impl Rule {
    const fn allow_char(major: u32, minor: u32) -> Rule {
        Rule {
            allow: true,
            kind: Kind::Char,
            major,
            minor,
            access: MKNOD | READ | WRITE,
        }
    }

    /// The line the v1 controller's `devices.allow`/`devices.deny` take.
    pub fn v1_line(&self) -> String {
        let kind = match self.kind {
            Kind::All => return "a".into(),
            Kind::Char => 'c',
            Kind::Block => 'b',
        };
        let num = |n: u32| {
            if n == ANY {
                "*".to_string()
            } else {
                n.to_string()
            }
        };
        let mut access = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!("{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

/// What runc appends to every container's rules: mknod of anything (the guest cannot mknod a
/// device anyway), and the nodes every container has.
const DEFAULT_ALLOWED: [Rule; 10] = [
    Rule {
        allow: true,
        kind: Kind::Char,
        major: ANY,
        minor: ANY,
        access: MKNOD,
    },
    Rule {
        allow: true,
        kind: Kind::Block,
        major: ANY,
        minor: ANY,
        access: MKNOD,
    },
    Rule::allow_char(1, 3),     // null
    Rule::allow_char(1, 8),     // random
    Rule::allow_char(1, 7),     // full
    Rule::allow_char(5, 0),     // tty
    Rule::allow_char(1, 5),     // zero
    Rule::allow_char(1, 9),     // urandom
    Rule::allow_char(136, ANY), // pts/*
    Rule::allow_char(5, 2),     // ptmx
];

fn parse_access(access: Option<&str>) -> Result<u8, OciError> {
    let text = access.unwrap_or("rwm");
    let mut bits = 0;
    for c in text.chars() {
        bits |= match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => {
                return Err(OciError::Spec(format!(
                    "linux.resources.devices: access {text:?}: only r, w and m"
                )))
            }
        };
    }
    Ok(bits)
}

fn number(n: Option<i64>) -> Result<u32, OciError> {
    match n {
        None | Some(-1) => Ok(ANY),
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|&n| n != ANY)
            .ok_or_else(|| OciError::Spec(format!("linux.resources.devices: device number {n}"))),
    }
}

/// The rules to apply, in order: a deny of everything, the spec's, then runc's defaults.
pub fn rules(spec: Option<&[LinuxDeviceCgroup]>) -> Result<Vec<Rule>, OciError> {
    let mut out = vec![Rule {
        allow: false,
        kind: Kind::All,
        major: ANY,
        minor: ANY,
        access: MKNOD | READ | WRITE,
    }];
    for r in spec.into_iter().flatten() {
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => Kind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
            LinuxDeviceType::B => Kind::Block,
            LinuxDeviceType::P => {
                return Err(OciError::Spec(
                    "linux.resources.devices: type \"p\" (a FIFO) is not a device rule".into(),
                ))
            }
        };
        out.push(Rule {
            allow: r.allow(),
            kind,
            major: number(r.major())?,
            minor: number(r.minor())?,
            access: parse_access(r.access().as_deref())?,
        });
    }
    out.extend(DEFAULT_ALLOWED);
    Ok(out)
}

/// The rules folded as the v1 controller folds them: a default (allow or deny), and exceptions
/// to it with their access bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    /// Whether a device no exception names is allowed.
    pub default_allow: bool,
    /// Exceptions: with a default of deny they allow, with a default of allow they deny.
    pub exceptions: Vec<Rule>,
}

/// Applies `rules` in order from the kernel's initial state, as `devcgroup_update_access` does:
/// an `a` rule resets the default and drops every exception; a rule that agrees with the default
/// takes its access bits away from an exception for the same device; one that disagrees adds
/// them to one.
pub fn fold(rules: &[Rule]) -> Folded {
    let mut f = Folded {
        default_allow: true,
        exceptions: Vec::new(),
    };
    for r in rules {
        if r.kind == Kind::All {
            f.default_allow = r.allow;
            f.exceptions.clear();
            continue;
        }
        let same = |e: &Rule| e.kind == r.kind && e.major == r.major && e.minor == r.minor;
        if r.allow == f.default_allow {
            for e in f.exceptions.iter_mut().filter(|e| same(e)) {
                e.access &= !r.access;
            }
            f.exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = f.exceptions.iter_mut().find(|e| same(e)) {
            e.access |= r.access;
        } else {
            f.exceptions.push(Rule {
                allow: r.allow,
                ..*r
            });
        }
    }
    f
}

impl Folded {
    /// Whether an access to a device is allowed, as the v1 controller decides it: against a
    /// default of deny an exception must cover every bit asked; against a default of allow any
    /// exception that shares one refuses.
    pub fn allows(&self, kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        let names = |e: &&Rule| {
            e.kind == kind
                && (e.major == ANY || e.major == major)
                && (e.minor == ANY || e.minor == minor)
        };
        if self.default_allow {
            !self
                .exceptions
                .iter()
                .filter(names)
                .any(|e| e.access & access != 0)
        } else {
            self.exceptions
                .iter()
                .filter(names)
                .any(|e| e.access & access == access)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rules: serde_json::Value) -> Vec<Rule> {
        let list: Vec<LinuxDeviceCgroup> = serde_json::from_value(rules).unwrap();
        super::rules(Some(&list)).unwrap()
    }

    #[test]
    fn the_default_is_deny_with_runcs_allowances() {
        let f = fold(&spec(serde_json::json!([])));
        assert!(!f.default_allow);
        assert!(f.allows(Kind::Char, 1, 3, READ | WRITE));
        assert!(f.allows(Kind::Char, 136, 7, READ | WRITE));
        assert!(f.allows(Kind::Block, 8, 0, MKNOD));
        assert!(!f.allows(Kind::Block, 8, 0, READ));
        assert!(!f.allows(Kind::Char, 10, 229, READ)); // fuse
        assert!(!f.allows(Kind::Char, 1, 1, READ)); // mem
    }

    #[test]
    fn rules_fold_in_order() {
        // Docker's shape: deny all, then the --device ones.
        let f = fold(&spec(serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
            {"allow": true, "type": "b", "major": 7, "access": "r"},
        ])));
        assert!(f.allows(Kind::Char, 10, 229, READ | WRITE));
        assert!(!f.allows(Kind::Char, 10, 229, MKNOD | READ));
        assert!(f.allows(Kind::Block, 7, 3, READ));
        assert!(!f.allows(Kind::Block, 7, 3, WRITE));
        // Allow everything, then take one device away.
        let f = fold(&spec(serde_json::json!([
            {"allow": true, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        ])));
        // runc's defaults come after and give 1:5 back.
        assert!(f.allows(Kind::Char, 1, 5, READ));
        let without_defaults = fold(&[
            Rule {
                allow: true,
                kind: Kind::All,
                major: ANY,
                minor: ANY,
                access: 7,
            },
            Rule {
                allow: false,
                ..Rule::allow_char(1, 5)
            },
        ]);
        assert!(without_defaults.default_allow);
        assert!(!without_defaults.allows(Kind::Char, 1, 5, READ));
        assert!(without_defaults.allows(Kind::Block, 8, 0, READ | WRITE));
        // A deny that agrees with the default takes bits away.
        let f = fold(&spec(serde_json::json!([
            {"allow": true, "type": "c", "major": 4, "minor": 1, "access": "rwm"},
            {"allow": false, "type": "c", "major": 4, "minor": 1, "access": "w"},
        ])));
        assert!(f.allows(Kind::Char, 4, 1, READ));
        assert!(!f.allows(Kind::Char, 4, 1, WRITE));
    }

    #[test]
    fn v1_lines_and_refusals() {
        let r =
            spec(serde_json::json!([{"allow": true, "type": "c", "major": 10, "access": "wr"}]));
        assert_eq!(r[0].v1_line(), "a");
        assert_eq!(r[1].v1_line(), "c 10:* rw");
        assert_eq!(r[2].v1_line(), "c *:* m");
        for bad in [
            serde_json::json!([{"allow": true, "access": "rwx"}]),
            serde_json::json!([{"allow": true, "type": "p"}]),
            serde_json::json!([{"allow": true, "type": "c", "major": -2}]),
        ] {
            let list: Vec<LinuxDeviceCgroup> = serde_json::from_value(bad).unwrap();
            let err = rules(Some(&list)).unwrap_err().to_string();
            assert!(err.contains("linux.resources.devices"), "{err}");
        }
    }
}
