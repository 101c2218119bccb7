//! ActualLRPs: a backend's instances of an LRP, and the endpoints of the
//! ready ones, in the BBS's words (bbs-spec §5 lists what CC reads).
//!
//! Shaped as the BBS shapes them: key, instance key and net info are always
//! present (the BBS's are not nullable, and CC reads through them), filled
//! only where the BBS fills them — an instance key for a `CLAIMED` or
//! `RUNNING` instance, net info for a `RUNNING` one whose endpoints are
//! known. Presence is always `ORDINARY` (no evacuation on Cube); crash count
//! and reason are the backend's (`0`/`""` for an instance that never crashed).

use bbs_models::actual_lrp::{OptionalRoutable, Presence};
use bbs_models::actual_lrp_net_info::PreferredAddress;
use bbs_models::{
    ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, ModificationTag, PortMapping,
};
use opi::model::{DesiredLrp, Instance, InstanceState};
use opi::routing::Endpoint;

/// The cell every Cube instance is on, as far as the BBS API tells.
pub const CELL_ID: &str = "cube";

/// One ActualLRP per instance of `lrp`, with net info from `endpoints`
/// (those of other LRPs or indices are ignored).
pub fn actual_lrps(
    lrp: &DesiredLrp,
    instances: &[Instance],
    endpoints: &[Endpoint],
) -> Vec<ActualLrp> {
    let process_guid = lrp.id.process_guid();
    let domain = super::lrp::domain(lrp);
    instances
        .iter()
        .map(|instance| {
            let own: Vec<&Endpoint> = endpoints
                .iter()
                .filter(|e| e.process_guid == process_guid && e.index == instance.index)
                .collect();
            actual_lrp(&process_guid, &domain, instance, &own)
        })
        .collect()
}

fn actual_lrp(
    process_guid: &str,
    domain: &str,
    instance: &Instance,
    endpoints: &[&Endpoint],
) -> ActualLrp {
    let placed = matches!(
        instance.state,
        InstanceState::Claimed | InstanceState::Running
    );
    let running = instance.state == InstanceState::Running;
    let instance_key = if placed {
        ActualLrpInstanceKey {
            instance_guid: endpoints.first().map_or_else(
                || instance_guid(process_guid, instance.index),
                |e| e.instance_guid.clone(),
            ),
            cell_id: CELL_ID.to_owned(),
        }
    } else {
        ActualLrpInstanceKey::default()
    };
    ActualLrp {
        actual_lrp_key: Some(ActualLrpKey {
            process_guid: process_guid.to_owned(),
            index: i32::try_from(instance.index).unwrap_or(i32::MAX),
            domain: domain.to_owned(),
        }),
        actual_lrp_instance_key: Some(instance_key),
        actual_lrp_net_info: Some(if running {
            net_info(endpoints)
        } else {
            ActualLrpNetInfo::default()
        }),
        crash_count: i32::try_from(instance.crash_count).unwrap_or(i32::MAX),
        crash_reason: instance.crash_reason.clone(),
        state: instance.state.as_str().to_owned(),
        placement_error: instance.placement_error.clone(),
        since: instance.since,
        modification_tag: Some(ModificationTag::default()),
        presence: Presence::Ordinary as i32,
        optional_routable: Some(OptionalRoutable::Routable(running)),
        ..ActualLrp::default()
    }
}

/// Where the instance listens: the endpoints' host, one port mapping per
/// container port (in the endpoints' order, each once). Empty without
/// endpoints.
fn net_info(endpoints: &[&Endpoint]) -> ActualLrpNetInfo {
    let Some(first) = endpoints.first() else {
        return ActualLrpNetInfo::default();
    };
    let mut ports: Vec<PortMapping> = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let container_port = u32::from(endpoint.container_port);
        if ports.iter().all(|p| p.container_port != container_port) {
            ports.push(PortMapping {
                container_port,
                host_port: u32::from(endpoint.port),
                ..PortMapping::default()
            });
        }
    }
    ActualLrpNetInfo {
        address: first.host.clone(),
        ports,
        instance_address: first.host.clone(),
        preferred_address: PreferredAddress::Host as i32,
        ..ActualLrpNetInfo::default()
    }
}

