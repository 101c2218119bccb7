//! The freshness of domains, kept as the BBS keeps it.
//!
//! Cloud Controller upserts `cf-apps` and `cf-tasks` with a TTL of 120 s
//! after every successful sync (about every 30 s). A BBS uses a fresh domain
//! as leave to retire instances and actual LRPs nobody desires; Cube never
//! does that — a stale domain stops nothing here, because the scheduler holds
//! exactly what was desired — so the table only answers
//! `/v1/domains/list`, and a restart forgets it until CC's next sync (as a
//! BBS whose domains expired).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Domain → when it goes stale (`None`: never, a TTL of 0).
#[derive(Debug, Default)]
pub struct Domains {
    expiry: Mutex<BTreeMap<String, Option<Instant>>>,
}

impl Domains {
    /// An empty table: every domain is stale.
    pub fn new() -> Self {
        Self::default()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Option<Instant>>> {
        // Every change is one insert: a panic elsewhere cannot leave it half done.
        self.expiry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `domain` is fresh for `ttl` seconds from `now`; 0 = for ever.
    pub fn upsert(&self, domain: &str, ttl: u32, now: Instant) {
        let expiry = (ttl != 0).then(|| now + Duration::from_secs(u64::from(ttl)));
        self.table().insert(domain.to_owned(), expiry);
    }

    /// The domains fresh at `now`, sorted.
    pub fn fresh(&self, now: Instant) -> Vec<String> {
        self.table()
            .iter()
            .filter(|(_, expiry)| expiry.is_none_or(|at| at > now))
            .map(|(domain, _)| domain.clone())
            .collect()
    }

    /// Whether `domain` is fresh at `now`.
    pub fn is_fresh(&self, domain: &str, now: Instant) -> bool {
        self.table()
            .get(domain)
            .is_some_and(|expiry| expiry.is_none_or(|at| at > now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_is_fresh_for_its_ttl() {
        let domains = Domains::new();
        let now = Instant::now();
        assert!(!domains.is_fresh("cf-apps", now));
        domains.upsert("cf-apps", 120, now);
        assert!(domains.is_fresh("cf-apps", now + Duration::from_secs(119)));
        assert!(!domains.is_fresh("cf-apps", now + Duration::from_secs(120)));
        // CC's next sync bumps it again.
        domains.upsert("cf-apps", 120, now + Duration::from_secs(30));
        assert!(domains.is_fresh("cf-apps", now + Duration::from_secs(149)));
    }

    #[test]
    fn ttl_zero_never_expires() {
        let domains = Domains::new();
        let now = Instant::now();
        domains.upsert("forever", 0, now);
        domains.upsert("cf-tasks", 1, now);
        let much_later = now + Duration::from_secs(365 * 24 * 3600);
        assert_eq!(domains.fresh(much_later), vec!["forever".to_owned()]);
        assert_eq!(
            domains.fresh(now),
            vec!["cf-tasks".to_owned(), "forever".to_owned()]
        );
    }
}
