//! Where a ladder is written: a temporary directory next to the final one
//! (`<name>.partial-<uuid>`), fsynced and renamed into place when complete, so the final
//! directory either does not exist or holds a whole ladder. A `.complete` marker inside it
//! (written before the rename) holds the `video_transcoded` event, so a job delivered again
//! after success only publishes that event again.

use std::{
    fs::{self, File},
    io,
    path::{Path, PathBuf},
};

/// Marker file of a finished ladder; its content is the encoded `video_transcoded` envelope.
pub const COMPLETE: &str = ".complete";

/// A new temporary directory for `output` (created, with its parents).
pub fn create_partial(output: &Path) -> io::Result<PathBuf> {
    let (parent, name) = split(output)?;
    fs::create_dir_all(parent)?;
    let dir = parent.join(format!("{name}.partial-{}", uuid::Uuid::new_v4()));
    fs::create_dir(&dir)?;
    Ok(dir)
}

/// Removes every `<name>.partial-*` next to `output` (left by killed attempts); returns how
/// many there were.
pub fn remove_partials(output: &Path) -> io::Result<usize> {
    let (parent, name) = split(output)?;
    let prefix = format!("{name}.partial-");
    let entries = match fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            remove_tree(&entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes a directory tree; a missing one is fine.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// The marker of a finished `output`, if there is one.
pub fn read_complete(output: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(output.join(COMPLETE)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Makes `partial` the final `output`: writes the marker (when given), flushes every file and
/// directory to disk, replaces an unfinished `output` (one without a marker) and renames.
pub fn commit(partial: &Path, output: &Path, marker: Option<&[u8]>) -> io::Result<()> {
    if let Some(marker) = marker {
        fs::write(partial.join(COMPLETE), marker)?;
    }
    sync_tree(partial)?;
    if output.exists() {
        remove_tree(output)?;
    }
    fs::rename(partial, output)?;
    let (parent, _) = split(output)?;
    File::open(parent)?.sync_all()
}

fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            File::open(entry.path())?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()
}

fn split(output: &Path) -> io::Result<(&Path, String)> {
    match (output.parent(), output.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name.to_string_lossy().into_owned())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no parent directory", output.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_then_commit() {
        let root = tempfile::tempdir().unwrap();
        let output = root.path().join("videos/v1/hls");
        let stale = create_partial(&output).unwrap();
        fs::write(stale.join("junk"), b"x").unwrap();
        let unrelated = root.path().join("videos/v1/hls-other.partial-1");
        fs::create_dir(&unrelated).unwrap();
        assert_eq!(remove_partials(&output).unwrap(), 1);
        assert!(!stale.exists() && unrelated.exists());

        let partial = create_partial(&output).unwrap();
        fs::create_dir(partial.join("240p")).unwrap();
        fs::write(partial.join("240p/index.m3u8"), b"#EXTM3U\n").unwrap();
        assert_eq!(read_complete(&output).unwrap(), None);
        commit(&partial, &output, Some(b"event")).unwrap();
        assert!(!partial.exists());
        assert_eq!(
            read_complete(&output).unwrap().as_deref(),
            Some(&b"event"[..])
        );
        assert!(output.join("240p/index.m3u8").is_file());

        // an unfinished output (no marker) is replaced
        fs::remove_file(output.join(COMPLETE)).unwrap();
        let again = create_partial(&output).unwrap();
        commit(&again, &output, None).unwrap();
        assert!(!output.join("240p").exists());
        assert_eq!(
            remove_partials(&root.path().join("nothing/here")).unwrap(),
            0
        );
    }
}
