//! HTTP plumbing shared by the adapters: one place for timeouts, status classification,
//! `Retry-After`, polling back-off and error messages that never carry a secret.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::{Failure, FailureClass};

/// A reply that arrived: status, headers and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON, or a retryable failure naming what was wrong with it.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, Failure> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Failure::new(
                FailureClass::Retryable,
                format!(
                    "{what}: malformed JSON reply ({e}): {}",
                    snippet(&self.body)
                ),
            )
        })
    }

    /// A failure for a non-success status, classed by [`classify_status`].
    pub fn status_failure(&self, what: &str) -> Failure {
        Failure::new(
            classify_status(self.status),
            format!(
                "{what}: HTTP {}: {}",
                self.status.as_u16(),
                snippet(&self.body)
            ),
        )
    }
}

/// How a call failed before a reply arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The connection could not be made; the request surely did not reach the server.
    Connect(String),
    /// The request may have reached the server (timeout, reset, unreadable reply).
    Unknown(String),
}

impl Transport {
    /// As a failure of a call that is safe to repeat (polls, downloads).
    pub fn failure(self, what: &str) -> Failure {
        match self {
            Transport::Connect(m) | Transport::Unknown(m) => {
                Failure::new(FailureClass::Retryable, format!("{what}: {m}"))
            }
        }
    }

    /// As a failure of a create call: in doubt unless the request surely never arrived.
    pub fn create_failure(self, what: &str) -> Failure {
        match self {
            Transport::Connect(m) => Failure::new(FailureClass::Retryable, format!("{what}: {m}")),
            Transport::Unknown(m) => Failure::in_doubt(
                FailureClass::Retryable,
                format!("{what}: {m}; the job may exist, so it is not submitted again"),
            ),
        }
    }
}

/// Sends a request with a timeout and reads the whole reply.
pub async fn send(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Reply, Transport> {
    let response = request.timeout(timeout).send().await.map_err(describe)?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(describe)?.to_vec();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Describes a transport error without its URL (which could carry a credential).
fn describe(e: reqwest::Error) -> Transport {
    let timeout = e.is_timeout();
    let connect = e.is_connect();
    let message = e.without_url().to_string();
    if timeout {
        Transport::Unknown(format!("timed out ({message})"))
    } else if connect {
        Transport::Connect(format!("cannot connect ({message})"))
    } else {
        Transport::Unknown(message)
    }
}

/// Sends a create call and reads its JSON reply. A lost reply, or one that cannot be read, is
/// in doubt (the job may exist); so is a gateway's 502 or 504, which says the gateway lost
/// the upstream's answer, not that the job was refused. Any other error status is classed by
/// [`classify_status`] and is not in doubt: the service itself answered.
pub async fn create_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    what: &str,
) -> Result<(T, HeaderMap), Failure> {
    let reply = send(request, timeout)
        .await
        .map_err(|t| t.create_failure(what))?;
    let value = read_created(&reply, what, "")?;
    Ok((value, reply.headers))
}

/// Reads a create call's reply (see [`create_json`]): a 502 or 504 is in doubt, any other
/// error status is classed by [`classify_status`], an unreadable success body is in doubt.
/// `note` is added to an error status's message (e.g. how many times the call was sent).
pub fn read_created<T: serde::de::DeserializeOwned>(
    reply: &Reply,
    what: &str,
    note: &str,
) -> Result<T, Failure> {
    if !reply.status.is_success() {
        let mut failure = reply.status_failure(what);
        failure.message.push_str(note);
        if matches!(reply.status.as_u16(), 502 | 504) {
            return Err(Failure::in_doubt(
                failure.class,
                format!("{}; a gateway lost the service's answer, so the job may exist and is not submitted again", failure.message),
            ));
        }
        return Err(failure);
    }
    reply
        .json(what)
        .map_err(|f| Failure::in_doubt(f.class, f.message))
}

/// One poll: the parsed reply, or `Err(Again(hint))` when the poll should simply be repeated
/// (transport trouble, 408/429/5xx, an unreadable body), or a failure for any other status.
pub enum Polled<T> {
    /// The server answered with a readable body (and perhaps a hint for the next poll).
    Ready(T, Option<Duration>),
    /// Ask again after the hinted delay, if any.
    Again(Option<Duration>),
    /// The server answered with a success status but a body that cannot be read; asking
    /// again is fine a few times (see [`MAX_UNREADABLE_POLLS`]).
    Unreadable(Failure, Option<Duration>),
    /// The connection was refused: nothing listens there (see [`MAX_UNREACHABLE_POLLS`]).
    Down(String),
}

/// How many unreadable poll replies in a row end the job. A server that keeps answering
/// with a body the adapter cannot read is not going to start making sense; waiting for the
/// job's deadline (minutes) would only hold the request. Transport trouble and 408/429/5xx,
/// which do pass, are still waited out until the deadline.
pub const MAX_UNREADABLE_POLLS: u32 = 5;

/// How many refused connections in a row (across the growing back-off) end the job. A server
/// that was killed refuses every connection; a self-hosted worker that died mid-job is not
/// coming back with the job, so its attempt ends (in doubt) and the request falls back
/// instead of waiting for the deadline. Timeouts and resets are still waited out.
pub const MAX_UNREACHABLE_POLLS: u32 = 5;

/// Sends one poll request. Polls are safe to repeat, so only a definite error status fails.
pub async fn poll_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    what: &str,
) -> Result<Polled<T>, Failure> {
    poll_reply(request, timeout, what, false).await
}

