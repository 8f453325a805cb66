//! Logging setup: human-readable by default, JSON lines with `--log-format json`.
//! The level comes from `RUST_LOG` (default `info`). Every line is masked of personal data
//! ([`crate::redact`]) before it is written.

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    init_with(format, filter, std::io::stderr);
}

/// Install the global subscriber writing to what `writer` makes, every line masked of
/// personal data ([`crate::redact`]). Tests capture the logs this way.
pub fn init_with<W, F>(format: LogFormat, filter: EnvFilter, writer: F)
where
    W: std::io::Write + 'static,
    F: Fn() -> W + Send + Sync + 'static,
{
    let masked = move || crate::redact::MaskingWriter(writer());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // No colour codes: they would split values from their field names and hide them
        // from the masking (and they litter log files).
        .with_ansi(false)
        .with_writer(masked);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
