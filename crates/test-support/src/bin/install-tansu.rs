//! Installs the pinned Tansu broker into the cache (when missing) and prints its path.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    match mmm_test_support::tansu_binary() {
        Ok(path) => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{}", path.display()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("install-tansu: {err}");
            ExitCode::FAILURE
        }
    }
}
