//! The goals rvisor is held to, each a ratio taken from this run (rvisor on seccomp-notify unless
//! the goal says otherwise), with whether it passes and the same ratio for runsc where one
//! applies. The table is a yardstick: it states plainly which pass and which fail.

use serde::{Deserialize, Serialize};

use crate::lifecycle::LifecycleResult;
use crate::scale::ThreadsResult;
use crate::suite::{Mode, Row};
use crate::workloads::{geomean, WorkloadResult};

/// One goal and its figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Goal {
    /// Stable key.
    pub key: String,
    /// What is compared.
    pub goal: String,
    /// `<=` or `>=`.
    pub op: String,
    /// The limit.
    pub target: f64,
    /// The measured ratio (`None` when a figure it needs is missing).
    pub measured: Option<f64>,
    /// Whether it passes (`None` when not measured).
    pub pass: Option<bool>,
    /// The same ratio for runsc (ptrace platform), where one applies and was measured.
    pub runsc: Option<f64>,
    /// The same ratio for the kernel floor (the minimal seccomp supervisor), where one applies
    /// and was measured: how far the kernel itself lets the figure go.
    pub floor: Option<f64>,
    /// Why there is no figure.
    pub note: Option<String>,
}

fn p50(rows: &[Row], case: &str, mode: Mode) -> Option<f64> {
    rows.iter()
        .find(|r| r.case == case && r.mode == mode)
        .map(|r| r.p.p50 as f64)
}

fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?.max(f64::MIN_POSITIVE))
}

/// Every goal, evaluated on this run's figures.
pub fn evaluate(
    rows: &[Row],
    workloads: &[WorkloadResult],
    lifecycle: &[LifecycleResult],
    threads: &[ThreadsResult],
) -> Vec<Goal> {
    let mut goals = Vec::new();
    let mut add = |key: &str,
                   goal: String,
                   op: &str,
                   target: f64,
                   measured: Option<f64>,
                   runsc: Option<f64>,
                   missing: &str| {
        let pass = measured.map(|m| if op == "<=" { m <= target } else { m >= target });
        goals.push(Goal {
            key: key.into(),
            goal,
            op: op.into(),
            target,
            measured,
            pass,
            runsc,
            floor: None,
            note: measured.is_none().then(|| missing.to_string()),
        });
    };
    let workload = |key: &str| workloads.iter().find(|w| w.key == key);
    for (key, target) in [("find", 2.0), ("tar", 2.0), ("python3-pass", 1.5)] {
        let w = workload(key);
        add(
            key,
            format!(
                "{}: rvisor / native",
                w.map_or(key.to_string(), |w| w.name.clone())
            ),
            "<=",
            target,
            w.and_then(|w| w.over_native.get(&Mode::RvisorSeccompNotify).copied()),
            w.and_then(|w| w.over_native.get(&Mode::Runsc).copied()),
            "workload not run",
        );
    }
    add(
        "geomean-seccomp-notify",
        "workloads' geometric mean: rvisor / native".into(),
        "<=",
        1.5,
        geomean(workloads, Mode::RvisorSeccompNotify),
        geomean(workloads, Mode::Runsc),
        "workloads not run",
    );
    add(
        "geomean-ptrace",
        "workloads' geometric mean, ptrace platform: rvisor / native".into(),
        "<=",
        2.5,
        geomean(workloads, Mode::RvisorPtrace),
        geomean(workloads, Mode::Runsc),
        "workloads not run",
    );
    for (key, case, what, target) in [
        ("stat", "stat", "cached stat", 1.3),
        (
            "open-seen",
            "open_close",
            "open+close of a file seen before",
            1.6,
        ),
        (
            "open-new",
            "open_close_new",
            "open+close of a new file",
            2.5,
        ),
    ] {
        let ratio = |m: Mode| div(p50(rows, case, m), p50(rows, "getppid", m));
        add(
            key,
            format!("{what} / trapped getppid (p50)"),
            "<=",
            target,
            ratio(Mode::RvisorSeccompNotify),
            ratio(Mode::Runsc),
            "case not run (--case)",
        );
    }
    let start = |name: &str| {
        lifecycle
            .iter()
            .find(|l| l.name == name)
            .and_then(|l| l.median_ms)
    };
    let bwrap = start(crate::lifecycle::do_name(Mode::Bwrap));
    add(
        "start-up",
        "rvisor do /bin/true / bwrap /bin/true (start-up)".into(),
        "<=",
        2.0,
        div(
            start(crate::lifecycle::do_name(Mode::RvisorSeccompNotify)),
            bwrap,
        ),
        div(start(crate::lifecycle::do_name(Mode::Runsc)), bwrap),
        "bwrap not measured here",
    );
    let at = |t: usize| threads.iter().find(|r| r.threads == t);
    let per_sec = |t: usize| at(t).map(|r| r.rvisor_per_sec);
    let floor_per_sec = |t: usize| at(t).and_then(|r| r.floor_per_sec);
    add(
        "threads",
        "trapped getppid throughput: 2 guest threads / 1".into(),
        ">=",
        1.6,
        div(per_sec(2), per_sec(1)),
        None,
        "threads not measured",
    );
    if let Some(g) = goals.last_mut() {
        g.floor = div(floor_per_sec(2), floor_per_sec(1));
    }
    goals
}
