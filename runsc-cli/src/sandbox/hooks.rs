//! OCI hooks: a program run with the container's state on its standard input, killed if it
//! outlives its timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One hook, as the spec gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Absolute path of the program.
    pub path: PathBuf,
    /// Its argv, `args[0]` included; the path when empty.
    pub args: Vec<String>,
    /// Its complete environment.
    pub env: Vec<String>,
    /// Seconds before it is killed.
    pub timeout: Option<u64>,
}

/// How often a running hook is checked on.
const POLL: Duration = Duration::from_millis(5);

/// Runs `hook` with `state` on its stdin; an error says why it failed.
pub fn run(hook: &Hook, state: &[u8]) -> Result<(), String> {
    let name = hook.path.display();
    let mut cmd = Command::new(&hook.path);
    if let Some((arg0, rest)) = hook.args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear()
        .envs(hook.env.iter().filter_map(|kv| kv.split_once('=')))
        .stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("hook {name}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state);
    }
    let deadline = hook
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("hook {name} failed: {status}")),
            Ok(None) => {}
            Err(e) => return Err(format!("hook {name}: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "hook {name} timed out after {}s",
                hook.timeout.unwrap_or_default()
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Runs `hooks` in order, stopping at the first failure.
pub fn run_all(hooks: &[Hook], state: &[u8]) -> Result<(), String> {
    hooks.iter().try_for_each(|h| run(h, state))
}