/// One poll. With `read_errors`, an error status whose body reads as `T` is an answer (a
/// server that reports a failed job with its HTTP status).
async fn poll_reply<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    what: &str,
    read_errors: bool,
) -> Result<Polled<T>, Failure> {
    let reply = match send(request, timeout).await {
        Ok(reply) => reply,
        Err(Transport::Connect(m)) => return Ok(Polled::Down(m)),
        Err(Transport::Unknown(_)) => return Ok(Polled::Again(None)),
    };
    let hint = poll_hint(&reply.headers);
    if read_errors && !reply.status.is_success() {
        if let Ok(v) = serde_json::from_slice::<T>(&reply.body) {
            return Ok(Polled::Ready(v, hint));
        }
    }
    if classify_status(reply.status) == FailureClass::Retryable && !reply.status.is_success() {
        return Ok(Polled::Again(hint));
    }
    if !reply.status.is_success() {
        return Err(reply.status_failure(what));
    }
    Ok(match reply.json(what) {
        Ok(v) => Polled::Ready(v, hint),
        Err(unreadable) => Polled::Unreadable(unreadable, hint),
    })
}

/// A polling loop's state: the back-off schedule and the server's last hint.
pub struct Poller {
    backoff: Backoff,
    hint: Option<Duration>,
    unreadable: u32,
    down: u32,
}

impl Poller {
    /// Starts polling with the endpoint's intervals and an optional first hint.
    pub fn new(first: Duration, max: Duration, hint: Option<Duration>) -> Poller {
        Poller {
            backoff: Backoff::new(first, max),
            hint,
            unreadable: 0,
            down: 0,
        }
    }

    /// Waits, then polls once: `Some(reply)` when the server answered readably, `None` when
    /// the poll should simply be repeated, a failure for a definite error status or for the
    /// [`MAX_UNREADABLE_POLLS`]th unreadable reply in a row.
    pub async fn poll<T: serde::de::DeserializeOwned>(
        &mut self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        what: &str,
    ) -> Result<Option<T>, Failure> {
        self.poll_inner(request, timeout, what, false).await
    }

    /// [`Poller::poll`], reading an error status's body as `T` when it can be.
    pub async fn poll_reading_errors<T: serde::de::DeserializeOwned>(
        &mut self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        what: &str,
    ) -> Result<Option<T>, Failure> {
        self.poll_inner(request, timeout, what, true).await
    }

    async fn poll_inner<T: serde::de::DeserializeOwned>(
        &mut self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
        what: &str,
        read_errors: bool,
    ) -> Result<Option<T>, Failure> {
        tokio::time::sleep(self.backoff.next_delay(self.hint)).await;
        let polled = poll_reply(request, timeout, what, read_errors).await?;
        if !matches!(polled, Polled::Down(_)) {
            self.down = 0;
        }
        Ok(match polled {
            Polled::Ready(v, hint) => {
                self.hint = hint;
                self.unreadable = 0;
                Some(v)
            }
            Polled::Again(hint) => {
                self.hint = hint;
                None
            }
            Polled::Down(message) => {
                self.hint = None;
                self.down += 1;
                if self.down >= MAX_UNREACHABLE_POLLS {
                    return Err(Failure::new(
                        FailureClass::Retryable,
                        format!("{what}: {message} ({} times in a row)", self.down),
                    ));
                }
                None
            }
            Polled::Unreadable(failure, hint) => {
                self.hint = hint;
                self.unreadable += 1;
                if self.unreadable >= MAX_UNREADABLE_POLLS {
                    return Err(Failure::new(
                        failure.class,
                        format!(
                            "{} ({} unreadable replies in a row)",
                            failure.message, self.unreadable
                        ),
                    ));
                }
                None
            }
        })
    }
}

