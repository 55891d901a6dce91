//! How a binary turns its error into a message and an exit code.

use std::process::ExitCode;

/// Exit code for invalid configuration (sysexits' EX_CONFIG).
pub const CONFIG: u8 = 78;
/// Exit code for a dependency that cannot be reached (EX_UNAVAILABLE).
pub const UNAVAILABLE: u8 = 69;
/// Exit code for an internal fault (EX_SOFTWARE).
pub const SOFTWARE: u8 = 70;
/// Exit code for bad input data (EX_DATAERR).
pub const DATA: u8 = 65;

/// An error that knows which exit code it deserves.
pub trait ExitStatus: std::fmt::Display {
    /// The process exit code for this error.
    fn exit_code(&self) -> u8;
}

/// Prints the error chain (`binary: error: cause: cause`) and returns its exit code.
pub fn finish<E: ExitStatus + std::error::Error>(binary: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut message = format!("{binary}: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                let text = cause.to_string();
                if !message.ends_with(&text) {
                    message.push_str(": ");
                    message.push_str(&text);
                }
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::from(err.exit_code())
        }
    }
}
