//! Authentication: HTTP Basic against a users file, bearer tokens (static ones
//! from the same file, or short-lived ones issued by `GET /v2/token`), and
//! optional anonymous pull.
//!
//! The users file has one entry per line (`#` starts a comment):
//!
//! ```text
//! user  <name> sha256:<hex sha256 of the password> [push|pull]
//! token <name> sha256:<hex sha256 of the token>    [push|pull]
//! ```
//!
//! `push` (the default) may pull and push; `pull` may only pull — give
//! kubelets' image pull secrets `pull` credentials.
//!
//! Cube's shared access settings ([`cube_runtime::access`], `--auth-token-file`
//! and `--tls-client-ca` of every service) apply here too, see
//! [`Auth::with_shared`]: any of the shared tokens is accepted as a bearer
//! token or as the password of HTTP Basic with any user name (so a kubelet's
//! imagePullSecret can carry it), and a verified client certificate may push
//! and pull.
//!
//! Only hashes are stored, so the file can be read by the registry without
//! holding any secret. Secrets should be long random strings: the hash is a
//! plain SHA-256, not a password-stretching function.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use cube_runtime::access::{PeerCertificate, Policy};

use crate::Error;
use crate::digest::Digest;

/// How long an issued token is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read (GET, HEAD).
    Pull,
    /// Write (POST, PUT, PATCH, DELETE).
    Push,
}

/// Who a request authenticated as, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User or token name from the users file.
    pub name: String,
    /// Whether they may push (otherwise only pull).
    pub may_push: bool,
}

/// The registry's credentials and policy.
#[derive(Default)]
pub struct Auth {
    enabled: bool,
    anonymous_pull: bool,
    /// User name → (password hash, may push).
    users: HashMap<String, (String, bool)>,
    /// Token hash → identity.
    tokens: HashMap<String, Identity>,
    /// Issued token hash → (identity, expiry).
    issued: Mutex<HashMap<String, (Identity, Instant)>>,
    /// Cube's shared tokens and client-certificate policy.
    shared: Option<Arc<Policy>>,
}

fn hash(secret: &str) -> String {
    Digest::of(secret.as_bytes()).hex().to_owned()
}

