//! Routing on the fake apiserver: with `Routing::Ingress` or
//! `Routing::Gateway` every process gets a Service owned by its StatefulSet
//! and an Ingress or `HTTPRoute` for its `cf-router` routes; route updates
//! change exactly the changed routes; stops remove them; `Routing::None`
//! writes (and asks) nothing of the kind.

use http::Method;
use opi::Scheduler;
use opi::model::{LrpId, LrpUpdate};
use opi_k8s::config::Routing;
use opi_k8s::{Config, K8sScheduler};
use serde_json::{Value, json};
use testkit::FakeApiServer;
use testkit::apiserver::Fault;

mod common;

const NS: &str = "acme-dev";

fn ingress_routing() -> Routing {
    Routing::Ingress {
        class: Some("nginx".into()),
        tls_secret: None,
    }
}

fn gateway_routing() -> Routing {
    Routing::Gateway {
        name: "cf".into(),
        namespace: Some("gateways".into()),
    }
}

fn setup(routing: Routing) -> (FakeApiServer, K8sScheduler) {
    let server = FakeApiServer::new();
    let config = Config {
        routing,
        ..Config::default()
    };
    let scheduler = K8sScheduler::new(server.client(), config);
    (server, scheduler)
}

/// App `myapp` (1 instance, port 8080) with routes `a` and `b/api`.
fn myapp() -> opi::model::DesiredLrp {
    let mut lrp = common::lrp("myapp", "guid-1", "v1", 1);
    lrp.routes = common::routes(&[("a.example.com", 8080), ("b.example.com/api", 8080)]);
    lrp
}

fn update(hosts: &[(&str, i64)]) -> LrpUpdate {
    LrpUpdate {
        instances: None,
        routes: Some(common::routes(hosts)),
        annotation: None,
    }
}

/// Routes `a` (kept from [`myapp`]) and `c` (new).
const A_AND_C: &[(&str, i64)] = &[("a.example.com", 8080), ("c.example.com", 8080)];

/// Updating to [`A_AND_C`] again changes nothing in the cluster.
async fn unchanged_update_writes_nothing(
    server: &FakeApiServer,
    scheduler: &K8sScheduler,
    id: &LrpId,
) {
    let version = server.resource_version();
    scheduler
        .update(id, update(A_AND_C))
        .await
        .expect("same update");
    assert_eq!(
        server.resource_version(),
        version,
        "an unchanged update wrote"
    );
}

fn get(server: &FakeApiServer, plural: &str, name: &str) -> Value {
    server
        .get(plural, NS, name)
        .unwrap_or_else(|| panic!("{plural}/{name} in {NS}"))
}

fn writes(server: &FakeApiServer) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// The Ingress rule for `host`.
fn rule<'a>(ingress: &'a Value, host: &str) -> Option<&'a Value> {
    ingress["spec"]["rules"]
        .as_array()?
        .iter()
        .find(|r| r["host"] == host)
}

