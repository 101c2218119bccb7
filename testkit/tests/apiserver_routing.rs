//! Services, Ingresses and `HTTPRoute`s on the fake apiserver: defaults,
//! cluster IPs, the rejections of real validation, and garbage collection
//! of objects owned by a StatefulSet.

use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use testkit::FakeApiServer;

fn api(client: Client, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1", kind);
    Api::namespaced_with(
        client,
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

async fn apply(api: &Api<DynamicObject>, object: Value) -> Result<Value, kube::Error> {
    let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
    api.patch(
        &name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&object),
    )
    .await
    .map(|o| serde_json::to_value(o).unwrap_or_default())
}

fn message(result: Result<Value, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        other => panic!("expected 422, got {other:?}"),
    }
}

fn service(name: &str, ports: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
           "spec": {"selector": {"app": "web"}, "ports": ports}})
}

#[tokio::test]
async fn services_get_a_cluster_ip_that_applies_keep() {
    let server = FakeApiServer::new();
    let services = api(server.client(), "", "Service", "services");
    let created = apply(
        &services,
        service("web", json!([{"name": "http", "port": 8080}])),
    )
    .await
    .expect("create");
    let ip = created["spec"]["clusterIP"]
        .as_str()
        .expect("cluster IP")
        .to_owned();
    assert!(ip.starts_with("10."), "{ip}");
    assert_eq!(created["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(created["spec"]["ports"][0]["protocol"], "TCP");
    let rv = server.resource_version();
    let again = apply(
        &services,
        service("web", json!([{"name": "http", "port": 8080}])),
    )
    .await
    .expect("apply again");
    assert_eq!(again["spec"]["clusterIP"], ip.as_str());
    assert_eq!(server.resource_version(), rv, "an identical apply wrote");
    let other = apply(
        &services,
        service("api", json!([{"name": "http", "port": 80}])),
    )
    .await
    .expect("second service");
    assert_ne!(other["spec"]["clusterIP"], ip.as_str());
    let mut moved = service("web", json!([{"name": "http", "port": 8080}]));
    moved["spec"]["clusterIP"] = json!("10.96.99.99");
    assert!(message(apply(&services, moved).await).contains("spec.clusterIPs[0]"));
}

#[tokio::test]
async fn invalid_services_are_rejected() {
    let server = FakeApiServer::new();
    let services = api(server.client(), "", "Service", "services");
    let no_ports = message(apply(&services, service("web", json!([]))).await);
    assert!(
        no_ports.contains("spec.ports: Required value"),
        "{no_ports}"
    );
    let digit = message(apply(&services, service("9web", json!([{"port": 80}]))).await);
    assert!(digit.contains("DNS-1035"), "{digit}");
    let unnamed = message(
        apply(
            &services,
            service("web", json!([{"port": 80}, {"port": 81}])),
        )
        .await,
    );
    assert!(
        unnamed.contains("spec.ports[0].name: Required value"),
        "{unnamed}"
    );
    let range = message(apply(&services, service("web", json!([{"port": 70000}]))).await);
    assert!(range.contains("spec.ports[0].port"), "{range}");
}

fn ingress(spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": "web"}, "spec": spec})
}

#[tokio::test]
async fn ingresses_need_rules_with_typed_paths_and_service_ports() {
    let server = FakeApiServer::new();
    let ingresses = api(server.client(), "networking.k8s.io", "Ingress", "ingresses");
    let empty = message(apply(&ingresses, ingress(json!({}))).await);
    assert!(
        empty.contains("either `defaultBackend` or `rules`"),
        "{empty}"
    );
    let backend = json!({"service": {"name": "web", "port": {"number": 8080}}});
    let untyped = message(
        apply(
            &ingresses,
            ingress(json!({"rules": [{"host": "a.example.com",
                "http": {"paths": [{"path": "/", "backend": backend}]}}]})),
        )
        .await,
    );
    assert!(untyped.contains("pathType: Required value"), "{untyped}");
    let ip_host = message(
        apply(
            &ingresses,
            ingress(json!({"rules": [{"host": "10.0.0.1",
                "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]})),
        )
        .await,
    );
    assert!(ip_host.contains("not an IP address"), "{ip_host}");
    let portless = message(
        apply(
            &ingresses,
            ingress(
                json!({"rules": [{"host": "a.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web"}}}]}}]}),
            ),
        )
        .await,
    );
    assert!(
        portless.contains("port name or number is required"),
        "{portless}"
    );
    apply(
        &ingresses,
        ingress(
            json!({"ingressClassName": "nginx", "rules": [{"host": "*.example.com",
            "http": {"paths": [{"path": "/api", "pathType": "Prefix", "backend": backend}]}}]}),
        ),
    )
    .await
    .expect("a valid Ingress");
}

fn http_route(spec: Value) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": "web"}, "spec": spec})
}

#[tokio::test]
async fn http_routes_need_named_parents_and_service_ports() {
    let server = FakeApiServer::new();
    let routes = api(
        server.client(),
        "gateway.networking.k8s.io",
        "HTTPRoute",
        "httproutes",
    );
    let parentless = message(
        apply(
            &routes,
            http_route(json!({"parentRefs": [{"kind": "Gateway"}]})),
        )
        .await,
    );
    assert!(
        parentless.contains("spec.parentRefs[0].name: Required value"),
        "{parentless}"
    );
    let portless = message(
        apply(
            &routes,
            http_route(json!({"parentRefs": [{"name": "gw"}],
                "rules": [{"backendRefs": [{"name": "web"}]}]})),
        )
        .await,
    );
    assert!(
        portless.contains("Must have port for Service reference"),
        "{portless}"
    );
    let relative = message(
        apply(
            &routes,
            http_route(json!({"parentRefs": [{"name": "gw"}], "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "api"}}],
                "backendRefs": [{"name": "web", "port": 8080}]}]})),
        )
        .await,
    );
    assert!(relative.contains("must be an absolute path"), "{relative}");
    let hosts: Vec<String> = (0..17).map(|i| format!("h{i}.example.com")).collect();
    let many = message(
        apply(
            &routes,
            http_route(json!({"parentRefs": [{"name": "gw"}], "hostnames": hosts})),
        )
        .await,
    );
    assert!(many.contains("at most 16"), "{many}");
    apply(
        &routes,
        http_route(
            json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
            "rules": [{"backendRefs": [{"name": "web", "port": 8080}]}]}),
        ),
    )
    .await
    .expect("a valid HTTPRoute");
}

#[tokio::test]
async fn objects_owned_by_a_statefulset_go_with_it() {
    let server = FakeApiServer::new();
    let sets = api(server.client(), "apps", "StatefulSet", "statefulsets");
    let set = apply(
        &sets,
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}),
    )
    .await
    .expect("StatefulSet");
    let owner = json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
        "uid": set["metadata"]["uid"]}]);
    let services = api(server.client(), "", "Service", "services");
    let mut owned = service("web", json!([{"name": "http", "port": 8080}]));
    owned["metadata"]["ownerReferences"] = owner;
    apply(&services, owned).await.expect("owned Service");
    let mut uidless = service("other", json!([{"name": "http", "port": 8080}]));
    uidless["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web"}]);
    let missing = message(apply(&services, uidless).await);
    assert!(missing.contains("ownerReferences.uid"), "{missing}");
    sets.delete("web", &DeleteParams::background())
        .await
        .expect("delete");
    assert!(
        server.get("services", "default", "web").is_none(),
        "not collected"
    );
}
