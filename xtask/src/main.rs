//! `cargo xtask <task>`: the project's build, packaging, test and demo
//! entry points, in Rust so they run wherever cargo does.

mod bench;
mod demo;
mod dist;
mod interrupt;
mod listen;
mod prerequisites;
mod shell;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test [--all]        fmt check, clippy -D warnings, and every test (installs what the tests need)
  dist                release build; dist/ for Mesos to fetch, plus a versioned tar.gz
  demo [--keep]       the whole system mirroring data locally, then stopped
                      (--keep: leave it running to explore, until Ctrl-C)
  prerequisites [dist|demo|test]
                      list what the machine lacks for a task, with the commands
                      that install it (the tasks check this themselves first)
  bench <what> [args] executor | api | scheduler: print measured figures next to their limits
                      (args go to the benchmark, e.g. `bench api --secs 5`)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("dist") => dist::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("prerequisites") => prerequisites::run_check(&args[1..]),
        Some("-h" | "--help" | "help") => {
            eprint!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown task {other:?}\n{USAGE}")),
        None => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // An empty message: the failing command has said everything.
        Err(message) if message.is_empty() => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
