//! The spec's seccomp profile, compiled into filters installed on top of the sentry's (the
//! kernel takes the most restrictive answer of all filters, so the profile can only take
//! away). seccompiler gives one match action per filter, so a profile becomes:
//! one filter whose mismatch is the default action and which allows every listed rule, and one
//! filter per other action, allowing everything but its own rules. A call's answer is then the
//! action of the rule it matches, or the default.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use sentry::syscalls::SYSCALL_NAMES;

use super::OciError;

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<SeccompAction, OciError> {
    let errno = errno.unwrap_or(libc::EPERM as u32);
    Ok(match a {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(errno),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(errno),
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(OciError::Unsupported(
                "seccomp SCMP_ACT_NOTIFY (the sentry is the only listener)".into(),
            ))
        }
    })
}

fn condition(arg: &oci_spec::runtime::LinuxSeccompArg) -> Result<SeccompCondition, OciError> {
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => SeccompCmpOp::Ne,
        LinuxSeccompOperator::ScmpCmpLt => SeccompCmpOp::Lt,
        LinuxSeccompOperator::ScmpCmpLe => SeccompCmpOp::Le,
        LinuxSeccompOperator::ScmpCmpEq => SeccompCmpOp::Eq,
        LinuxSeccompOperator::ScmpCmpGe => SeccompCmpOp::Ge,
        LinuxSeccompOperator::ScmpCmpGt => SeccompCmpOp::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => SeccompCmpOp::MaskedEq(arg.value()),
    };
    let value = match arg.op() {
        LinuxSeccompOperator::ScmpCmpMaskedEq => arg.value_two().unwrap_or(0),
        _ => arg.value(),
    };
    let index = u8::try_from(arg.index())
        .map_err(|_| OciError::Spec(format!("seccomp argument index {}", arg.index())))?;
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| OciError::Spec(format!("seccomp condition: {e}")))
}

fn number(name: &str) -> Option<i64> {
    SYSCALL_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|&(nr, _)| nr)
}

/// Rules of one filter; a call listed without conditions matches always (an empty rule list
/// in seccompiler), whatever conditional rules also name it.
#[derive(Default)]
struct RuleSet {
    rules: Rules,
    always: std::collections::BTreeSet<i64>,
}

impl RuleSet {
    fn add(&mut self, nr: i64, conds: &[SeccompCondition]) -> Result<(), OciError> {
        if conds.is_empty() {
            self.always.insert(nr);
            self.rules.insert(nr, Vec::new());
        } else if !self.always.contains(&nr) {
            let rule = SeccompRule::new(conds.to_vec())
                .map_err(|e| OciError::Spec(format!("seccomp rule: {e}")))?;
            self.rules.entry(nr).or_default().push(rule);
        }
        Ok(())
    }
}

fn compile(
    rules: Rules,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram, OciError> {
    let filter = SeccompFilter::new(rules, mismatch, matched, TargetArch::x86_64)
        .map_err(|e| OciError::Spec(format!("seccomp profile: {e}")))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| OciError::Spec(format!("seccomp profile: {e}")))
}

/// Compiles the profile; unknown system call names are skipped (profiles list calls of every
/// architecture), as runc does.
pub fn compile_profile(profile: &LinuxSeccomp) -> Result<Vec<BpfProgram>, OciError> {
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut all = RuleSet::default();
    let mut by_action: Vec<(SeccompAction, RuleSet)> = Vec::new();
    for sc in profile.syscalls().as_deref().unwrap_or_default() {
        let act = action(sc.action(), sc.errno_ret().or(profile.default_errno_ret()))?;
        let conds = sc
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()?;
        for nr in sc.names().iter().filter_map(|n| number(n)) {
            all.add(nr, &conds)?;
            if act != SeccompAction::Allow && act != default {
                let slot = match by_action.iter().position(|(a, _)| *a == act) {
                    Some(i) => i,
                    None => {
                        by_action.push((act.clone(), RuleSet::default()));
                        by_action.len() - 1
                    }
                };
                by_action[slot].1.add(nr, &conds)?;
            }
        }
    }
    let mut programs = Vec::new();
    if default != SeccompAction::Allow {
        programs.push(compile(all.rules, default, SeccompAction::Allow)?);
    }
    for (act, rules) in by_action {
        programs.push(compile(rules.rules, SeccompAction::Allow, act)?);
    }
    Ok(programs)
}
