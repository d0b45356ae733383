use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// JSON logs to stdout, filtered by `RUST_LOG` (default `info`). Safe to call twice: the
/// second call (several services in one test process) keeps the first subscriber.
pub fn init_logging(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false),
        )
        .try_init()
        .is_ok();
    if installed {
        tracing::info!(service, "logging initialised");
    }
}