/// Scheme, host and port: what "the same origin" compares.
pub(crate) fn origin(u: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    (
        u.scheme().to_string(),
        u.host_str().map(str::to_string),
        u.port_or_known_default(),
    )
}

/// GETs `url`, following up to five redirects by hand. `auth` headers go only to the
/// original origin: a redirect to another host (a signed storage URL, say) never receives the
/// key.
pub async fn get_following(
    client: &reqwest::Client,
    url: &str,
    auth: &HeaderMap,
    timeout: Duration,
) -> Result<Reply, Transport> {
    let first =
        reqwest::Url::parse(url).map_err(|e| Transport::Connect(format!("bad URL: {e}")))?;
    let mut current = first.clone();
    for _ in 0..=5 {
        let mut req = client.get(current.clone());
        if origin(&current) == origin(&first) {
            req = req.headers(auth.clone());
        }
        let reply = send(req, timeout).await?;
        if !reply.status.is_redirection() {
            return Ok(reply);
        }
        let location = reply
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Transport::Unknown("a redirect without a Location".into()))?;
        current = current
            .join(location)
            .map_err(|e| Transport::Unknown(format!("bad redirect: {e}")))?;
    }
    Err(Transport::Unknown("too many redirects".into()))
}

/// 408, 429 and 5xx are retryable; any other error status is terminal for this backend.
pub fn classify_status(status: StatusCode) -> FailureClass {
    match status.as_u16() {
        408 | 429 | 500..=599 => FailureClass::Retryable,
        _ => FailureClass::Terminal,
    }
}

/// The `Retry-After` header in seconds (the HTTP-date form is ignored), or the
/// `openai-poll-after-ms` header.
pub fn poll_hint(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("openai-poll-after-ms").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_millis(ms));
    }
    header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Polling intervals: start at `first`, grow by half each poll up to `max`; a server's hint
/// replaces the next interval (capped at a minute).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A new schedule.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { next: first, max }
    }

    /// The next wait.
    pub fn next_delay(&mut self, hint: Option<Duration>) -> Duration {
        let delay = hint.map_or(self.next, |h| h.min(Duration::from_secs(60)));
        self.next = (self.next + self.next / 2).min(self.max);
        delay
    }
}

/// The first 200 characters of a body, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s.replace('\n', " ")
}

/// A failure after the create call succeeded: the job exists and may still run (and bill),
/// so the reservation is kept.
pub(crate) fn after_create(f: Failure) -> Failure {
    Failure::in_doubt(
        f.class,
        format!("{}; the job was submitted and may still finish", f.message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(
                classify_status(StatusCode::from_u16(s).unwrap()),
                FailureClass::Retryable,
                "{s}"
            );
        }
        for s in [400, 401, 402, 403, 404, 422] {
            assert_eq!(
                classify_status(StatusCode::from_u16(s).unwrap()),
                FailureClass::Terminal,
                "{s}"
            );
        }
    }

    #[test]
    fn backoff_grows_and_honours_hints() {
        let mut b = Backoff::new(Duration::from_secs(2), Duration::from_secs(5));
        assert_eq!(b.next_delay(None), Duration::from_secs(2));
        assert_eq!(b.next_delay(None), Duration::from_secs(3));
        assert_eq!(
            b.next_delay(Some(Duration::from_millis(250))),
            Duration::from_millis(250)
        );
        assert_eq!(b.next_delay(None), Duration::from_secs(5));
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn hints_from_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(poll_hint(&h), Some(Duration::from_secs(7)));
        h.insert("openai-poll-after-ms", "1500".parse().unwrap());
        assert_eq!(poll_hint(&h), Some(Duration::from_millis(1500)));
    }
}
