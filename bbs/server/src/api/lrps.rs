//! Desired LRPs: desire, get, scheduling infos, update, remove.

use std::sync::Arc;

use bbs_models::{
    DesireLrpRequest, DesiredLrPsRequest, DesiredLrp, DesiredLrpByProcessGuidRequest,
    DesiredLrpLifecycleResponse, DesiredLrpResponse, DesiredLrpSchedulingInfo,
    DesiredLrpSchedulingInfosResponse, RemoveDesiredLrpRequest, UpdateDesiredLrpRequest, version,
};
use futures::{StreamExt, TryStreamExt};
use opi::model::LrpId;

use super::Bbs;
use crate::error::Error;
use crate::translate;
use crate::validate;

/// How many LRPs a list reads from the scheduler at once.
const READ_CONCURRENCY: usize = 16;

/// The LRP a process guid names, for a lookup: a process guid Cube could
/// not have desired names nothing (ResourceNotFound, as on a BBS).
pub(super) fn lookup(process_guid: &str) -> Result<LrpId, Error> {
    translate::lrp_id(process_guid).map_err(|_| Error::NotFound)
}

/// `/v1/desired_lrp/desire.r2`: translate (InvalidRequest naming the field
/// Cube cannot honour), refuse a process guid already desired
/// (ResourceExists, which CC takes as success), make sure the Registry has
/// the droplet's image, desire it.
pub(super) async fn desire(
    bbs: Arc<Bbs>,
    request: DesireLrpRequest,
) -> Result<DesiredLrpLifecycleResponse, Error> {
    let lrp = request
        .desired_lrp
        .ok_or_else(|| Error::Invalid("Invalid field: desired_lrp".into()))?;
    let desired = translate::lrp::desired(&lrp, &bbs.settings)?;
    match bbs.scheduler.get(&desired.lrp.id).await {
        Ok(_) => return Err(Error::Exists),
        Err(opi::Error::NotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    if let Some(droplet) = &desired.droplet {
        bbs.droplets.ensure(droplet).await?;
    }
    bbs.scheduler.desire(desired.lrp).await?;
    Ok(DesiredLrpLifecycleResponse::default())
}

/// `/v1/desired_lrps/get_by_process_guid.r2`: the LRP in format V2.
pub(super) async fn get_r2(
    bbs: Arc<Bbs>,
    request: DesiredLrpByProcessGuidRequest,
) -> Result<DesiredLrpResponse, Error> {
    let lrp = read(&bbs, &request.process_guid).await?;
    Ok(found(version::desired_lrp_v2(lrp)))
}

/// `/v1/desired_lrps/get_by_process_guid.r3`: the LRP as stored (V3).
pub(super) async fn get_r3(
    bbs: Arc<Bbs>,
    request: DesiredLrpByProcessGuidRequest,
) -> Result<DesiredLrpResponse, Error> {
    let lrp = read(&bbs, &request.process_guid).await?;
    Ok(found(lrp))
}

fn found(lrp: DesiredLrp) -> DesiredLrpResponse {
    DesiredLrpResponse {
        error: None,
        desired_lrp: Some(version::populate_metrics_guid(lrp)),
    }
}

/// The BBS model of the LRP `process_guid` names.
async fn read(bbs: &Bbs, process_guid: &str) -> Result<DesiredLrp, Error> {
    validate::guid(process_guid, "process_guid")?;
    let lrp = bbs.scheduler.get(&lookup(process_guid)?).await?;
    translate::lrp::bbs_desired(&lrp).map_err(Error::Untranslatable)
}

/// `/v1/desired_lrp_scheduling_infos/list`: every LRP's scheduling info
/// (key, annotation, instances, resources, routes — `diego-ssh` too, which
/// CC copies into its updates), filtered by domain, process guids and app
/// guids when given, sorted by process guid. One LRP the BBS model cannot
/// express is left out (and logged); any other failure fails the list, so
/// CC never acts on half of it.
pub(super) async fn scheduling_infos(
    bbs: Arc<Bbs>,
    request: DesiredLrPsRequest,
) -> Result<DesiredLrpSchedulingInfosResponse, Error> {
    let ids: Vec<LrpId> = bbs
        .scheduler
        .list()
        .await?
        .into_iter()
        .map(|info| info.id)
        .filter(|id| {
            request.process_guids.is_empty() || request.process_guids.contains(&id.process_guid())
        })
        .collect();
    let mut infos: Vec<DesiredLrpSchedulingInfo> = futures::stream::iter(ids)
        .map(|id| scheduling_info(&bbs, id, &request.app_guids))
        .buffer_unordered(READ_CONCURRENCY)
        .try_filter_map(|info| async move { Ok(info) })
        .try_collect()
        .await?;
    infos.retain(|info| {
        request.domain.is_empty()
            || info
                .desired_lrp_key
                .as_ref()
                .is_some_and(|key| key.domain == request.domain)
    });
    infos.sort_by(|a, b| key_of(a).cmp(key_of(b)));
    Ok(DesiredLrpSchedulingInfosResponse {
        error: None,
        desired_lrp_scheduling_infos: infos,
    })
}

fn key_of(info: &DesiredLrpSchedulingInfo) -> &str {
    info.desired_lrp_key
        .as_ref()
        .map_or("", |key| key.process_guid.as_str())
}

/// One LRP's scheduling info; `None` when it is gone meanwhile, belongs to
/// another app than `app_guids` asks for, or cannot be expressed.
async fn scheduling_info(
    bbs: &Bbs,
    id: LrpId,
    app_guids: &[String],
) -> Result<Option<DesiredLrpSchedulingInfo>, Error> {
    let lrp = match bbs.scheduler.get(&id).await {
        Ok(lrp) => lrp,
        Err(opi::Error::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    if !app_guids.is_empty() && !app_guids.contains(&lrp.app.guid) {
        return Ok(None);
    }
    match translate::lrp::scheduling_info(&lrp) {
        Ok(info) => Ok(Some(info)),
        Err(refusal) => {
            tracing::warn!(lrp = %id, %refusal, "LRP left out of the scheduling infos");
            Ok(None)
        }
    }
}

/// `/v1/desired_lrp/update`: instances, routes, annotation (and metric
/// tags) of an existing LRP. Unknown → ResourceNotFound.
pub(super) async fn update(
    bbs: Arc<Bbs>,
    request: UpdateDesiredLrpRequest,
) -> Result<DesiredLrpLifecycleResponse, Error> {
    validate::update_lrp(&request.process_guid, request.update.as_ref())?;
    let id = lookup(&request.process_guid)?;
    let update = translate::lrp::update(&request.update.unwrap_or_default())?;
    bbs.scheduler.update(&id, update).await?;
    Ok(DesiredLrpLifecycleResponse::default())
}

/// `/v1/desired_lrp/remove`: stop every instance and forget the LRP.
/// Unknown → ResourceNotFound (CC takes it as success).
pub(super) async fn remove(
    bbs: Arc<Bbs>,
    request: RemoveDesiredLrpRequest,
) -> Result<DesiredLrpLifecycleResponse, Error> {
    validate::guid(&request.process_guid, "process_guid")?;
    bbs.scheduler.stop(&lookup(&request.process_guid)?).await?;
    Ok(DesiredLrpLifecycleResponse::default())
}
