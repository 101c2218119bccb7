//! Kubernetes names and label values from Cloud Foundry names: pure functions.
//!
//! CF names are free text (unicode, uppercase, dots, 300 characters); guids are
//! `<uuid>-<uuid>` (73 characters) in places. Kubernetes wants DNS-1123 labels
//! (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, ≤ 63) for namespaces and StatefulSets and
//! label values of ≤ 63 characters. Everything here is deterministic, so the
//! same CF input always maps to the same Kubernetes name after a restart — no
//! local state is needed to find an object again.

use sha2::{Digest, Sha256};

/// Longest StatefulSet name: the controller adds `controller-revision-hash:
/// <name>-<10 chars>` to every pod, and that label value must fit in 63.
pub const MAX_STATEFULSET_NAME: usize = 52;

/// Longest DNS-1123 label (namespaces, Job names).
pub const MAX_LABEL: usize = 63;

/// Length of the hash suffix (hex characters).
const HASH_LEN: usize = 8;

/// The first [`HASH_LEN`] hex digits of SHA-256 of `key`: a stable short hash.
pub fn short_hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(HASH_LEN);
    hex
}

/// `input` lowercased with every run of characters outside `[a-z0-9]` turned
/// into one `-`, and no `-` at either end. May be empty.
fn squash(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// `base` cut so that `<base>-<hash>` fits in `max`, then the hash appended.
fn suffixed(base: &str, hash_key: &str, max: usize) -> String {
    let keep = max.saturating_sub(HASH_LEN + 1);
    let mut cut: String = base.chars().take(keep).collect();
    while cut.ends_with('-') {
        cut.pop();
    }
    let hash = short_hash(hash_key);
    if cut.is_empty() {
        // Never start with the hash alone: keep names readable as CF objects.
        format!("cf-{hash}")
    } else {
        format!("{cut}-{hash}")
    }
}

/// A DNS-1123 label of at most `max` characters (≥ 12) for the CF name
/// `input`. The hash of `hash_key` is appended when `input` had to be cut or
/// was empty after sanitising; otherwise the sanitised name is returned as is.
pub fn dns_label(input: &str, hash_key: &str, max: usize) -> String {
    let squashed = squash(input);
    if squashed.is_empty() || squashed.len() > max {
        suffixed(&squashed, hash_key, max)
    } else {
        squashed
    }
}

/// The same name with a hash of `hash_key` appended (cut to `max`): used when
/// another owner already holds the plain name.
pub fn disambiguated(input: &str, hash_key: &str, max: usize) -> String {
    suffixed(&squash(input), hash_key, max)
}

/// The StatefulSet name of a process: the app name for `web`,
/// `<app>-<process_type>` otherwise, sanitised to ≤ 52 characters. The hash
/// key is the process guid, so two processes never share a cut name.
pub fn statefulset_name(app_name: &str, process_type: &str, process_guid: &str) -> String {
    dns_label(
        &statefulset_base(app_name, process_type),
        process_guid,
        MAX_STATEFULSET_NAME,
    )
}

/// The StatefulSet name to use when [`statefulset_name`] belongs to another
/// process guid.
pub fn statefulset_name_on_collision(
    app_name: &str,
    process_type: &str,
    process_guid: &str,
) -> String {
    disambiguated(
        &statefulset_base(app_name, process_type),
        process_guid,
        MAX_STATEFULSET_NAME,
    )
}

fn statefulset_base(app_name: &str, process_type: &str) -> String {
    if process_type.is_empty() || process_type == "web" {
        app_name.to_owned()
    } else {
        format!("{app_name}-{process_type}")
    }
}

/// The Service name of a process: its StatefulSet's name, which Services
/// accept unless it starts with a digit (Service names are DNS-1035 labels);
/// then `cf-<name>-<hash of the process guid>`, hashed so that no app called
/// `cf-<name>` can hold it.
pub fn service_name(statefulset_name: &str, process_guid: &str) -> String {
    if statefulset_name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase())
    {
        statefulset_name.to_owned()
    } else {
        suffixed(&format!("cf-{statefulset_name}"), process_guid, MAX_LABEL)
    }
}

/// The namespace of a space: `<org>-<space>`, ≤ 63; the hash key is the space
/// guid.
pub fn namespace_name(org_name: &str, space_name: &str, space_guid: &str) -> String {
    dns_label(&format!("{org_name}-{space_name}"), space_guid, MAX_LABEL)
}

/// The namespace to use when [`namespace_name`] belongs to another space.
pub fn namespace_name_on_collision(org_name: &str, space_name: &str, space_guid: &str) -> String {
    disambiguated(&format!("{org_name}-{space_name}"), space_guid, MAX_LABEL)
}

/// The Job name of a task: `<app>-<task name>-<hash of task guid>`, ≤ 63 (the
/// Job controller copies it into the `job-name` label). Always hashed: task
/// names repeat, guids do not.
pub fn job_name(app_name: &str, task_name: &str, task_guid: &str) -> String {
    let base = squash(&format!("{app_name}-{task_name}"));
    suffixed(&base, task_guid, MAX_LABEL)
}

/// Whether `value` is a valid label value: ≤ 63 characters of
/// `[A-Za-z0-9_.-]`, starting and ending alphanumeric (or empty).
pub fn is_label_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let bytes = value.as_bytes();
    value.len() <= MAX_LABEL
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `value` itself when it is a valid label value, else a sanitised, hashed
/// form. Selecting by the result finds every object labelled from the same
/// `value`; the full value lives in an annotation, which callers compare to
/// rule out hash collisions.
pub fn label_value(value: &str) -> String {
    if is_label_value(value) {
        value.to_owned()
    } else {
        disambiguated(value, value, MAX_LABEL)
    }
}

