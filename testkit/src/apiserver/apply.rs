//! Server-side apply, simplified but honest: a manager's apply sets every
//! field it names, and removes the fields it applied last time but no longer
//! names; fields set by others stay. Maps merge key by key; lists and scalars
//! are atomic (the applier's list replaces the whole list). Without `force`,
//! applying a different value to a field another manager applied is a
//! conflict, as in Kubernetes.

use serde_json::{Map, Value};

/// Removes from `base` the fields of `previous` that `applied` no longer has.
fn remove_stale(base: &mut Value, previous: &Value, applied: &Value) {
    let (Some(base), Some(previous)) = (base.as_object_mut(), previous.as_object()) else {
        return;
    };
    let empty = Map::new();
    let applied = applied.as_object().unwrap_or(&empty);
    for (key, old) in previous {
        match applied.get(key) {
            None => {
                base.remove(key);
            }
            Some(new) if old.is_object() && new.is_object() => {
                if let Some(child) = base.get_mut(key) {
                    remove_stale(child, old, new);
                }
            }
            Some(_) => {}
        }
    }
}

/// Sets every field of `applied` in `base` (maps recursively).
fn merge(base: &mut Value, applied: &Value) {
    match (base.as_object_mut(), applied.as_object()) {
        (Some(base), Some(applied)) => {
            for (key, value) in applied {
                if value.is_null() {
                    base.remove(key);
                    continue;
                }
                match base.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value);
                    }
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        _ => *base = applied.clone(),
    }
}

/// The object after `applied` by a manager whose last apply was `previous`.
pub fn apply(current: &Value, previous: Option<&Value>, applied: &Value) -> Value {
    let mut result = current.clone();
    if let Some(previous) = previous {
        remove_stale(&mut result, previous, applied);
    }
    merge(&mut result, applied);
    result
}

/// Leaf paths (`.spec.replicas`) of `value` with their values; lists are leaves.
fn leaves(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match value.as_object() {
        Some(map) => {
            for (k, v) in map {
                leaves(v, &format!("{prefix}.{k}"), out);
            }
        }
        None => out.push((prefix.to_owned(), value.clone())),
    }
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').skip(1).try_fold(value, |v, k| v.get(k))
}

/// Paths where `applied` sets a different value than another manager's
/// last apply `other` did.
pub fn conflicts(applied: &Value, other: &Value) -> Vec<String> {
    let mut paths = Vec::new();
    leaves(applied, "", &mut paths);
    paths
        .into_iter()
        .filter(|(path, value)| lookup(other, path).is_some_and(|theirs| theirs != value))
        .map(|(path, _)| path)
        .filter(|path| path != ".apiVersion" && path != ".kind")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_dropped_from_an_apply_are_removed_but_others_stay() {
        let current = json!({"metadata": {"labels": {"a": "1", "b": "2", "theirs": "x"}}, "spec": {"replicas": 3}});
        let previous =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 3}});
        let applied = json!({"metadata": {"labels": {"a": "9"}}, "spec": {"replicas": 3}});
        let got = apply(&current, Some(&previous), &applied);
        assert_eq!(
            got,
            json!({"metadata": {"labels": {"a": "9", "theirs": "x"}}, "spec": {"replicas": 3}})
        );
    }

    #[test]
    fn lists_are_replaced_whole() {
        let current = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let applied = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(apply(&current, None, &applied), applied);
    }

    #[test]
    fn conflicting_values_are_found() {
        let other = json!({"spec": {"replicas": 3, "x": "same"}});
        let applied = json!({"apiVersion": "v1", "spec": {"replicas": 5, "x": "same"}});
        assert_eq!(
            conflicts(&applied, &other),
            vec![".spec.replicas".to_owned()]
        );
    }
}
