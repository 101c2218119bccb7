//! The pure core of a cycle: what CC desires vs. what OPI runs → a [`Plan`].

use std::collections::{BTreeMap, BTreeSet};

/// One app as CC's fingerprint walk reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcApp {
    /// `<app_guid>-<version>`.
    pub process_guid: String,
    /// CC's etag (a float-like string, compared as a string).
    pub etag: String,
}

/// One LRP as OPI's `GET /apps` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpiLrp {
    /// `<guid>-<version>`.
    pub process_guid: String,
    /// CC process guid.
    pub guid: String,
    /// CC process version.
    pub version: String,
    /// The annotation of its last desire or update (the etag it was made from).
    pub annotation: String,
}

/// What a cycle must do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In CC, not in OPI: fetch and desire.
    pub desire: Vec<String>,
    /// In both, etag ≠ annotation: fetch and update (or re-desire).
    pub changed: Vec<String>,
    /// In OPI, not in CC: stop (a deleted app, or an old version).
    pub stop: Vec<OpiLrp>,
}

impl Plan {
    /// Whether nothing needs doing.
    pub fn is_empty(&self) -> bool {
        self.desire.is_empty() && self.changed.is_empty() && self.stop.is_empty()
    }

    /// Guids whose full record must be fetched.
    pub fn to_fetch(&self) -> Vec<String> {
        self.desire.iter().chain(&self.changed).cloned().collect()
    }
}

/// Compares CC's desired apps with OPI's LRPs. Output lists are sorted, and
/// each process guid appears in at most one of them. A process guid listed
/// twice by CC counts once (the last etag wins).
pub fn diff(cc: &[CcApp], opi: &[OpiLrp]) -> Plan {
    let desired: BTreeMap<&str, &str> = cc
        .iter()
        .map(|app| (app.process_guid.as_str(), app.etag.as_str()))
        .collect();
    let running: BTreeMap<&str, &OpiLrp> =
        opi.iter().map(|l| (l.process_guid.as_str(), l)).collect();
    let mut plan = Plan::default();
    for (process_guid, etag) in &desired {
        match running.get(process_guid) {
            None => plan.desire.push((*process_guid).to_owned()),
            Some(lrp) if lrp.annotation != *etag => plan.changed.push((*process_guid).to_owned()),
            Some(_) => {}
        }
    }
    let mut stopped = BTreeSet::new();
    for (process_guid, lrp) in &running {
        if !desired.contains_key(process_guid) && stopped.insert(*process_guid) {
            plan.stop.push((*lrp).clone());
        }
    }
    plan
}

/// Whether stopping `stops` of `total` LRPs is too many to do without an
/// explicit `--allow-mass-stop`: more than `max_fraction` of them, and more
/// than `min_count` (so deleting the last few apps of a small installation
/// is not blocked).
pub fn is_mass_stop(stops: usize, total: usize, max_fraction: f64, min_count: usize) -> bool {
    if stops <= min_count || total == 0 {
        return false;
    }
    (stops as f64) > max_fraction * (total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cc(pg: &str, etag: &str) -> CcApp {
        CcApp {
            process_guid: pg.into(),
            etag: etag.into(),
        }
    }

    fn lrp(guid: &str, version: &str, annotation: &str) -> OpiLrp {
        OpiLrp {
            process_guid: format!("{guid}-{version}"),
            guid: guid.into(),
            version: version.into(),
            annotation: annotation.into(),
        }
    }

    #[test]
    fn new_changed_unchanged_and_gone() {
        let plan = diff(
            &[cc("a-1", "1.0"), cc("b-1", "2.5"), cc("c-2", "3.0")],
            &[
                lrp("b", "1", "2.0"),
                lrp("c", "1", "3.0"),
                lrp("d", "1", "4.0"),
                lrp("a", "1", "1.0"),
            ],
        );
        assert_eq!(plan.desire, vec!["c-2"]);
        assert_eq!(plan.changed, vec!["b-1"]);
        assert_eq!(plan.stop, vec![lrp("c", "1", "3.0"), lrp("d", "1", "4.0")]);
    }

    #[test]
    fn etags_compare_as_strings() {
        // "1.10" and "1.1" are equal floats but different etags.
        let plan = diff(&[cc("a-1", "1.10")], &[lrp("a", "1", "1.1")]);
        assert_eq!(plan.changed, vec!["a-1"]);
    }

    #[test]
    fn mass_stop_guard() {
        assert!(
            !is_mass_stop(1, 1, 0.5, 10),
            "deleting the only app is fine"
        );
        assert!(!is_mass_stop(10, 12, 0.5, 10));
        assert!(is_mass_stop(11, 12, 0.5, 10));
        assert!(!is_mass_stop(11, 30, 0.5, 10));
        assert!(is_mass_stop(5000, 10_000, 0.4, 10));
        assert!(!is_mass_stop(0, 0, 0.5, 0));
    }

    fn arb_state() -> impl Strategy<Value = (Vec<CcApp>, Vec<OpiLrp>)> {
        let keys =
            proptest::collection::btree_map(0u8..40, (0u8..3, any::<bool>(), any::<bool>()), 0..40);
        keys.prop_map(|m| {
            let mut cc_apps = Vec::new();
            let mut lrps = Vec::new();
            for (k, (etag, in_cc, in_opi)) in m {
                if in_cc {
                    cc_apps.push(cc(&format!("g{k}-v"), &format!("{etag}.0")));
                }
                if in_opi {
                    lrps.push(lrp(&format!("g{k}"), "v", &format!("{}.0", (etag + k) % 3)));
                }
            }
            (cc_apps, lrps)
        })
    }

    proptest! {
        /// Applying the plan makes OPI equal to CC, and a second diff is empty.
        #[test]
        fn applying_the_plan_converges((cc_apps, lrps) in arb_state()) {
            let plan = diff(&cc_apps, &lrps);
            let mut after: BTreeMap<String, OpiLrp> =
                lrps.iter().map(|l| (l.process_guid.clone(), l.clone())).collect();
            for stop in &plan.stop {
                prop_assert!(after.remove(&stop.process_guid).is_some());
            }
            for app in &cc_apps {
                if plan.desire.contains(&app.process_guid) || plan.changed.contains(&app.process_guid) {
                    let (guid, version) = app.process_guid.rsplit_once('-').unwrap();
                    after.insert(app.process_guid.clone(), lrp(guid, version, &app.etag));
                }
            }
            let after: Vec<OpiLrp> = after.into_values().collect();
            prop_assert!(diff(&cc_apps, &after).is_empty());
            // Nothing unchanged is touched.
            let touched = plan.desire.len() + plan.changed.len() + plan.stop.len();
            let unchanged = cc_apps.iter().filter(|a| lrps.iter().any(|l| l.process_guid == a.process_guid && l.annotation == a.etag)).count();
            prop_assert_eq!(touched + unchanged, cc_apps.len() + plan.stop.len());
        }
    }
}
