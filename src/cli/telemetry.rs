//! Logs and traces of the process: set up once in `main`, before the command runs, and shut
//! down after it so that batched spans are exported before exit.
//!
//! This is the one piece of the CLI that is not a translation to a library call: the library
//! only emits `tracing` spans and events, and which subscriber receives them is the
//! executable's choice.

use std::io::IsTerminal;

use opentelemetry_otlp::WithExportConfig;

/// Logs go to stderr, filtered by `RUST_LOG` (default: warnings). When
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are also exported over OTLP/HTTP (protobuf) to
/// that endpoint, with their own filter (`genroute=info`). Prompts and keys are never logged.
pub fn init_tracing() -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let fmt = tracing_subscriber::fmt::layer()
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let provider = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").and_then(|_| otlp_provider());
    let otel = provider.as_ref().map(|p| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("genroute"))
            .with_filter(tracing_subscriber::EnvFilter::new("genroute=info"))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    provider
}

/// The OTLP/HTTP span exporter (5 s timeout; the endpoint comes from the environment) behind
/// a batch processor, or `None`, with a warning, if the exporter cannot be built.
fn otlp_provider() -> Option<opentelemetry_sdk::trace::SdkTracerProvider> {
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("warning: OTLP export disabled: {e}");
            return None;
        }
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("genroute")
        .build();
    Some(
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
}
