//! PLACEHOLDER: being written.

use super::{Endpoint, Failure, FailureClass, JobSpec, Outcome};

/// Adapter.
#[derive(Debug, Clone)]
pub struct Vertex {
    /// Where and how to connect.
    pub endpoint: Endpoint,
    /// Shared HTTP client.
    pub client: reqwest::Client,
    /// Google Cloud project.
    pub project: String,
    /// Region, e.g. us-central1.
    pub location: String,
}

impl Vertex {
    /// Runs one job.
    pub async fn generate(&self, _job: &JobSpec) -> Outcome {
        Err(Failure::new(FailureClass::Terminal, "not implemented"))
    }
}