/// A stable guid for an instance whose backend reports none: two FNV-1a
/// hashes of `<process guid>/<index>` in the shape of a UUID.
pub fn instance_guid(process_guid: &str, index: u32) -> String {
    let text = format!("{process_guid}/{index}");
    let hash = |offset: u64| {
        text.bytes().fold(offset, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let high = hash(0xcbf2_9ce4_8422_2325);
    let low = hash(0x8422_2325_cbf2_9ce4);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::translate::fixtures;
    use crate::translate::lrp::desired;

    fn lrp() -> DesiredLrp {
        desired(&fixtures::buildpack_lrp(), &fixtures::settings())
            .unwrap()
            .lrp
    }

    fn instance(index: u32, state: InstanceState) -> Instance {
        Instance {
            index,
            since: 1_700_000_000_000_000_000 + i64::from(index),
            state,
            placement_error: String::new(),
            crash_count: 0,
            crash_reason: String::new(),
        }
    }

    fn endpoint(lrp: &DesiredLrp, index: u32, container_port: u16, port: u16) -> Endpoint {
        Endpoint {
            process_guid: lrp.id.process_guid(),
            app_guid: lrp.app.guid.clone(),
            instance_guid: format!("pod-uid-{index}"),
            index,
            host: "10.1.2.3".into(),
            port,
            container_port,
            hostnames: vec!["potato.example.com".into()],
        }
    }

    #[test]
    fn one_actual_lrp_per_instance_with_cc_state_strings() {
        let lrp = lrp();
        let instances = [
            instance(0, InstanceState::Running),
            instance(1, InstanceState::Claimed),
            instance(2, InstanceState::Unclaimed),
            instance(3, InstanceState::Crashed),
        ];
        let actual = actual_lrps(&lrp, &instances, &[]);
        let states: Vec<&str> = actual.iter().map(|a| a.state.as_str()).collect();
        assert_eq!(states, ["RUNNING", "CLAIMED", "UNCLAIMED", "CRASHED"]);
        for (a, i) in actual.iter().zip(&instances) {
            let key = a.actual_lrp_key.as_ref().unwrap();
            assert_eq!(key.process_guid, fixtures::PROCESS_GUID);
            assert_eq!(key.index, i32::try_from(i.index).unwrap());
            assert_eq!(key.domain, "cf-apps");
            assert_eq!(a.since, i.since);
            assert_eq!(a.presence, Presence::Ordinary as i32);
            assert_eq!((a.crash_count, a.crash_reason.as_str()), (0, ""));
        }
        let routable: Vec<_> = actual.iter().map(|a| a.optional_routable).collect();
        assert_eq!(
            routable,
            [true, false, false, false].map(|r| Some(OptionalRoutable::Routable(r)))
        );
    }

    #[test]
    fn only_placed_instances_have_an_instance_key_but_every_one_has_the_messages() {
        let lrp = lrp();
        let instances = [
            instance(0, InstanceState::Claimed),
            instance(1, InstanceState::Unclaimed),
        ];
        let actual = actual_lrps(&lrp, &instances, &[]);
        let claimed = actual[0].actual_lrp_instance_key.as_ref().unwrap();
        assert_eq!(claimed.cell_id, CELL_ID);
        assert_eq!(
            claimed.instance_guid,
            instance_guid(fixtures::PROCESS_GUID, 0)
        );
        assert_eq!(
            actual[1].actual_lrp_instance_key,
            Some(ActualLrpInstanceKey::default())
        );
        assert_eq!(
            actual[1].actual_lrp_net_info,
            Some(ActualLrpNetInfo::default())
        );
    }

    #[test]
    fn running_instances_carry_their_endpoints_as_net_info() {
        let lrp = lrp();
        let endpoints = [
            endpoint(&lrp, 0, 8080, 61001),
            endpoint(&lrp, 1, 8080, 61002),
            endpoint(&lrp, 0, 9090, 61003),
            endpoint(&lrp, 0, 8080, 61001),
        ];
        let actual = actual_lrps(&lrp, &[instance(0, InstanceState::Running)], &endpoints);
        let key = actual[0].actual_lrp_instance_key.as_ref().unwrap();
        assert_eq!(key.instance_guid, "pod-uid-0");
        let net = actual[0].actual_lrp_net_info.as_ref().unwrap();
        assert_eq!(
            (net.address.as_str(), net.instance_address.as_str()),
            ("10.1.2.3", "10.1.2.3")
        );
        assert_eq!(net.preferred_address, PreferredAddress::Host as i32);
        let ports: Vec<(u32, u32)> = net
            .ports
            .iter()
            .map(|p| (p.container_port, p.host_port))
            .collect();
        assert_eq!(ports, [(8080, 61001), (9090, 61003)]);
    }

    #[test]
    fn a_claimed_instance_has_no_net_info_even_with_endpoints() {
        let lrp = lrp();
        let actual = actual_lrps(
            &lrp,
            &[instance(0, InstanceState::Claimed)],
            &[endpoint(&lrp, 0, 8080, 1)],
        );
        assert_eq!(
            actual[0].actual_lrp_net_info,
            Some(ActualLrpNetInfo::default())
        );
    }

    #[test]
    fn actual_lrps_carry_the_instances_crash_count_and_reason() {
        let lrp = lrp();
        let mut crashed = instance(0, InstanceState::Crashed);
        crashed.crash_count = 3;
        crashed.crash_reason = "APP/PROC/WEB: Exited with status 1".into();
        let mut recovered = instance(1, InstanceState::Running);
        recovered.crash_count = 1;
        recovered.crash_reason = "exited with status 137".into();
        let actual = actual_lrps(&lrp, &[crashed, recovered], &[]);
        let got: Vec<(i32, &str)> = actual
            .iter()
            .map(|a| (a.crash_count, a.crash_reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (3, "APP/PROC/WEB: Exited with status 1"),
                (1, "exited with status 137")
            ]
        );
    }

    #[test]
    fn unplaced_instances_keep_their_placement_error() {
        let lrp = lrp();
        let mut unclaimed = instance(0, InstanceState::Unclaimed);
        unclaimed.placement_error = "insufficient resources: memory".into();
        let actual = actual_lrps(&lrp, &[unclaimed], &[]);
        assert_eq!(actual[0].placement_error, "insufficient resources: memory");
    }

    #[test]
    fn generated_instance_guids_are_stable_distinct_and_uuid_shaped() {
        let a = instance_guid(fixtures::PROCESS_GUID, 0);
        assert_eq!(a, instance_guid(fixtures::PROCESS_GUID, 0));
        assert_ne!(a, instance_guid(fixtures::PROCESS_GUID, 1));
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{a}");
    }

    #[test]
    fn no_instances_no_actual_lrps() {
        assert!(actual_lrps(&lrp(), &[], &[]).is_empty());
    }
}
