//! PLACEHOLDER: being written.

use super::{Endpoint, Failure, FailureClass, JobSpec, Outcome};

/// Adapter.
#[derive(Debug, Clone)]
pub struct OpenAi {
    /// Where and how to connect.
    pub endpoint: Endpoint,
    /// Shared HTTP client.
    pub client: reqwest::Client,

}

impl OpenAi {
    /// Runs one job.
    pub async fn generate(&self, _job: &JobSpec) -> Outcome {
        Err(Failure::new(FailureClass::Terminal, "not implemented"))
    }
}
