//! Signed webhooks: a job's end state POSTed to a URL the client chose, signed as the Standard
//! Webhooks specification says, and only to hosts the operator allowed.
//!
//! **Signature.** `webhook-id` (fixed per job: every retry carries the same one, so a receiver
//! can drop duplicates), `webhook-timestamp` (seconds) and `webhook-signature: v1,<base64 of
//! HMAC-SHA256 over "id.timestamp.body">`, with the secret `whsec_<base64>` from
//! `GENROUTE_WEBHOOK_SECRET`; computed by the specification's own Rust library
//! (`standardwebhooks`).
//!
//! **Where it may go.** A webhook URL is outbound traffic chosen by a client, so it is checked
//! twice. When the job is submitted: `http` or `https`, and a host on the operator's
//! allow-list (`--webhook-allow`, exact names, `*.example.com`, or IP addresses). When it is
//! delivered: the host is resolved, and every address must be public (not loopback, private,
//! link-local, unique-local, multicast or unspecified) unless the allow-list names that very
//! address; the request then goes to the checked address only (the connection is pinned, so a
//! second DNS answer cannot send it elsewhere), and redirects are not followed.
//!
//! **Retries.** A delivery that fails (no answer, or not 2xx) is retried with doubling delays
//! (1 s, 2 s, 4 s, … at most 60 s) for [`Config::window`] (default one hour), at least once.
//! The delivery state is part of the job record, so a replica that takes the job over also
//! takes over its delivery.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{DeliveryState, Job, Webhook};
use crate::adapter::Secret;

/// How webhooks are delivered.
#[derive(Clone)]
pub struct Config {
    /// Hosts (and addresses) webhooks may go to.
    pub allow: Vec<String>,
    /// The signing secret (`whsec_<base64>`); without one, requests with a webhook are refused.
    pub secret: Option<Secret>,
    /// How long failed deliveries are retried.
    pub window: Duration,
    /// Timeout of one delivery.
    pub timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("allow", &self.allow)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("window", &self.window)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            allow: Vec::new(),
            secret: None,
            window: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a webhook URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// What is wrong.
    pub message: String,
    /// True when the URL is well formed but may not be called (a host not on the allow-list,
    /// another scheme, credentials, webhooks off): the server answers 403, not 400.
    pub forbidden: bool,
}

fn malformed(message: String) -> Refused {
    Refused {
        message,
        forbidden: false,
    }
}

fn forbidden(message: String) -> Refused {
    Refused {
        message,
        forbidden: true,
    }
}

fn host_allowed(allow: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allow.iter().any(|a| {
        let a = a.trim().trim_end_matches('.').to_ascii_lowercase();
        match a.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => a == host,
        }
    })
}

/// Whether an address is one that public traffic must not reach.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10, CGNAT
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
        }
    }
}

/// An address the allow-list names literally.
fn address_allowed(allow: &[String], ip: IpAddr) -> bool {
    allow
        .iter()
        .filter_map(|a| {
            a.trim()
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
                .ok()
        })
        .any(|a| a == ip)
}

