//! Running ffmpeg: its own process group (a Ctrl-C in the terminal reaches the transcoder,
//! which decides), killed with the transcoder even by SIGKILL (PR_SET_PDEATHSIG), progress
//! read from `-progress pipe:1`, and the last lines of stderr kept as the failure reason.

use std::{
    collections::VecDeque,
    path::Path,
    process::{ExitStatus, Stdio},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader},
    process::{Child, Command},
    sync::watch,
};
use tokio_util::sync::CancellationToken;

/// stderr lines kept for the failure reason.
const TAIL_LINES: usize = 12;
/// Longest failure reason, in bytes.
const MAX_REASON: usize = 1000;

/// Why an ffmpeg run did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// ffmpeg exited with an error; `reason` is its own last words.
    #[error("{reason}")]
    Failed { status: ExitStatus, reason: String },
    #[error("stopped")]
    Cancelled,
}

/// A command that runs `program` in a process group of its own, dies with this process, and
/// is killed when dropped.
pub fn command(program: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut cmd);
    cmd
}

/// Asks the kernel to SIGKILL the child when the thread that forked it ends: the transcoder
/// runs a current-thread runtime, so that thread is the process's main thread. If the
/// transcoder died between fork and the prctl call, the child sees a different parent and
/// does not exec at all.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child before exec. It makes two system calls
    // (prctl, getppid), both async-signal-safe, and allocates nothing (the error for a gone
    // parent is a plain `ErrorKind`).
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            Ok(())
        });
    }
}

fn spawn(program: &Path, args: &[String]) -> Result<Child, RunError> {
    command(program, args)
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: program.display().to_string(),
            source,
        })
}

/// Runs ffmpeg with `-progress pipe:1` among `args`, sending each `out_time_us` to
/// `progress`; kills it (SIGKILL) when `cancel` fires.
pub async fn run(
    program: &Path,
    args: &[String],
    progress: &watch::Sender<u64>,
    cancel: &CancellationToken,
) -> Result<(), RunError> {
    let mut child = spawn(program, args)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let read_progress = async {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(us) = line
                .strip_prefix("out_time_us=")
                .and_then(|v| v.parse::<i64>().ok())
            {
                progress.send_replace(us.max(0) as u64);
            }
        }
    };
    let (status, tail) = finish(&mut child, read_progress, stderr, cancel).await?;
    check(status, &tail)
}

/// Runs ffmpeg and returns everything it wrote to stdout.
pub async fn capture(
    program: &Path,
    args: &[String],
    cancel: &CancellationToken,
) -> Result<String, RunError> {
    let mut child = spawn(program, args)?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut text = String::new();
    let read = async {
        let _ = stdout.read_to_string(&mut text).await;
    };
    let (status, tail) = finish(&mut child, read, stderr, cancel).await?;
    check(status, &tail)?;
    Ok(text)
}

/// Drives `read_stdout` and the stderr tail until the child exits, or kills it on `cancel`.
async fn finish(
    child: &mut Child,
    read_stdout: impl std::future::Future<Output = ()>,
    stderr: impl AsyncRead + Unpin,
    cancel: &CancellationToken,
) -> Result<(ExitStatus, VecDeque<String>), RunError> {
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let read_stderr = async {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    };
    let outputs = async {
        tokio::join!(read_stdout, read_stderr);
        child.wait().await
    };
    tokio::select! {
        status = outputs => {
            let status = status.map_err(|source| RunError::Spawn { program: "ffmpeg".into(), source })?;
            Ok((status, tail))
        }
        () = cancel.cancelled() => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(RunError::Cancelled)
        }
    }
}

fn check(status: ExitStatus, tail: &VecDeque<String>) -> Result<(), RunError> {
    if status.success() {
        return Ok(());
    }
    let mut reason = reason(tail.iter().map(String::as_str));
    if reason.is_empty() {
        reason = format!("ffmpeg failed ({status}) without a message");
    }
    Err(RunError::Failed { status, reason })
}

/// The meaningful part of ffmpeg's last stderr lines: the generic closing words dropped,
/// repeats removed, joined with " | ", at most [`MAX_REASON`] bytes (the end kept).
pub fn reason<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    const NOISE: [&str; 3] = [
        "Conversion failed!",
        "Exiting normally",
        "Press [q] to stop",
    ];
    let mut kept: Vec<&str> = Vec::new();
    for line in lines.map(str::trim) {
        if line.is_empty()
            || NOISE.iter().any(|n| line.starts_with(n))
            || kept.last() == Some(&line)
        {
            continue;
        }
        kept.push(line);
    }
    let mut text = kept[kept.len().saturating_sub(4)..].join(" | ");
    if text.len() > MAX_REASON {
        let mut cut = text.len() - MAX_REASON;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!("…{}", &text[cut..]);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_keeps_the_meaningful_lines() {
        let lines = [
            "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] moov atom not found",
            "",
            "/d/videos/x/source: Invalid data found when processing input",
            "Conversion failed!",
        ];
        assert_eq!(
            reason(lines.into_iter()),
            "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] moov atom not found | /d/videos/x/source: Invalid data found when processing input"
        );
        let long = "x".repeat(3000);
        assert!(reason([long.as_str()].into_iter()).len() <= MAX_REASON + 3);
        assert_eq!(reason(std::iter::empty()), "");
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() {
        let (tx, _rx) = watch::channel(0);
        let err = run(
            Path::new("/nonexistent/ffmpeg"),
            &[],
            &tx,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }), "{err}");
    }

    #[tokio::test]
    async fn cancel_kills_the_child() {
        let cancel = CancellationToken::new();
        let (tx, _rx) = watch::channel(0);
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            stop.cancel();
        });
        let started = std::time::Instant::now();
        let err = run(Path::new("sleep"), &["30".to_owned()], &tx, &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Cancelled));
        assert!(started.elapsed().as_secs() < 5);
    }

    #[tokio::test]
    async fn failure_reason_is_stderr() {
        let err = capture(
            Path::new("sh"),
            &[
                "-c".into(),
                "echo first >&2; echo 'the real error' >&2; exit 3".into(),
            ],
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "first | the real error");
    }
}
