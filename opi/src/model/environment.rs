//! [`Environment`]: an LRP's environment variables, whose values are secrets
//! (CC puts service credentials in `VCAP_SERVICES`): its `Debug` prints the
//! names only, so no log line or panic message can carry a value.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// What `Debug` prints instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// Environment variables by name. Read and change it as the map it
/// dereferences to; only `Debug` differs. On the wire it is the plain JSON
/// object.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Environment(BTreeMap<String, String>);

impl Environment {
    /// The variables of `map`.
    pub fn new(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }

    /// The plain map, values and all.
    pub fn into_inner(self) -> BTreeMap<String, String> {
        self.0
    }
}

impl Deref for Environment {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Environment {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<BTreeMap<String, String>> for Environment {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl FromIterator<(String, String)> for Environment {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(items: I) -> Self {
        Self(items.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Environment {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|name| (name, REDACTED)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EnvironmentVariable;

    #[test]
    fn debug_shows_names_never_values() {
        let environment: Environment = [(
            "DATABASE_URL".to_owned(),
            "postgres://u:hunter2@db".to_owned(),
        )]
        .into_iter()
        .collect();
        let shown = format!("{environment:?} {environment:#?}");
        assert!(shown.contains("DATABASE_URL"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(environment["DATABASE_URL"], "postgres://u:hunter2@db");
        let variable = EnvironmentVariable {
            name: "TOKEN".into(),
            value: "hunter2".into(),
        };
        let shown = format!("{variable:?}");
        assert!(
            shown.contains("TOKEN") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
