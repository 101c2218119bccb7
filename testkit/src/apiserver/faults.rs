//! Failure injection: answer chosen requests with an error, slow every
//! request down, or make the apiserver unreachable.

use http::Method;

/// Requests to fail: those matching `method` (any when `None`) and whose
/// path contains `path_contains` (any when `None`), the next `times` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Only requests with this method.
    pub method: Option<Method>,
    /// Only requests whose path contains this.
    pub path_contains: Option<String>,
    /// The HTTP status to answer with.
    pub status: u16,
    /// The Status message.
    pub message: String,
    /// How many more matching requests fail.
    pub times: u32,
    /// Only every `every`-th matching request fails (1: each one); with many
    /// concurrent clients this is a failure *rate* spread over whatever runs.
    pub every: u32,
    /// Matching requests seen so far (for [`Fault::every`]).
    seen: u32,
}

impl Fault {
    /// The next `times` requests, whatever they are, fail with `status`.
    pub fn next(times: u32, status: u16) -> Self {
        Self {
            method: None,
            path_contains: None,
            status,
            message: format!("injected failure (HTTP {status})"),
            times,
            every: 1,
            seen: 0,
        }
    }

    /// Every `n`-th matching request fails, for as long as the rule is
    /// active (until [`Faults::clear`]): a failure rate of `1/n`.
    pub fn rate(n: u32, status: u16) -> Self {
        Self {
            every: n.max(1),
            ..Self::next(u32::MAX, status)
        }
    }

    /// Only requests with `method` whose path contains `path` (e.g.
    /// `Method::PATCH`, `"/statefulsets/"`).
    pub fn on(mut self, method: Method, path: &str) -> Self {
        self.method = Some(method);
        self.path_contains = Some(path.to_owned());
        self
    }

    /// With this Status message.
    pub fn message(mut self, message: &str) -> Self {
        self.message = message.to_owned();
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.times > 0
            && self.method.as_ref().is_none_or(|m| m == method)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

/// The active faults.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<Fault>,
}

impl Faults {
    /// Adds a rule.
    pub fn add(&mut self, fault: Fault) {
        self.rules.push(fault);
    }

    /// The fault that takes this request, if any (and counts it).
    pub fn take(&mut self, method: &Method, path: &str) -> Option<Fault> {
        let mut taken = None;
        for (at, rule) in self.rules.iter_mut().enumerate() {
            if rule.matches(method, path) {
                rule.seen = rule.seen.wrapping_add(1);
                if rule.seen % rule.every == 0 {
                    taken = Some(at);
                    break;
                }
            }
        }
        let rule = &mut self.rules[taken?];
        rule.times -= 1;
        let fault = rule.clone();
        self.rules.retain(|r| r.times > 0);
        Some(fault)
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_takes_only_matching_requests_and_only_so_often() {
        let mut faults = Faults::default();
        faults.add(Fault::next(2, 500).on(Method::PATCH, "/statefulsets/"));
        assert_eq!(
            faults.take(&Method::GET, "/apis/apps/v1/namespaces/a/statefulsets/x"),
            None
        );
        assert_eq!(
            faults.take(&Method::PATCH, "/api/v1/namespaces/a/secrets/x"),
            None
        );
        let path = "/apis/apps/v1/namespaces/a/statefulsets/x";
        assert!(faults.take(&Method::PATCH, path).is_some());
        assert!(faults.take(&Method::PATCH, path).is_some());
        assert_eq!(faults.take(&Method::PATCH, path), None);
    }

    #[test]
    fn a_rate_fails_every_nth_matching_request_until_cleared() {
        let mut faults = Faults::default();
        faults.add(Fault::rate(4, 500).on(Method::PATCH, "/statefulsets/"));
        faults.add(Fault::rate(2, 409));
        let set = "/apis/apps/v1/namespaces/a/statefulsets/x";
        let failed: Vec<Option<u16>> = (0..8)
            .map(|_| faults.take(&Method::PATCH, set).map(|f| f.status))
            .collect();
        // The first rule takes every 4th; the others fall through to the
        // second, which fails every 2nd of those it sees.
        assert_eq!(
            failed,
            [
                None,
                Some(409),
                None,
                Some(500),
                Some(409),
                None,
                Some(409),
                Some(500)
            ]
        );
        faults.clear();
        assert_eq!(faults.take(&Method::PATCH, set), None);
    }
}