impl Config {
    /// Checks a webhook URL when a job is submitted.
    pub fn check(&self, url: &str) -> Result<reqwest::Url, Refused> {
        if self.secret.is_none() {
            return Err(forbidden(
                "webhooks are off: the server has no GENROUTE_WEBHOOK_SECRET".into(),
            ));
        }
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| malformed(format!("`{url}` is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(forbidden(format!(
                "`{}` webhooks are not allowed; use http or https",
                parsed.scheme()
            )));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(forbidden("a webhook URL may not carry credentials".into()));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| malformed(format!("`{url}` has no host")))?;
        if !host_allowed(&self.allow, host) {
            return Err(forbidden(format!(
                "`{host}` is not on the server's webhook allow-list (--webhook-allow)"
            )));
        }
        Ok(parsed)
    }

    /// Resolves a checked URL's host and picks the address to send to, refusing internal
    /// addresses the allow-list does not name.
    async fn address(&self, url: &reqwest::Url) -> Result<SocketAddr, String> {
        let host = url.host_str().ok_or("no host")?;
        let port = url.port_or_known_default().ok_or("no port")?;
        let bare = host.trim_matches(|c| c == '[' || c == ']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(self.timeout, tokio::net::lookup_host((bare, port)))
                .await
                .map_err(|_| format!("resolving `{bare}` timed out"))?
                .map_err(|e| format!("cannot resolve `{bare}`: {e}"))?
                .collect(),
        };
        let first = *addrs
            .first()
            .ok_or_else(|| format!("`{bare}` has no address"))?;
        for a in &addrs {
            if is_internal(a.ip()) && !address_allowed(&self.allow, a.ip()) {
                return Err(format!(
                    "`{bare}` resolves to {}, an internal address the webhook allow-list does not name",
                    a.ip()
                ));
            }
        }
        Ok(first)
    }

    /// Makes one delivery of `body`; `Ok` when the receiver answered 2xx.
    pub async fn deliver(&self, hook: &Webhook, body: &[u8]) -> Result<(), String> {
        let secret = self.secret.as_ref().ok_or("no webhook secret")?;
        let url = self.check(&hook.url).map_err(|e| e.message)?;
        let addr = self.address(&url).await?;
        let host = url.host_str().unwrap_or_default().to_string();
        let signer = standardwebhooks::Webhook::new(secret.expose())
            .map_err(|e| format!("the webhook secret is not `whsec_<base64>`: {e}"))?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signer
            .sign(&hook.id, timestamp, body)
            .map_err(|e| format!("cannot sign: {e}"))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .user_agent(concat!("genroute/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        let reply = client
            .post(url)
            .header("content-type", "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &hook.id)
            .header(
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                timestamp.to_string(),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if reply.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the receiver answered HTTP {}",
                reply.status().as_u16()
            ))
        }
    }
}

/// The delay before try `n + 1` (after `n` failed tries): 1 s, 2 s, 4 s, … at most 60 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(6)).min(Duration::from_secs(60))
}

/// Records one try's result in the job's webhook state; returns whether to try again, and
/// when. The first try counts from the job's end; the window from then too.
pub fn record(job: &mut Job, result: Result<(), String>, now_ms: i64, window: Duration) {
    let ended = job.finished_ms.unwrap_or(now_ms);
    let Some(hook) = job.webhook.as_mut() else {
        return;
    };
    hook.attempts += 1;
    match result {
        Ok(()) => {
            hook.state = DeliveryState::Delivered;
            hook.last_error = None;
        }
        Err(e) => {
            hook.last_error = Some(e);
            let next = now_ms + backoff(hook.attempts - 1).as_millis() as i64;
            if next > ended + window.as_millis() as i64 {
                hook.state = DeliveryState::Failed;
            } else {
                hook.next_at_ms = next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow: &[&str]) -> Config {
        Config {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            secret: Some(Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
            ..Config::default()
        }
    }

    #[test]
    fn only_allowed_hosts_and_schemes_pass_the_first_check() {
        let c = config(&["hooks.example.com", "*.example.org", "127.0.0.1"]);
        assert!(c.check("https://hooks.example.com/x").is_ok());
        assert!(c.check("https://a.b.example.org/x").is_ok());
        assert!(c.check("http://127.0.0.1:9/x").is_ok());
        for bad in [
            "https://evil.example.net/x",
            "https://example.org/x",
            "ftp://hooks.example.com/x",
            "https://user:pw@hooks.example.com/x",
            "https://localhost/x",
            "not a url",
        ] {
            assert!(c.check(bad).is_err(), "{bad}");
        }
        assert!(
            Config::default()
                .check("https://hooks.example.com")
                .is_err(),
            "no secret, no webhooks"
        );
    }

    #[test]
    fn internal_addresses_need_to_be_named() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
            "100.64.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_internal(ip), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
        assert!(address_allowed(
            &["127.0.0.1".into()],
            "127.0.0.1".parse().unwrap()
        ));
        assert!(!address_allowed(
            &["localhost".into()],
            "127.0.0.1".parse().unwrap()
        ));
    }

    #[tokio::test]
    async fn a_name_that_resolves_inside_is_refused_at_delivery() {
        let c = config(&["localhost"]);
        let url = c.check("http://localhost:9/hook").unwrap();
        let e = c.address(&url).await.unwrap_err();
        assert!(e.contains("internal address"), "{e}");
    }

    #[test]
    fn retries_double_up_to_a_minute_within_the_window() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(20), Duration::from_secs(60));
    }
}
