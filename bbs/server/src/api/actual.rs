//! Actual LRPs: the scheduler's instances in the BBS's terms, and retiring
//! one (which restarts it: the desired instance count stays).

use std::collections::BTreeMap;
use std::sync::Arc;

use bbs_models::actual_lr_ps_request::OptionalIndex;
use bbs_models::{
    ActualLrPsByProcessGuidsRequest, ActualLrPsByProcessGuidsResponse, ActualLrPsRequest,
    ActualLrPsResponse, ActualLrp, ActualLrpLifecycleResponse, RetireActualLrpRequest,
};
use futures::{StreamExt, TryStreamExt};
use opi::model::LrpId;
use opi::routing::Endpoint;

use super::Bbs;
use super::lrps::lookup;
use crate::error::Error;
use crate::translate;
use crate::validate;

/// How many LRPs a list reads from the scheduler at once.
const READ_CONCURRENCY: usize = 16;

/// `/v1/actual_lrps/list`: every instance, or those of one process guid
/// (an unknown one: none), filtered by domain, cell and index when given.
pub(super) async fn list(
    bbs: Arc<Bbs>,
    request: ActualLrPsRequest,
) -> Result<ActualLrPsResponse, Error> {
    let ids = if request.process_guid.is_empty() {
        bbs.scheduler
            .list()
            .await?
            .into_iter()
            .map(|info| info.id)
            .collect()
    } else {
        lookup(&request.process_guid).map_or_else(|_| Vec::new(), |id| vec![id])
    };
    let mut actual_lrps = actual_lrps(&bbs, ids).await?;
    actual_lrps.retain(|lrp| matches(lrp, &request));
    Ok(ActualLrPsResponse {
        error: None,
        actual_lrps,
    })
}

/// Whether `lrp` passes the request's filters (an empty one passes all).
fn matches(lrp: &ActualLrp, request: &ActualLrPsRequest) -> bool {
    let key = lrp.actual_lrp_key.as_ref();
    let domain = request.domain.is_empty() || key.is_some_and(|k| k.domain == request.domain);
    let cell = request.cell_id.is_empty()
        || lrp
            .actual_lrp_instance_key
            .as_ref()
            .is_some_and(|k| k.cell_id == request.cell_id);
    let index = match request.optional_index {
        Some(OptionalIndex::Index(index)) => key.is_some_and(|k| k.index == index),
        None => true,
    };
    domain && cell && index
}

/// `/v1/actual_lrps/list_by_process_guids`: the instances of these LRPs
/// (unknown guids have none).
pub(super) async fn by_process_guids(
    bbs: Arc<Bbs>,
    request: ActualLrPsByProcessGuidsRequest,
) -> Result<ActualLrPsByProcessGuidsResponse, Error> {
    validate::by_process_guids(&request)?;
    let mut ids: Vec<LrpId> = request
        .process_guids
        .iter()
        .filter_map(|guid| lookup(guid).ok())
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ActualLrPsByProcessGuidsResponse {
        error: None,
        actual_lrps: actual_lrps(&bbs, ids).await?,
    })
}

/// The actual LRPs of `ids`, in their order, each LRP's by index.
async fn actual_lrps(bbs: &Bbs, ids: Vec<LrpId>) -> Result<Vec<ActualLrp>, Error> {
    let mut endpoints = endpoints(bbs);
    let reads = ids.into_iter().map(|id| {
        let ready = endpoints.remove(&id.process_guid()).unwrap_or_default();
        of_lrp(bbs, id, ready)
    });
    let groups: Vec<Vec<ActualLrp>> = futures::stream::iter(reads)
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(groups.into_iter().flatten().collect())
}

/// Where the backend's ready instances listen, by process guid (nothing
/// when the backend does not say, as Diego's own).
fn endpoints(bbs: &Bbs) -> BTreeMap<String, Vec<Endpoint>> {
    let mut by_process: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
    for endpoint in bbs.routes.iter().flat_map(|routes| routes.endpoints()) {
        by_process
            .entry(endpoint.process_guid.clone())
            .or_default()
            .push(endpoint);
    }
    by_process
}

/// One LRP's instances as actual LRPs; none when it is not desired.
async fn of_lrp(bbs: &Bbs, id: LrpId, ready: Vec<Endpoint>) -> Result<Vec<ActualLrp>, Error> {
    let lrp = match bbs.scheduler.get(&id).await {
        Ok(lrp) => lrp,
        Err(opi::Error::NotFound(_)) => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    let instances = match bbs.scheduler.instances(&id).await {
        Ok(instances) => instances,
        Err(opi::Error::NotFound(_)) => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    Ok(translate::actual::actual_lrps(&lrp, &instances, &ready))
}

/// `/v1/actual_lrps/retire`: stop the instance at the key's index; the
/// scheduler brings a fresh one up in its place (how CC restarts one
/// instance). Unknown LRP or index → ResourceNotFound. The key's domain is
/// not compared, as the BBS does not.
pub(super) async fn retire(
    bbs: Arc<Bbs>,
    request: RetireActualLrpRequest,
) -> Result<ActualLrpLifecycleResponse, Error> {
    validate::retire(&request)?;
    let key = request.actual_lrp_key.unwrap_or_default();
    let id = lookup(&key.process_guid)?;
    let index = u32::try_from(key.index).map_err(|_| Error::NotFound)?;
    bbs.scheduler.stop_instance(&id, index).await?;
    Ok(ActualLrpLifecycleResponse::default())
}
