//! The `latentlab` binary: parse the command line, call the library, turn errors into one line on
//! stderr and an exit code (2 bad input, 1 internal failure or divergence, 130 after Ctrl-C).

use clap::Parser;
use clap::error::ErrorKind;
use latentlab::cli::{Cli, one_line_usage_error, run};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => {
            eprintln!("{}", one_line_usage_error(&e));
            std::process::exit(2);
        }
    };
    latentlab::process::join_thread_pool();
    latentlab::process::keep_freed_memory();
    if let Err(error) = run(cli) {
        match &error {
            // Not a failure: the user stopped a run, and it was saved.
            latentlab::Error::Interrupted(message) => eprintln!("{message}"),
            _ => eprintln!("error: {}", error.one_line()),
        }
        std::process::exit(error.exit_code());
    }
}
