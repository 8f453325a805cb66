//! The file-drop connector: for unit systems that take files, not HTTP (the IP Office's
//! import job reads a folder). Each message becomes one file in the folder the target's
//! `url` names, in the unit's encoding:
//!
//! - written as `.<name>.part`, flushed to disk, then renamed to `<name>`: the import job
//!   never sees half a file (a rename within one folder is atomic);
//! - `<name>` is `<flow>-<message id>.<ext>`: a retried delivery writes the same file again,
//!   never a second one, and names sort in acceptance order;
//! - a body that cannot be put in the encoding (a character TCVN3 lacks) is a dead letter
//!   naming the character; a folder that cannot be written is retried.

pub mod config;

use super::{BoxFuture, Connector, Outbound, RawOutcome, RetryClassifier, Verdict};
use crate::envelope::Envelope;
use config::{DropEncoding, FileDropConfig};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct FileDropConnector {
    dir: PathBuf,
    settings: FileDropConfig,
}

impl FileDropConnector {
    /// `location` is the folder: a path, or a `file://` URL.
    pub fn new(location: &str, settings: FileDropConfig) -> Result<Self, String> {
        let dir = folder(location)?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the drop folder {}: {e}", dir.display()))?;
        Ok(FileDropConnector { dir, settings })
    }

    fn extension(&self, body: &Outbound) -> String {
        if let Some(ext) = &self.settings.extension {
            return ext.clone();
        }
        let ct = body.content_type;
        if ct.contains("csv") {
            "csv".into()
        } else if ct.contains("xml") {
            "xml".into()
        } else {
            "json".into()
        }
    }

    fn write(&self, message: &Envelope, body: &Outbound) -> RawOutcome {
        let bytes = match self.settings.encoding {
            DropEncoding::Utf8 => body.body.to_vec(),
            DropEncoding::Tcvn3 => {
                let text = String::from_utf8_lossy(&body.body);
                match lienthong_mapping::text::unicode_to_tcvn3(&text) {
                    Ok(b) => b,
                    Err(c) => {
                        return RawOutcome::Invalid(format!(
                            "`{c}` (U+{:04X}) cannot be written in TCVN3",
                            c as u32
                        ));
                    }
                }
            }
        };
        let name = format!(
            "{}-{}.{}",
            message.flow,
            message.id.0.simple(),
            self.extension(body)
        );
        match write_atomically(&self.dir, &name, &bytes) {
            Ok(()) => RawOutcome::Response {
                status: 200,
                retry_after: None,
                body: String::new(),
            },
            Err(e) => RawOutcome::Transport(format!(
                "cannot write {} in {}: {e}",
                name,
                self.dir.display()
            )),
        }
    }
}

pub use crate::config::drop_folder as folder;

/// `.<name>.part`, synced, renamed to `<name>`, and the folder synced.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let part = dir.join(format!(".{name}.part"));
    {
        let mut f = std::fs::File::create(&part)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&part, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

impl RetryClassifier for FileDropConnector {
    fn classify(&self, outcome: &RawOutcome) -> Verdict {
        super::HttpStatusClassifier.classify(outcome)
    }
}

impl Connector for FileDropConnector {
    fn send<'a>(&'a self, message: &'a Envelope, body: &'a Outbound) -> BoxFuture<'a, RawOutcome> {
        Box::pin(async move {
            let this = (self.dir.clone(), self.settings.clone());
            let (message, body) = (message.clone(), body.clone());
            // Disk writes and fsync off the async threads.
            tokio::task::spawn_blocking(move || {
                let c = FileDropConnector {
                    dir: this.0,
                    settings: this.1,
                };
                c.write(&message, &body)
            })
            .await
            .unwrap_or_else(|e| RawOutcome::Transport(format!("file drop task failed: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_paths_or_absolute_file_urls() {
        assert_eq!(folder("./drop/ipo").unwrap(), PathBuf::from("./drop/ipo"));
        assert_eq!(
            folder("file:///srv/ipo").unwrap(),
            PathBuf::from("/srv/ipo")
        );
        assert!(folder("file://srv/ipo").is_err());
        assert!(folder("https://x/y").is_err());
        assert!(folder(" ").is_err());
    }
}
