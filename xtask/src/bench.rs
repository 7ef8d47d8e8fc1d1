//! `cargo xtask bench <what>`: each benchmark prints its figures next to the
//! limit it is held to, measured in the same run.

use crate::{prerequisites, shell};

pub fn run(args: &[String]) -> Result<(), String> {
    let what = args.first().map(String::as_str);
    let tansu = prerequisites::tansu()?;
    match what {
        Some("executor") => {
            let mut cmd = shell::cargo();
            cmd.args([
                "run",
                "--release",
                "--package",
                "mmm-executor",
                "--bin",
                "mmm-executor-bench",
                "--",
            ])
            .args(&args[1..])
            .env("MMM_TANSU_BIN", &tansu);
            shell::run(&mut cmd)
        }
        Some(other @ ("api" | "scheduler")) => Err(format!(
            "`bench {other}` is not built yet (issue: reliability and load suite)"
        )),
        _ => Err("usage: cargo xtask bench executor|api|scheduler".into()),
    }
}
