//! The `latentlab` binary: parse the command line, call the library, turn errors into one line on
//! stderr and an exit code (2 bad input, 1 internal failure).

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
    if let Err(error) = run(cli) {
        eprintln!("error: {error}");
        std::process::exit(error.exit_code());
    }
}
