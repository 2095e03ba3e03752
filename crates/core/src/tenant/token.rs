//! API key tokens: `gr_<key id>_<secret>`, and the hash the tenants file stores.
//!
//! The secret is 32 bytes from the operating system's RNG, written as unpadded base64url
//! (43 characters). The key id is part of the token so that verifying it is one lookup and one
//! hash, never a scan of every key; ids cannot contain `_`, so the first `_` after `gr_` ends
//! the id (the secret may contain `_`, base64url uses it).
//!
//! The file stores `sha256:<hex>` of the whole token. A plain (unsalted, fast) hash is enough
//! because the secret is 256 random bits: there is nothing to guess, so a slow password hash
//! would only slow every request. The comparison is constant-time ([`subtle`]).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// Every token starts with this.
pub const PREFIX: &str = "gr_";
/// Bytes of randomness in a secret.
pub const SECRET_BYTES: usize = 32;
/// The longest token accepted: an id of 63 characters, the 43 of a secret, and room for
/// secrets made elsewhere. Anything longer is malformed without being hashed.
pub const MAX_TOKEN_LEN: usize = 256;

/// A SHA-256 digest of a whole token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest(pub(crate) [u8; 32]);

impl Digest {
    /// The digest of `token`.
    pub fn of(token: &str) -> Digest {
        Digest(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses `sha256:<64 lowercase hex digits>`.
    pub fn parse(s: &str) -> Option<Digest> {
        let hex = s.strip_prefix("sha256:")?;
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let nibble = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(Digest(out))
    }

    /// Whether the two digests are equal, in time that does not depend on where they differ.
    pub fn ct_eq(&self, other: &Digest) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl fmt::Display for Digest {
    /// `sha256:<64 lowercase hex digits>`, as the tenants file stores it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only, never on where
/// they differ: every comparison of a secret with what a caller sent goes through here (token
/// digests, and the server's admin token, which is not an API key and so has no digest).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The `sha256:` hash of a token, as the tenants file stores it.
pub fn hash(token: &str) -> String {
    Digest::of(token).to_string()
}

/// A whole token. Its `Debug` shows the key id and hides the secret, and it has no `Display`:
/// the one way to the text is [`Token::expose`], so that printing it is always deliberate.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    text: String,
    /// Length of the key id, after [`PREFIX`].
    id_len: usize,
}

impl Token {
    /// A new token for key `id`, with a fresh secret from the operating system's RNG.
    ///
    /// Panics if the OS has no randomness to give, which no supported system does; a key
    /// made from anything weaker would be worse than no key.
    pub fn generate(id: &str) -> Token {
        use rand::TryRngCore;
        let mut secret = [0u8; SECRET_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut secret)
            .expect("the operating system's random number generator failed");
        Token {
            text: format!("{PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret)),
            id_len: id.len(),
        }
    }

    /// Parses a token as sent: `gr_`, a key id (which has no `_`), `_`, a non-empty secret.
    /// The secret's own shape is not checked (the hash decides), only that it is printable
    /// ASCII with no spaces, as an HTTP header's token is.
    pub fn parse(text: &str) -> Option<Token> {
        if text.len() > MAX_TOKEN_LEN {
            return None;
        }
        let rest = text.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        if !super::load::is_id(id)
            || secret.is_empty()
            || !secret.bytes().all(|b| b.is_ascii_graphic())
        {
            return None;
        }
        Some(Token {
            text: text.to_string(),
            id_len: id.len(),
        })
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.text[PREFIX.len()..PREFIX.len() + self.id_len]
    }

    /// The whole token, secret included: to show it once to whoever made the key, or to send
    /// it in `Authorization: Bearer`.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// Its digest.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.text)
    }

    /// Its `sha256:` hash, as the tenants file stores it.
    pub fn hash(&self) -> String {
        self.digest().to_string()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("id", &self.id())
            .field("secret", &format_args!("<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_to_its_id_and_hides_its_secret() {
        let t = Token::generate("growth-web");
        assert_eq!(t.id(), "growth-web");
        let secret = &t.expose()["gr_growth-web_".len()..];
        assert_eq!(secret.len(), 43);
        assert_eq!(Token::parse(t.expose()), Some(t.clone()));
        let debug = format!("{t:?}");
        assert!(!debug.contains(secret), "{debug}");
        assert!(debug.contains("growth-web"), "{debug}");
        assert_ne!(Token::generate("growth-web"), t, "every secret is fresh");
    }

    #[test]
    fn a_secret_may_hold_underscores_and_an_id_may_not() {
        let t = Token::parse("gr_a-1_x_y-z").unwrap();
        assert_eq!(t.id(), "a-1");
        for bad in [
            "",
            "gr_",
            "gr_abc",
            "gr_abc_",
            "gr__abc",
            "xx_abc_def",
            "gr_ABC_def",
            "gr_abc_de f",
        ] {
            assert_eq!(Token::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Token::parse(&format!("gr_a_{}", "x".repeat(300))), None);
    }

    #[test]
    fn hashes_are_sha256_of_the_whole_token_in_lowercase_hex() {
        // sha256("abc"), FIPS 180-2's first example.
        let h = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash("abc"), h);
        assert_eq!(Digest::parse(h), Some(Digest::of("abc")));
        assert_eq!(
            Digest::parse(&h.to_uppercase().replace("SHA256", "sha256")),
            None
        );
        assert_eq!(Digest::parse(&h[..h.len() - 1]), None);
        assert_eq!(Digest::parse(&h["sha256:".len()..]), None);
        assert!(Digest::of("abc").ct_eq(&Digest::of("abc")));
        assert!(!Digest::of("abc").ct_eq(&Digest::of("abd")));
    }

    #[test]
    fn constant_time_eq_is_byte_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"", b"s3cret"));
    }
}
