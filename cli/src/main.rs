//! `squaremcp`: the gateway for laptops and containers, and its administration commands.

mod access;
mod admin;
mod args;
mod output;
mod progress;
mod telegram;
mod usage_top;
mod webhooks;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{Cli, Command};

/// See the workspace `Cargo.toml`: measured faster than glibc's allocator for `serve` under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    let result = runtime.block_on(async move {
        let options = admin::Options { data_dir: cli.data_dir, store: cli.store };
        match cli.command {
            Command::Serve(serve) => admin::serve(options, &serve.routes.0).await,
            command => admin::run(command, options, json).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(json, &e);
            ExitCode::FAILURE
        }
    }
}
