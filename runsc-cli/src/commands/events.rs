//! `rvisor events`: resource and sentry statistics, and OOM notices, as JSON lines.

use std::time::Duration;

use clap::Args;
use rvisor_cli::oci::cgroup::Cgroup;
use rvisor_cli::oci::lifecycle::Runtime;
use rvisor_cli::oci::state::Status;
use rvisor_cli::sandbox::control;

use crate::output;

/// Print container events: a stats event every interval, and an oom event when the OOM killer
/// strikes, until the container stops.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print one stats event and exit.
    #[arg(long)]
    stats: bool,
    /// Seconds between stats events.
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    interval: Duration,
    /// Container id.
    id: String,
}

/// Parses `5`, `5s`, `500ms`.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid interval {s:?} (e.g. 5s, 500ms)");
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().map(Duration::from_millis).map_err(|_| bad());
    }
    let secs: f64 = s
        .strip_suffix('s')
        .unwrap_or(s)
        .parse()
        .map_err(|_| bad())?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs the command.
pub fn run(rt: &Runtime, args: &EventsArgs) -> anyhow::Result<i32> {
    let mut ooms = None;
    loop {
        let (dir, record) = rt.root.open(&args.id)?;
        let status = record.status(&dir);
        let cg = record.cgroup.as_deref().map(Cgroup::load);
        let mut data = cg
            .as_ref()
            .map_or_else(|| serde_json::json!({}), Cgroup::stats);
        if status != Status::Stopped {
            if let Ok(counters) = control::call(&dir.control_socket(), b"stats") {
                data["rvisor"] = serde_json::from_str(&counters).unwrap_or_default();
            }
        }
        drop(dir);
        let kills = cg.as_ref().map_or(0, Cgroup::oom_kills);
        if ooms.is_some_and(|before| kills > before) || (ooms.is_none() && kills > 0 && !args.stats)
        {
            output::line(serde_json::json!({"type": "oom", "id": args.id}))?;
        }
        ooms = Some(kills);
        output::line(serde_json::json!({"type": "stats", "id": args.id, "data": data}))?;
        if args.stats || status == Status::Stopped {
            return Ok(0);
        }
        std::thread::sleep(args.interval);
    }
}