/// Whether `name` is a DNS-1123 label of at most `max` characters.
pub fn is_dns_label(name: &str, max: usize) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= max
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// The ordinal of a StatefulSet pod from its name (`myapp-3` → 3).
pub fn pod_ordinal(pod_name: &str) -> Option<u32> {
    pod_name.rsplit_once('-')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_names_stay_as_they_are() {
        assert_eq!(statefulset_name("myapp", "web", "g1"), "myapp");
        assert_eq!(statefulset_name("myapp", "worker", "g1"), "myapp-worker");
        assert_eq!(namespace_name("acme", "dev", "s1"), "acme-dev");
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(statefulset_name("My_App.v2", "web", "g"), "my-app-v2");
        assert_eq!(statefulset_name("--x--", "web", "g"), "x");
        assert_eq!(statefulset_name("9lives", "web", "g"), "9lives");
        assert_eq!(namespace_name("ACME Corp", "Dév", "s"), "acme-corp-d-v");
    }

    #[test]
    fn cut_names_end_with_the_guid_hash() {
        let long = "a".repeat(300);
        let name = statefulset_name(&long, "web", "guid-1");
        assert_eq!(name.len(), MAX_STATEFULSET_NAME);
        assert!(name.ends_with(&short_hash("guid-1")), "{name}");
        assert_ne!(name, statefulset_name(&long, "web", "guid-2"));
    }

    #[test]
    fn names_without_ascii_get_a_hash() {
        let name = statefulset_name("日本語", "web", "guid-1");
        assert_eq!(name, format!("cf-{}", short_hash("guid-1")));
    }

    #[test]
    fn collision_names_differ_from_the_plain_name() {
        let plain = statefulset_name("myapp", "web", "g2");
        let other = statefulset_name_on_collision("myapp", "web", "g2");
        assert_eq!(other, format!("myapp-{}", short_hash("g2")));
        assert_ne!(plain, other);
    }

    #[test]
    fn cc_process_guids_become_valid_label_values() {
        let guid = "0b7e9ac8-0e4e-4b5a-8f3c-1d2e3f4a5b6c-9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
        assert_eq!(guid.len(), 73);
        let value = label_value(guid);
        assert!(is_label_value(&value), "{value}");
        assert_eq!(value, label_value(guid));
        assert_eq!(label_value("plain-guid"), "plain-guid");
    }

    #[test]
    fn service_names_start_with_a_letter() {
        assert_eq!(service_name("myapp", "g"), "myapp");
        assert_eq!(
            service_name("9lives", "g"),
            format!("cf-9lives-{}", short_hash("g"))
        );
    }

    #[test]
    fn job_names_are_always_hashed() {
        let name = job_name("myapp", "migrate", "task-1");
        assert_eq!(name, format!("myapp-migrate-{}", short_hash("task-1")));
    }

    #[test]
    fn ordinals_come_from_pod_names() {
        assert_eq!(pod_ordinal("myapp-12"), Some(12));
        assert_eq!(pod_ordinal("my-app-0"), Some(0));
        assert_eq!(pod_ordinal("myapp"), None);
    }

    proptest! {
        #[test]
        fn statefulset_names_are_valid_stable_and_short(
            app in "\\PC{0,300}",
            process_type in prop::sample::select(vec!["web", "worker", "Clock.Tick", ""]),
            guid in "[a-f0-9-]{1,73}",
        ) {
            let name = statefulset_name(&app, process_type, &guid);
            prop_assert!(is_dns_label(&name, MAX_STATEFULSET_NAME), "{name:?}");
            prop_assert_eq!(&name, &statefulset_name(&app, process_type, &guid));
            let other = statefulset_name_on_collision(&app, process_type, &guid);
            prop_assert!(is_dns_label(&other, MAX_STATEFULSET_NAME), "{other:?}");
        }

        #[test]
        fn service_names_are_dns_1035_labels(app in "\\PC{0,300}", guid in "[a-f0-9-]{1,73}") {
            let name = service_name(&statefulset_name(&app, "web", &guid), &guid);
            prop_assert!(is_dns_label(&name, MAX_LABEL), "{name:?}");
            prop_assert!(name.starts_with(|c: char| c.is_ascii_lowercase()), "{name:?}");
        }

        #[test]
        fn namespaces_and_jobs_are_valid_labels(
            org in "\\PC{0,300}", space in "\\PC{0,300}", guid in "[a-z0-9-]{1,73}",
        ) {
            prop_assert!(is_dns_label(&namespace_name(&org, &space, &guid), MAX_LABEL));
            prop_assert!(is_dns_label(&namespace_name_on_collision(&org, &space, &guid), MAX_LABEL));
            prop_assert!(is_dns_label(&job_name(&org, &space, &guid), MAX_LABEL));
        }

        #[test]
        fn valid_short_names_are_kept(name in "[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?") {
            prop_assume!(!name.contains("--"));
            prop_assert_eq!(statefulset_name(&name, "web", "g"), name);
        }

        #[test]
        fn label_values_are_valid(value in "\\PC{0,100}") {
            let label = label_value(&value);
            prop_assert!(is_label_value(&label), "{label:?}");
        }

        #[test]
        fn cut_names_of_different_guids_differ(
            app in "[a-z]{60,80}", g1 in "[a-f0-9]{8}", g2 in "[a-f0-9]{8}",
        ) {
            prop_assume!(g1 != g2);
            prop_assert_ne!(statefulset_name(&app, "web", &g1), statefulset_name(&app, "web", &g2));
        }
    }
}
