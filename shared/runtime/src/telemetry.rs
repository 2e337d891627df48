//! Logs and traces.
//!
//! Logs go to stdout, one JSON object a line (or pretty for a terminal),
//! filtered by `RUST_LOG`. When `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans
//! are also exported over OTLP/HTTP; the standard `OTEL_*` variables tune the
//! exporter. W3C trace context is the process-wide propagator, so the AMQP
//! layer can carry a trace from one service to the next.

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{CommonConfig, LogFormat};

/// Keeps the exporter alive; [`Telemetry::shutdown`] flushes what is left.
#[must_use = "dropping the guard loses spans not yet exported"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the global subscriber for `config`.
    ///
    /// Fails when a subscriber is already installed or the OTLP exporter
    /// cannot be built.
    pub fn init(config: &CommonConfig) -> anyhow::Result<Self> {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let filter = EnvFilter::try_new(&config.log_filter)
            .with_context(|| format!("RUST_LOG is invalid: {:?}", config.log_filter))?
            // lapin logs a returned (unroutable) message at WARN with its
            // whole body: customer data must not reach the logs that way.
            // fa-amqp reports returns itself, without the body.
            .add_directive("lapin::returned_messages=error".parse().context("the lapin log directive")?);

        let fmt_layer = match config.log_format {
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_target(true)
                .boxed(),
            LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(false).boxed(),
        };

        let (otel_layer, provider) = match &config.otlp_endpoint {
            None => (None, None),
            Some(_) => {
                // The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT and the other
                // standard variables itself.
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .build()
                    .context("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter cannot be built")?;
                let service_name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| config.service.to_owned());
                let provider = SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(service_name).build())
                    .build();
                let tracer = provider.tracer(config.service);
                opentelemetry::global::set_tracer_provider(provider.clone());
                (Some(tracing_opentelemetry::layer().with_tracer(tracer)), Some(provider))
            }
        };

        tracing_subscriber::registry()
            .with(filter)
            .with(fmt_layer)
            .with(otel_layer)
            .try_init()
            .context("a log subscriber is already installed")?;
        Ok(Self { provider })
    }

    /// Exports the spans still buffered.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: could not flush OpenTelemetry spans: {e}");
        }
    }
}