#[tokio::test]
async fn every_process_gets_a_service_owned_by_its_statefulset() {
    let (server, scheduler) = setup(ingress_routing());
    let mut lrp = myapp();
    lrp.ports = vec![8080, 9090];
    scheduler.desire(lrp).await.expect("desire");
    let sts = get(&server, "statefulsets", "myapp");
    let service = get(&server, "services", "myapp");
    assert_eq!(
        service["spec"]["selector"],
        json!({"cloudfoundry.org/process-guid": "guid-1", "cloudfoundry.org/source-type": "APP"})
    );
    assert_eq!(
        service["spec"]["ports"],
        json!([
            {"name": "port-8080", "port": 8080, "targetPort": 8080, "protocol": "TCP"},
            {"name": "port-9090", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
        ])
    );
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert!(
        service["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty())
    );
    let owner = &service["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "StatefulSet");
    assert_eq!(owner["name"], "myapp");
    assert_eq!(owner["uid"], sts["metadata"]["uid"]);
}

#[tokio::test]
async fn ingress_mode_routes_each_host_and_path_to_the_service_port() {
    let (server, scheduler) = setup(ingress_routing());
    scheduler.desire(myapp()).await.expect("desire");
    let ingress = get(&server, "ingresses", "myapp");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    let backend = json!({"service": {"name": "myapp", "port": {"number": 8080}}});
    assert_eq!(
        rule(&ingress, "a.example.com").expect("rule a")["http"]["paths"],
        json!([{"path": "/", "pathType": "Prefix", "backend": backend}])
    );
    assert_eq!(
        rule(&ingress, "b.example.com").expect("rule b")["http"]["paths"],
        json!([{"path": "/api", "pathType": "Prefix", "backend": backend}])
    );
    assert_eq!(ingress["spec"]["rules"].as_array().map(Vec::len), Some(2));
    let sts = get(&server, "statefulsets", "myapp");
    assert_eq!(
        ingress["metadata"]["ownerReferences"][0]["uid"],
        sts["metadata"]["uid"]
    );
}

#[tokio::test]
async fn a_new_process_costs_two_more_applies_with_routing_and_none_without() {
    let mut counts = Vec::new();
    for routing in [Routing::None, ingress_routing(), gateway_routing()] {
        let (server, scheduler) = setup(routing);
        common::create_namespace(&server, NS).await;
        server.clear_requests();
        scheduler.desire(myapp()).await.expect("desire");
        let requests = server.requests();
        assert!(
            requests
                .iter()
                .all(|r| r.method == "GET" || r.method == "PATCH"),
            "{requests:?}"
        );
        // Applies only: how many reads a desire makes depends on whether
        // the backend's watches have synced yet.
        counts.push(requests.iter().filter(|r| r.method == "PATCH").count());
        if counts.len() == 1 {
            for plural in ["services", "ingresses", "httproutes"] {
                assert!(
                    server.list(plural, None).is_empty(),
                    "{plural} without routing"
                );
                assert!(
                    !requests.iter().any(|r| r.path.contains(plural)),
                    "routing none asked for {plural}: {requests:?}"
                );
            }
        }
    }
    assert_eq!(counts[1], counts[0] + 2, "{counts:?}");
    assert_eq!(counts[2], counts[0] + 2, "{counts:?}");
}

#[tokio::test]
async fn ingress_updates_change_exactly_the_changed_routes() {
    let (server, scheduler) = setup(ingress_routing());
    let lrp = myapp();
    let id = lrp.id.clone();
    scheduler.desire(lrp).await.expect("desire");
    let before = get(&server, "ingresses", "myapp");

    // Add c, drop b, keep a.
    scheduler
        .update(&id, update(A_AND_C))
        .await
        .expect("update");
    let after = get(&server, "ingresses", "myapp");
    assert!(
        rule(&after, "c.example.com").is_some(),
        "added host missing"
    );
    assert!(
        rule(&after, "b.example.com").is_none(),
        "removed host still routed"
    );
    assert_eq!(
        rule(&after, "a.example.com"),
        rule(&before, "a.example.com")
    );
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "recreated"
    );
    let service_version = get(&server, "services", "myapp")["metadata"]["resourceVersion"].clone();

    // The same routes again: no write at all.
    unchanged_update_writes_nothing(&server, &scheduler, &id).await;
    assert_eq!(
        get(&server, "services", "myapp")["metadata"]["resourceVersion"],
        service_version
    );

    // No routes left: the Ingress goes, the Service (the app has a port) stays.
    scheduler.update(&id, update(&[])).await.expect("unroute");
    assert!(server.get("ingresses", NS, "myapp").is_none());
    assert!(server.get("services", NS, "myapp").is_some());
}

#[tokio::test]
async fn gateway_mode_attaches_an_http_route_and_updates_it() {
    let (server, scheduler) = setup(gateway_routing());
    let lrp = myapp();
    let id = lrp.id.clone();
    scheduler.desire(lrp).await.expect("desire");
    let route = get(&server, "httproutes", "myapp");
    assert_eq!(
        route["spec"]["parentRefs"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "cf", "namespace": "gateways"}])
    );
    assert_eq!(
        route["spec"]["hostnames"],
        json!(["a.example.com", "b.example.com"])
    );
    // a.example.com serves every path, b.example.com only /api: each match
    // names its host.
    let host = |h: &str| json!([{"type": "Exact", "name": "Host", "value": h}]);
    assert_eq!(
        route["spec"]["rules"],
        json!([{
            "matches": [
                {"path": {"type": "PathPrefix", "value": "/"}, "headers": host("a.example.com")},
                {"path": {"type": "PathPrefix", "value": "/api"}, "headers": host("b.example.com")},
            ],
            "backendRefs": [{"group": "", "kind": "Service", "name": "myapp", "port": 8080, "weight": 1}],
        }])
    );
    assert!(server.get("services", NS, "myapp").is_some());

    scheduler
        .update(&id, update(A_AND_C))
        .await
        .expect("update");
    let after = get(&server, "httproutes", "myapp");
    assert_eq!(
        after["spec"]["hostnames"],
        json!(["a.example.com", "c.example.com"])
    );
    assert_eq!(
        after["spec"]["rules"][0]["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/"}}])
    );
    assert_eq!(after["spec"]["parentRefs"], route["spec"]["parentRefs"]);
    unchanged_update_writes_nothing(&server, &scheduler, &id).await;
}

