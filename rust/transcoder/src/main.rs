//! `lmsd-transcoder` binary: parse the configuration, then serve (or run one file).

use clap::Parser;
use lmsd_transcoder::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One thread: the work is ffmpeg's. It also matters for PR_SET_PDEATHSIG, which fires
    // when the *thread* that started ffmpeg ends; the main thread ends only with the process.
    lmsd_service::serve_single_threaded(|shutdown| async move {
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
