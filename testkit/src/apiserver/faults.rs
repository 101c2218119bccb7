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
        let rule = self.rules.iter_mut().find(|r| r.matches(method, path))?;
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
}