#[tokio::test]
async fn stop_removes_the_service_and_route_object_but_not_for_an_old_version() {
    for (routing, plural) in [
        (ingress_routing(), "ingresses"),
        (gateway_routing(), "httproutes"),
    ] {
        let (server, scheduler) = setup(routing);
        scheduler.desire(myapp()).await.expect("desire v1");
        let mut v2 = myapp();
        v2.id = LrpId::new("guid-1", "v2");
        scheduler.desire(v2.clone()).await.expect("desire v2");
        scheduler
            .stop(&LrpId::new("guid-1", "v1"))
            .await
            .expect("stop v1");
        assert!(server.get("services", NS, "myapp").is_some(), "{plural}");
        assert!(server.get(plural, NS, "myapp").is_some(), "{plural}");
        server.clear_requests();
        scheduler.stop(&v2.id).await.expect("stop v2");
        assert!(server.get("statefulsets", NS, "myapp").is_none());
        assert!(server.get("services", NS, "myapp").is_none(), "{plural}");
        assert!(server.get(plural, NS, "myapp").is_none(), "{plural}");
        let deletes = writes(&server);
        assert!(
            deletes
                .iter()
                .any(|w| w.starts_with("DELETE") && w.contains(plural)),
            "{plural} deleted explicitly: {deletes:?}"
        );
        assert!(
            deletes
                .iter()
                .any(|w| w.starts_with("DELETE") && w.contains("/services/")),
            "Service deleted explicitly: {deletes:?}"
        );
    }
}

#[tokio::test]
async fn routes_to_several_ports_match_hosts_in_gateway_rules_and_digit_names_get_a_service_name() {
    let (server, scheduler) = setup(gateway_routing());
    let mut lrp = common::lrp("9lives", "guid-9", "v1", 1);
    lrp.ports = vec![8080, 9090];
    lrp.routes = common::routes(&[("a.example.com", 8080), ("m.example.com", 9090)]);
    scheduler.desire(lrp).await.expect("desire");
    let services = server.list("services", Some(NS));
    assert_eq!(services.len(), 1);
    let name = services[0]["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(name.starts_with("cf-9lives-"), "{name}");
    let route = get(&server, "httproutes", "9lives");
    let rules = &route["spec"]["rules"];
    assert_eq!(rules.as_array().map(Vec::len), Some(2), "{rules}");
    assert_eq!(
        rules[1]["matches"][0]["headers"],
        json!([{"type": "Exact", "name": "Host", "value": "m.example.com"}])
    );
    assert_eq!(rules[1]["backendRefs"][0]["port"], 9090);
    assert_eq!(rules[1]["backendRefs"][0]["name"], name.as_str());
}

#[tokio::test]
async fn a_cluster_without_gateway_api_is_an_error_naming_it() {
    let (server, scheduler) = setup(gateway_routing());
    server.inject(
        Fault::next(1, 404)
            .on(Method::PATCH, "/httproutes/")
            .message("the server could not find the requested resource"),
    );
    let error = scheduler.desire(myapp()).await.expect_err("no HTTPRoutes");
    let message = error.to_string();
    assert!(message.contains("Gateway API CRDs"), "{message}");
    // The next desire (CRDs installed) completes the process.
    scheduler.desire(myapp()).await.expect("desire again");
    assert!(server.get("httproutes", NS, "myapp").is_some());
}

#[tokio::test]
async fn an_invalid_route_host_is_a_bad_request_naming_it() {
    let (_server, scheduler) = setup(ingress_routing());
    let mut lrp = myapp();
    lrp.routes = common::routes(&[("10.0.0.1", 8080)]);
    match scheduler.desire(lrp).await {
        Err(e @ opi::Error::BadBody(_)) => {
            assert!(e.to_string().contains("10.0.0.1"), "{e}");
        }
        other => panic!("expected a 400 naming the host, got {other:?}"),
    }
}