/// Compares without an early exit, so timing does not reveal the prefix.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Auth {
    /// Everyone may do everything.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Reads a users file.
    pub fn from_file(path: &Path, anonymous_pull: bool) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("auth file {}: {e}", path.display())))?;
        Self::parse(&text, anonymous_pull)
            .map_err(|e| Error::Config(format!("auth file {}: {e}", path.display())))
    }

    /// Parses users-file text.
    pub fn parse(text: &str, anonymous_pull: bool) -> Result<Self, String> {
        let mut auth = Self {
            enabled: true,
            anonymous_pull,
            ..Self::default()
        };
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at = |why: String| format!("line {}: {why}", number + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (kind, name, secret, access) = match fields[..] {
                [kind, name, secret] => (kind, name, secret, "push"),
                [kind, name, secret, access] => (kind, name, secret, access),
                _ => {
                    return Err(at(
                        "expected `user|token <name> sha256:<hex> [push|pull]`".into()
                    ));
                }
            };
            let may_push = match access {
                "push" => true,
                "pull" => false,
                other => return Err(at(format!("access must be push or pull, not {other:?}"))),
            };
            let digest: Digest = secret.parse().map_err(|e| at(format!("{e}")))?;
            let hex = digest.hex().to_owned();
            match kind {
                "user" => {
                    auth.users.insert(name.to_owned(), (hex, may_push));
                }
                "token" => {
                    let identity = Identity {
                        name: name.to_owned(),
                        may_push,
                    };
                    auth.tokens.insert(hex, identity);
                }
                other => return Err(at(format!("unknown entry kind {other:?}"))),
            }
        }
        Ok(auth)
    }

    /// Also accepts Cube's shared credentials (when `policy` requires any,
    /// credentials become required).
    pub fn with_shared(mut self, policy: Arc<Policy>) -> Self {
        if policy.required() {
            self.enabled = true;
            self.shared = Some(policy);
        }
        self
    }

    /// [`Self::check`] for a request whose connection presented the verified
    /// client certificate `peer`: a certificate the shared policy accepts may
    /// push and pull; one it refuses is `Denied` (403).
    pub fn check_request(
        &self,
        authorization: Option<&str>,
        peer: Option<&PeerCertificate>,
        action: Action,
    ) -> Result<Option<Identity>, Error> {
        match (authorization, peer, &self.shared) {
            (None, Some(peer), Some(shared)) => match shared.accepts_certificate(peer) {
                Ok(()) => Ok(Some(Identity {
                    name: "client certificate".into(),
                    may_push: true,
                })),
                Err(refusal) => Err(Error::Denied(refusal.message())),
            },
            _ => self.check(authorization, action),
        }
    }

    /// Whether credentials are required at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Who sent `authorization` (the `Authorization` header), if allowed to do
    /// `action`. `Ok(None)` means anonymous and allowed. Unknown credentials
    /// are `Unauthorized`; a pull-only identity pushing is `Denied`.
    pub fn check(
        &self,
        authorization: Option<&str>,
        action: Action,
    ) -> Result<Option<Identity>, Error> {
        if !self.enabled {
            return Ok(None);
        }
        let identity = match authorization {
            None if self.anonymous_pull && action == Action::Pull => return Ok(None),
            None => return Err(Error::Unauthorized),
            Some(header) => self.identify(header).ok_or(Error::Unauthorized)?,
        };
        if action == Action::Push && !identity.may_push {
            return Err(Error::Denied(format!("{} may only pull", identity.name)));
        }
        Ok(Some(identity))
    }

    fn identify(&self, header: &str) -> Option<Identity> {
        let (scheme, value) = header.trim().split_once(' ')?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value)
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, password) = decoded.split_once(':')?;
            if self
                .shared
                .as_ref()
                .is_some_and(|s| s.accepts_token(password))
            {
                return Some(Identity {
                    name: user.to_owned(),
                    may_push: true,
                });
            }
            let (expected, may_push) = self.users.get(user)?;
            same(expected, &hash(password)).then(|| Identity {
                name: user.to_owned(),
                may_push: *may_push,
            })
        } else if scheme.eq_ignore_ascii_case("bearer") {
            if self.shared.as_ref().is_some_and(|s| s.accepts_token(value)) {
                return Some(Identity {
                    name: "cube".into(),
                    may_push: true,
                });
            }
            let hashed = hash(value);
            if let Some(identity) = self.tokens.get(&hashed) {
                return Some(identity.clone());
            }
            let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            issued.retain(|_, (_, expiry)| *expiry > now);
            issued.get(&hashed).map(|(identity, _)| identity.clone())
        } else {
            None
        }
    }

    /// Issues a bearer token, with the holder's rights, for valid Basic
    /// credentials. With anonymous pull, anyone gets a (pull-only, and not
    /// needed) token, which keeps token-flow clients happy.
    pub fn issue_token(&self, authorization: Option<&str>) -> Result<(String, Duration), Error> {
        let token = crate::store::fs::random_id() + &crate::store::fs::random_id();
        match authorization {
            Some(header) if self.enabled => {
                let identity = self.identify(header).ok_or(Error::Unauthorized)?;
                let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
                issued.insert(hash(&token), (identity, Instant::now() + TOKEN_TTL));
            }
            None if self.enabled && !self.anonymous_pull => return Err(Error::Unauthorized),
            _ => {}
        }
        Ok((token, TOKEN_TTL))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    fn file() -> String {
        format!(
            "# users\nuser alice sha256:{}\ntoken sink sha256:{}  # the Sink\n",
            hash("wonderland"),
            hash("s3cret-token")
        )
    }

    #[test]
    fn basic_and_static_bearer() {
        let auth = Auth::parse(&file(), false).unwrap();
        assert_eq!(
            auth.check(Some(&basic("alice", "wonderland")), Action::Push)
                .unwrap()
                .map(|i| i.name),
            Some("alice".into())
        );
        assert_eq!(
            auth.check(Some("Bearer s3cret-token"), Action::Push)
                .unwrap()
                .map(|i| i.name),
            Some("sink".into())
        );
        for bad in [
            basic("alice", "wrong"),
            basic("bob", "wonderland"),
            "Bearer nope".into(),
            "Digest x".into(),
        ] {
            assert!(
                matches!(
                    auth.check(Some(&bad), Action::Pull),
                    Err(Error::Unauthorized)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            auth.check(None, Action::Pull),
            Err(Error::Unauthorized)
        ));
    }

    #[test]
    fn anonymous_pull_only_pulls() {
        let auth = Auth::parse(&file(), true).unwrap();
        assert_eq!(auth.check(None, Action::Pull).unwrap(), None);
        assert!(matches!(
            auth.check(None, Action::Push),
            Err(Error::Unauthorized)
        ));
    }

    #[test]
    fn issued_tokens_work_until_they_expire() {
        let auth = Auth::parse(&file(), false).unwrap();
        assert!(matches!(auth.issue_token(None), Err(Error::Unauthorized)));
        assert!(matches!(
            auth.issue_token(Some(&basic("alice", "x"))),
            Err(Error::Unauthorized)
        ));
        let (token, ttl) = auth
            .issue_token(Some(&basic("alice", "wonderland")))
            .unwrap();
        assert_eq!(ttl, TOKEN_TTL);
        let header = format!("Bearer {token}");
        assert_eq!(
            auth.check(Some(&header), Action::Push)
                .unwrap()
                .map(|i| i.name),
            Some("alice".into())
        );
        // Expire it by hand: expiry is a deadline, not a sleep.
        for (_, expiry) in auth.issued.lock().unwrap().values_mut() {
            *expiry = Instant::now() - Duration::from_secs(1);
        }
        assert!(matches!(
            auth.check(Some(&header), Action::Push),
            Err(Error::Unauthorized)
        ));
    }

    #[test]
    fn pull_only_identities_cannot_push() {
        let text = format!(
            "user kubelet sha256:{} pull\ntoken reader sha256:{} pull\n",
            hash("pw"),
            hash("read-token")
        );
        let auth = Auth::parse(&text, false).unwrap();
        for header in [basic("kubelet", "pw"), "Bearer read-token".to_owned()] {
            let who = auth.check(Some(&header), Action::Pull).unwrap().unwrap();
            assert!(!who.may_push);
            assert!(matches!(
                auth.check(Some(&header), Action::Push),
                Err(Error::Denied(_))
            ));
        }
        // Issued tokens carry the holder's rights.
        let (token, _) = auth.issue_token(Some(&basic("kubelet", "pw"))).unwrap();
        let bearer = format!("Bearer {token}");
        assert!(matches!(
            auth.check(Some(&bearer), Action::Push),
            Err(Error::Denied(_))
        ));
        assert!(auth.check(Some(&bearer), Action::Pull).is_ok());
    }

    #[test]
    fn bad_files_name_the_line() {
        let unknown_kind = format!("admin x sha256:{}", hash("x"));
        let bad_access = format!("user alice sha256:{} admin", hash("x"));
        for (text, expected) in [
            ("user alice", "line 1"),
            (bad_access.as_str(), "access must be push or pull"),
            ("\nuser alice md5:abc", "line 2"),
            (unknown_kind.as_str(), "unknown entry kind"),
        ] {
            let error = Auth::parse(text, false).err().unwrap();
            assert!(error.contains(expected), "{error}");
        }
        assert!(!Auth::disabled().enabled());
        assert_eq!(Auth::disabled().check(None, Action::Push).unwrap(), None);
    }
}
