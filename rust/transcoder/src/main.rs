//! `lmsd-transcoder` binary: parse the configuration, set up logging and signals, run.

use anyhow::Context;
use clap::Parser;
use lmsd_transcoder::{Cli, Command};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    lmsd_service::init_tracing();
    // One thread: the work is ffmpeg's. It also matters for PR_SET_PDEATHSIG, which fires
    // when the *thread* that started ffmpeg ends; the main thread ends only with the process.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let shutdown = CancellationToken::new();
            lmsd_service::watch_signals(shutdown.clone())?;
            match cli.command {
                Command::Serve(config) => lmsd_transcoder::worker::serve(config, shutdown).await,
                Command::Run(config) => {
                    let summary = lmsd_transcoder::oneshot::run(&config, &shutdown).await?;
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                    Ok(())
                }
            }
        })
}
