//! ActualLRPs → OPI [`Instance`]s; `ActualLRPCrashedEvent` → [`CrashEvent`].

use std::collections::BTreeMap;

use opi::model::{CrashEvent, Instance, InstanceState, LrpId};

use crate::proto::{self, actual_lrp::Presence};

/// The OPI state of an ActualLRP state string.
pub fn state(state: &str) -> InstanceState {
    InstanceState::parse(state).unwrap_or(InstanceState::Unknown)
}

/// How much an ActualLRP counts when several share an index: the ordinary
/// one first; an evacuating one (moving off a draining cell) or a suspect
/// one (on a cell that stopped reporting) only when it is all there is.
fn rank(lrp: &proto::ActualLrp) -> u8 {
    match Presence::try_from(lrp.presence).unwrap_or(Presence::Ordinary) {
        Presence::Ordinary => 0,
        Presence::Suspect => 1,
        Presence::Evacuating => 2,
    }
}

/// The instances of an LRP with `desired` instances: one per index below
/// `desired`, sorted by index.
pub fn instances(actuals: &[proto::ActualLrp], desired: u32) -> Vec<Instance> {
    let mut best: BTreeMap<u32, &proto::ActualLrp> = BTreeMap::new();
    for lrp in actuals {
        let Some(index) = lrp
            .actual_lrp_key
            .as_ref()
            .and_then(|k| u32::try_from(k.index).ok())
            .filter(|i| *i < desired)
        else {
            continue;
        };
        match best.get(&index) {
            Some(current) if rank(current) <= rank(lrp) => {}
            _ => {
                best.insert(index, lrp);
            }
        }
    }
    best.into_iter()
        .map(|(index, lrp)| Instance {
            index,
            since: lrp.since,
            state: state(&lrp.state),
            placement_error: lrp.placement_error.clone(),
            crash_count: u32::try_from(lrp.crash_count).unwrap_or(0),
            crash_reason: lrp.crash_reason.clone(),
        })
        .collect()
}

/// The exit status in a cell's crash reason (`… Exited with status 3 …`), or
/// `-1` when it names none.
pub fn exit_status(crash_reason: &str) -> i32 {
    let lower = crash_reason.to_ascii_lowercase();
    let Some(at) = lower.find("status") else {
        return -1;
    };
    let rest = crash_reason[at + "status".len()..].trim_start_matches([' ', ':', '=']);
    let digits: String = rest
        .chars()
        .enumerate()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
        .map(|(_, c)| c)
        .collect();
    digits.parse().unwrap_or(-1)
}

/// The OPI crash event of a BBS crash event of LRP `id`.
pub fn crash(id: LrpId, event: &proto::ActualLrpCrashedEvent) -> CrashEvent {
    let key = event.actual_lrp_key.clone().unwrap_or_default();
    let instance = event.actual_lrp_instance_key.clone().unwrap_or_default();
    let status = exit_status(&event.crash_reason);
    CrashEvent {
        id,
        instance: instance.instance_guid,
        index: u32::try_from(key.index).unwrap_or(0),
        cell_id: instance.cell_id,
        reason: if event
            .crash_reason
            .to_ascii_lowercase()
            .contains("out of memory")
        {
            "OOMKilled".to_owned()
        } else {
            "CRASHED".to_owned()
        },
        exit_status: status,
        exit_description: event.crash_reason.clone(),
        crash_count: u32::try_from(event.crash_count).unwrap_or(0),
        crash_timestamp: event.since,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn actual(index: i32, state: &str, presence: Presence) -> proto::ActualLrp {
        proto::ActualLrp {
            actual_lrp_key: Some(proto::ActualLrpKey {
                process_guid: "pg".into(),
                index,
                domain: "cf-apps".into(),
            }),
            state: state.into(),
            presence: presence as i32,
            since: 42,
            ..proto::ActualLrp::default()
        }
    }

    #[test]
    fn maps_states_and_prefers_the_ordinary_instance() {
        let mut unclaimed = actual(2, "UNCLAIMED", Presence::Ordinary);
        unclaimed.placement_error = "insufficient resources: memory".into();
        let mut crashed = actual(3, "CRASHED", Presence::Ordinary);
        crashed.crash_count = 4;
        crashed.crash_reason = "APP/PROC/WEB: Exited with status 3".into();
        let got = instances(
            &[
                actual(1, "RUNNING", Presence::Evacuating),
                unclaimed,
                actual(0, "RUNNING", Presence::Ordinary),
                actual(1, "CLAIMED", Presence::Ordinary),
                crashed,
                actual(5, "RUNNING", Presence::Ordinary),
            ],
            4,
        );
        let summary: Vec<(u32, InstanceState)> = got.iter().map(|i| (i.index, i.state)).collect();
        assert_eq!(
            summary,
            [
                (0, InstanceState::Running),
                (1, InstanceState::Claimed),
                (2, InstanceState::Unclaimed),
                (3, InstanceState::Crashed),
            ]
        );
        assert_eq!(got[2].placement_error, "insufficient resources: memory");
        assert_eq!(got[0].since, 42);
        assert_eq!(
            (got[3].crash_count, got[3].crash_reason.as_str()),
            (4, "APP/PROC/WEB: Exited with status 3")
        );
        assert_eq!((got[0].crash_count, got[0].crash_reason.as_str()), (0, ""));
        assert_eq!(state("SOMETHING"), InstanceState::Unknown);
    }

    #[test]
    fn reads_exit_status_from_crash_reasons() {
        assert_eq!(exit_status("APP/PROC/WEB: Exited with status 3"), 3);
        assert_eq!(exit_status("Exited with status 137 (out of memory)"), 137);
        assert_eq!(exit_status("exit status: -1"), -1);
        assert_eq!(exit_status("failed to start"), -1);
    }

    #[test]
    fn crash_events_carry_what_cc_needs() {
        let event = proto::ActualLrpCrashedEvent {
            actual_lrp_key: Some(proto::ActualLrpKey {
                process_guid: "a-v".into(),
                index: 1,
                domain: "cf-apps".into(),
            }),
            actual_lrp_instance_key: Some(proto::ActualLrpInstanceKey {
                instance_guid: "ig".into(),
                cell_id: "cell-1".into(),
            }),
            crash_count: 2,
            crash_reason: "APP/PROC/WEB: Exited with status 137 (out of memory)".into(),
            since: 7,
        };
        let crash = crash(LrpId::new("a", "v"), &event);
        assert_eq!(
            (
                crash.index,
                crash.exit_status,
                crash.crash_count,
                crash.crash_timestamp
            ),
            (1, 137, 2, 7)
        );
        assert_eq!(crash.reason, "OOMKilled");
        assert_eq!(
            (crash.instance.as_str(), crash.cell_id.as_str()),
            ("ig", "cell-1")
        );
    }

    proptest! {
        /// Whatever the BBS reports, instances are sorted, distinct and below
        /// the desired count.
        #[test]
        fn instances_are_sorted_distinct_and_in_range(
            raw in proptest::collection::vec((-2i32..8, 0usize..4, 0i32..3), 0..20),
            desired in 0u32..6,
        ) {
            let states = ["RUNNING", "CLAIMED", "UNCLAIMED", "CRASHED"];
            let actuals: Vec<_> = raw
                .iter()
                .map(|(i, s, p)| actual(*i, states[*s], Presence::try_from(*p).unwrap_or(Presence::Ordinary)))
                .collect();
            let got = instances(&actuals, desired);
            prop_assert!(got.windows(2).all(|w| w[0].index < w[1].index));
            prop_assert!(got.iter().all(|i| i.index < desired));
        }
    }
}
