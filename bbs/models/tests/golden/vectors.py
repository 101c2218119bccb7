"""Golden vectors for the BBS models, from Debian's python3-protobuf.

Usage: vectors.py GENERATED_DIR encode   -> JSON {name: hex} on stdout
       vectors.py GENERATED_DIR decode   <- JSON {name: hex} on stdin;
                                            exits 1 unless each decodes to
                                            exactly the message built here.

GENERATED_DIR holds the *_pb2.py that `protoc --python_out` made from the
same bbs/models/proto/*.proto the Rust side is built from. One message per
request and response of the BBS routes Cloud Controller calls, filled the way
Cloud Controller's recipe builders fill them (values from its specs), built
here field by field, independently of the Rust side (tests/golden.rs builds
the same messages with prost).
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

import actions_pb2 as actions  # noqa: E402
import actual_lrp_pb2 as actual  # noqa: E402
import actual_lrp_requests_pb2 as actual_requests  # noqa: E402
import cached_dependency_pb2 as cached  # noqa: E402
import certificate_properties_pb2 as certificates  # noqa: E402
import check_definition_pb2 as checks  # noqa: E402
import desired_lrp_pb2 as desired  # noqa: E402
import desired_lrp_requests_pb2 as desired_requests  # noqa: E402
import domain_pb2 as domain  # noqa: E402
import environment_variables_pb2 as env  # noqa: E402
import error_pb2 as error  # noqa: E402
import file_pb2 as files  # noqa: E402
import image_layer_pb2 as layers  # noqa: E402
import log_rate_limit_pb2 as rate  # noqa: E402
import metric_tags_pb2 as tags  # noqa: E402
import modification_tag_pb2 as modification  # noqa: E402
import network_pb2 as network  # noqa: E402
import ping_pb2 as ping  # noqa: E402
import security_group_pb2 as security  # noqa: E402
import sidecar_pb2 as sidecar  # noqa: E402
import task_pb2 as task  # noqa: E402
import task_requests_pb2 as task_requests  # noqa: E402
import volume_mount_pb2 as volumes  # noqa: E402

APP_GUID = "6a2d1c5e-3b9f-4e1a-9c7d-2f8e0b4a1d3c"
PROCESS_GUID = APP_GUID + "-b1f6e8a2-7c3d-4f5e-8a9b-0c1d2e3f4a5b"
DOCKER_PROCESS_GUID = "0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f-5e4d3c2b-1a09-4f8e-9d7c-6b5a49382716"
ORG_GUID = "0e5a7c1b-2d3f-4a6b-8c9d-1e2f3a4b5c6d"
SPACE_GUID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
TASK_GUID = "d3c2b1a0-9f8e-4d7c-6b5a-493827160504"
DROPLET_SHA1 = "8d7e5c9a1b3f2e4d6c8a0b1c2d3e4f5a6b7c8d9e"
DROPLET_SHA256 = "3f1e2d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071"
LIFECYCLE_URL = "https://file-server.service.cf.internal:8447/v1/static/buildpack_app_lifecycle/buildpack_app_lifecycle.tgz"
DROPLET_URL = "https://cc-uploader.service.cf.internal:9091/v1/static/droplets/" + APP_GUID + "/download"
CALLBACK_URL = "https://cloud-controller-ng.service.cf.internal:9023/internal/v4/tasks/" + TASK_GUID + "/completed"
ROUTES = {
    "cf-router": b'[{"hostnames":["dora.example.com"],"port":8080,"route_service_url":null,"isolation_segment":"iso-seg-1","protocol":"http1"}]',
    "tcp-router": b'[{"router_group_guid":"tcp-group","external_port":61000,"container_port":8080}]',
    "internal-router": b'[{"hostname":"dora.apps.internal"}]',
    "diego-ssh": b'{"container_port":2222,"private_key":"-----BEGIN RSA PRIVATE KEY-----\\n...","host_fingerprint":"a6:14:c0:ea:42:07:b2:f7:53:2c:0b:60:e0:00:21:6c"}',
}


def ev(name, value):
    return env.EnvironmentVariable(name=name, value=value)


def app_env():
    return [
        ev("PORT", "8080"),
        ev("VCAP_APP_PORT", "8080"),
        ev("VCAP_APP_HOST", "0.0.0.0"),
        ev("VCAP_APPLICATION", '{"application_id":"' + APP_GUID + '","name":"dora"}'),
        ev("MEMORY_LIMIT", "256m"),
        ev("VCAP_SERVICES", "{}"),
    ]


def run(path, args, log_source, environment, nofile, user="vcap", suppress=False):
    r = actions.RunAction(path=path, args=args, env=environment, user=user, log_source=log_source,
                          suppress_log_output=suppress)
    r.resource_limits.nofile = nofile
    return actions.Action(run_action=r)


def download(artifact, url, to, cache_key, user, algorithm, value):
    d = actions.DownloadAction(artifact=artifact, to=to, cache_key=cache_key, user=user,
                               checksum_algorithm=algorithm, checksum_value=value, **{"from": url})
    return actions.Action(download_action=d)


def static(value):
    return tags.MetricTagValue(static=value)


def dynamic(value):
    return tags.MetricTagValue(dynamic=value)


def lrp_metric_tags(m):
    m["source_id"].CopyFrom(static(APP_GUID))
    m["process_id"].CopyFrom(static(APP_GUID))
    m["process_type"].CopyFrom(static("web"))
    m["process_instance_id"].CopyFrom(dynamic(tags.MetricTagValue.INSTANCE_GUID))
    m["instance_id"].CopyFrom(dynamic(tags.MetricTagValue.INDEX))
    m["organization_id"].CopyFrom(static(ORG_GUID))
    m["space_id"].CopyFrom(static(SPACE_GUID))
    m["app_id"].CopyFrom(static(APP_GUID))
    m["organization_name"].CopyFrom(static("MyOrg"))
    m["space_name"].CopyFrom(static("MySpace"))
    m["app_name"].CopyFrom(static("dora"))


def egress_rules():
    return [
        security.SecurityGroupRule(protocol="udp", destinations=["0.0.0.0/0"], ports=[53],
                                   annotations=["security_group_id:guid1"]),
        security.SecurityGroupRule(protocol="tcp", destinations=["0.0.0.0/0"], ports=[80], log=True,
                                   annotations=["security_group_id:guid2"]),
        security.SecurityGroupRule(protocol="tcp", destinations=["10.0.0.0-10.0.0.255"],
                                   port_range=security.PortRange(start=8080, end=8090),
                                   annotations=["security_group_id:guid3"]),
        security.SecurityGroupRule(protocol="icmp", destinations=["0.0.0.0/0"],
                                   icmp_info=security.ICMPInfo(type=8, code=0),
                                   annotations=["security_group_id:guid4"]),
    ]


def certificate_properties():
    return certificates.CertificateProperties(
        organizational_unit=["organization:" + ORG_GUID, "space:" + SPACE_GUID, "app:" + APP_GUID])


def app_network(m, workload):
    for k, v in [("policy_group_id", APP_GUID), ("app_id", APP_GUID), ("space_id", SPACE_GUID),
                 ("org_id", ORG_GUID), ("ports", "8080"), ("container_workload", workload)]:
        m.properties[k] = v


def lifecycle_layer():
    return layers.ImageLayer(name="buildpack-cflinuxfs4-lifecycle", url=LIFECYCLE_URL,
                             destination_path="/tmp/lifecycle", layer_type=layers.ImageLayer.SHARED,
                             media_type=layers.ImageLayer.TGZ)


def droplet_layer():
    return layers.ImageLayer(name="droplet", url=DROPLET_URL, destination_path="/home/vcap",
                             layer_type=layers.ImageLayer.EXCLUSIVE, media_type=layers.ImageLayer.TGZ,
                             digest_algorithm=layers.ImageLayer.SHA256, digest_value=DROPLET_SHA256)


def healthcheck(port):
    return run("/tmp/lifecycle/healthcheck", ["-port=%d" % port, "-timeout=1s"], "HEALTH", [], 16384,
               suppress=True)


def app_lrp():
    """AppRecipeBuilder#build_app_lrp: a buildpack app with SSH, a service
    volume, file-based service bindings, the lifecycle as an image layer and
    a sha1 droplet downloaded in the setup."""
    lrp = desired.DesiredLRP(
        process_guid=PROCESS_GUID,
        domain="cf-apps",
        root_fs="preloaded:cflinuxfs4",
        instances=21,
        environment_variables=[ev("LANG", "en_US.UTF-8")],
        start_timeout_ms=60000,
        disk_mb=1024,
        memory_mb=256,
        cpu_weight=10,
        privileged=False,
        ports=[8080, 2222],
        log_source="CELL",
        log_guid=APP_GUID,
        metrics_guid=APP_GUID,
        annotation="1700000000.123456",
        egress_rules=egress_rules(),
        legacy_download_user="vcap",
        trusted_system_certificates_path="/etc/cf-system-certificates",
        PlacementTags=["iso-seg-1"],
        max_pids=1024,
        image_layers=[lifecycle_layer()],
        volume_mounted_files=[files.File(path="vcap_services", content='{"user-provided":[]}')],
    )
    lrp.setup.serial_action.actions.append(
        download("droplet", DROPLET_URL, ".", "droplets-" + PROCESS_GUID, "vcap", "sha1", DROPLET_SHA1))
    lrp.action.codependent_action.actions.extend([
        run("/tmp/lifecycle/launcher", ["app", "bundle exec rackup config.ru -p $PORT", '{"start_command":"bundle exec rackup"}'],
            "APP/PROC/WEB", app_env(), 16384),
        run("/tmp/lifecycle/diego-sshd",
            ["-address=0.0.0.0:2222", "-hostKey=-----BEGIN RSA PRIVATE KEY-----\n...", "-authorizedKey=ssh-rsa AAAA...",
             "-inheritDaemonEnv", "-logLevel=fatal"],
            "CELL/SSHD", app_env(), 16384),
    ])
    monitor = lrp.monitor.timeout_action
    monitor.timeout_ms = 600000
    monitor.action.parallel_action.actions.append(healthcheck(8080))
    for name, value in ROUTES.items():
        lrp.routes.routes[name] = value
    lrp.volume_mounts.append(volumes.VolumeMount(
        driver="nfsv3driver", container_dir="/var/vcap/data/" + APP_GUID, mode="rw",
        shared=volumes.SharedDevice(volume_id="service-instance-guid",
                                    mount_config='{"source":"nfs://nfs.example.com/export","uid":"1000"}')))
    app_network(lrp.network, "app")
    lrp.certificate_properties.CopyFrom(certificate_properties())
    lrp.check_definition.checks.append(checks.Check(tcp_check=checks.TCPCheck(port=8080, connect_timeout_ms=1000)))
    lrp.check_definition.readiness_checks.append(checks.Check(
        http_check=checks.HTTPCheck(port=8080, request_timeout_ms=1000, path="/ready", interval_ms=5000)))
    lrp.check_definition.log_source = "HEALTH"
    lrp_metric_tags(lrp.metric_tags)
    lrp.log_rate_limit.bytes_per_second = 1024
    return lrp


def docker_lrp_read():
    """A docker app's LRP as get_by_process_guid.r2 answers it: stored with
    a modification tag, image credentials, a sidecar (as other BBS clients
    desire them) and the rolling update strategy."""
    lrp = desired.DesiredLRP(
        process_guid=DOCKER_PROCESS_GUID,
        domain="cf-apps",
        root_fs="docker:///cloudfoundry/diego-docker-app#latest",
        instances=2,
        environment_variables=[ev("LANG", "en_US.UTF-8")],
        start_timeout_ms=60000,
        disk_mb=1024,
        memory_mb=128,
        cpu_weight=6,
        ports=[8080],
        log_source="CELL",
        log_guid=APP_GUID,
        metrics_guid=APP_GUID,
        annotation="1700000100.5",
        legacy_download_user="root",
        trusted_system_certificates_path="/etc/cf-system-certificates",
        max_pids=1024,
        image_username="registry-user",
        image_password="registry-secret",
        update_strategy=desired.DesiredLRP.ROLLING,
    )
    lrp.action.codependent_action.actions.append(
        run("/tmp/lifecycle/launcher", ["app", "", '{"cmd":["/myapp"],"ports":[{"Port":8080,"Protocol":"tcp"}]}'],
            "APP/PROC/WEB", app_env(), 1024, user="root"))
    lrp.routes.routes["cf-router"] = ROUTES["cf-router"]
    lrp.modification_tag.epoch = "c7b3a1e2-5d4f-4a6b-9c8d-7e6f5a4b3c2d"
    lrp.modification_tag.index = 3
    lrp.check_definition.checks.append(checks.Check(
        http_check=checks.HTTPCheck(port=8080, request_timeout_ms=1000, path="/healthz")))
    lrp.check_definition.log_source = "HEALTH"
    lrp.metric_tags["source_id"].static = APP_GUID
    lrp.sidecars.append(sidecar.Sidecar(
        action=run("/usr/bin/envoy", ["-c", "/etc/envoy.yaml"], "PROXY", [], 1024, user="root"),
        disk_mb=0, memory_mb=32))
    lrp.log_rate_limit.bytes_per_second = -1
    return lrp


def staging_task_definition():
    """TaskRecipeBuilder#build_app_task with declarative asset downloads:
    the lifecycle a shared layer, the droplet an exclusive one."""
    d = task.TaskDefinition(
        root_fs="preloaded:cflinuxfs4",
        environment_variables=[ev("LANG", "en_US.UTF-8"), ev("VCAP_APPLICATION", '{"name":"dora"}')],
        disk_mb=1024,
        memory_mb=256,
        cpu_weight=10,
        log_source="APP/TASK/migrate",
        log_guid=APP_GUID,
        completion_callback_url=CALLBACK_URL,
        egress_rules=egress_rules()[:2],
        legacy_download_user="vcap",
        trusted_system_certificates_path="/etc/cf-system-certificates",
        placement_tags=["iso-seg-1"],
        max_pids=1024,
        image_layers=[lifecycle_layer(), droplet_layer()],
    )
    d.action.CopyFrom(run("/tmp/lifecycle/launcher", ["app", "bin/rake db:migrate", "{}"], "APP/TASK/migrate",
                          [ev("VCAP_SERVICES", "{}")], 16384))
    app_network(d.network, "task")
    d.certificate_properties.CopyFrom(certificate_properties())
    d.volume_mounts.append(volumes.VolumeMount(
        driver="smbdriver", container_dir="/data", mode="r",
        dedicated=volumes.DedicatedDevice(mounter_id="smb-mounter", mount_config='{"share":"//smb/share"}',
                                          device_config='{"version":"3.0"}')))
    d.log_rate_limit.bytes_per_second = -1
    for k, v in [("source_id", APP_GUID), ("organization_id", ORG_GUID), ("space_id", SPACE_GUID),
                 ("app_id", APP_GUID), ("organization_name", "MyOrg"), ("space_name", "MySpace"),
                 ("app_name", "dora")]:
        d.metric_tags[k].static = v
    d.volume_mounted_files.append(files.File(path="vcap_services", content="{}"))
    return d


def task_v2(t):
    """The task above as a `.r2` read answers it (format V2)."""
    d = t.task_definition
    layers_ = list(d.image_layers)
    del d.image_layers[:]
    d.cached_dependencies.append(cached.CachedDependency(
        name="buildpack-cflinuxfs4-lifecycle", to="/tmp/lifecycle", cache_key=LIFECYCLE_URL,
        **{"from": LIFECYCLE_URL}))
    original = actions.Action()
    original.CopyFrom(d.action)
    d.action.Clear()
    serial = d.action.serial_action
    parallel = serial.actions.add().parallel_action
    parallel.actions.append(download("droplet", DROPLET_URL, "/home/vcap", "sha256:" + DROPLET_SHA256, "vcap",
                                     "sha256", DROPLET_SHA256))
    serial.actions.append(original)
    assert len(layers_) == 2
    return t


def running_task():
    t = task.Task(task_guid=TASK_GUID, domain="cf-tasks", created_at=1700000000123456789,
                  updated_at=1700000001123456789, state=task.Task.Running, cell_id="cell-z1-0")
    t.task_definition.CopyFrom(staging_task_definition())
    return task_v2(t)


def failed_docker_task():
    t = task.Task(task_guid="e4d3c2b1-a09f-4e8d-7c6b-5a4938271605", domain="cf-tasks",
                  created_at=1700000000000000000, updated_at=1700000060000000000,
                  first_completed_at=1700000060000000000, state=task.Task.Completed, cell_id="cell-z2-1",
                  failed=True, failure_reason="APP/TASK/seed: Exited with status 3", rejection_count=1,
                  rejection_reason="insufficient resources: memory")
    d = t.task_definition
    d.root_fs = "docker:///cloudfoundry/diego-docker-app#latest"
    d.action.CopyFrom(run("/tmp/lifecycle/launcher", ["app", "/seed", "{}"], "APP/TASK/seed", [], 1024, user="root"))
    d.memory_mb = 128
    d.disk_mb = 256
    d.cpu_weight = 6
    d.log_source = "APP/TASK/seed"
    d.log_guid = APP_GUID
    d.completion_callback_url = CALLBACK_URL
    d.legacy_download_user = "vcap"
    d.image_username = "registry-user"
    d.image_password = "registry-secret"
    d.metric_tags["source_id"].static = APP_GUID
    return t


def actual_running(index, instance_guid):
    a = actual.ActualLRP(
        crash_count=0, state="RUNNING", since=1700000123456789012, presence=actual.ActualLRP.ORDINARY,
        routable=True, availability_zone="z1",
        actual_lrp_internal_routes=[actual.ActualLRPInternalRoute(hostname="dora.apps.internal")])
    a.actual_lrp_key.process_guid = PROCESS_GUID
    a.actual_lrp_key.index = index
    a.actual_lrp_key.domain = "cf-apps"
    a.actual_lrp_instance_key.instance_guid = instance_guid
    a.actual_lrp_instance_key.cell_id = "cell-z1-0"
    n = a.actual_lrp_net_info
    n.address = "10.0.16.4"
    n.ports.extend([
        actual.PortMapping(container_port=8080, host_port=61001, container_tls_proxy_port=61443,
                           host_tls_proxy_port=61002),
        actual.PortMapping(container_port=2222, host_port=61003, container_tls_proxy_port=61444,
                           host_tls_proxy_port=61004),
    ])
    n.instance_address = "10.255.97.12"
    n.preferred_address = actual.ActualLRPNetInfo.INSTANCE
    n.instance_ipv6_address = "fd00::c"
    a.modification_tag.epoch = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
    a.modification_tag.index = 2
    for k, v in [("source_id", APP_GUID), ("instance_id", str(index)), ("process_instance_id", instance_guid)]:
        a.metric_tags[k] = v
    return a


def actual_crashed(index):
    a = actual.ActualLRP(crash_count=4, crash_reason="APP/PROC/WEB: Exited with status 137 (out of memory)",
                         state="CRASHED", since=1700000200000000000, routable=False)
    a.actual_lrp_key.process_guid = PROCESS_GUID
    a.actual_lrp_key.index = index
    a.actual_lrp_key.domain = "cf-apps"
    a.actual_lrp_instance_key.SetInParent()
    a.actual_lrp_net_info.SetInParent()
    a.modification_tag.epoch = "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e"
    a.modification_tag.index = 9
    return a


def actual_unclaimed(index):
    a = actual.ActualLRP(state="UNCLAIMED", placement_error="found no compatible cell with placement tag \"iso-seg-1\"",
                         since=1700000300000000000, presence=actual.ActualLRP.ORDINARY, routable=False)
    a.actual_lrp_key.process_guid = PROCESS_GUID
    a.actual_lrp_key.index = index
    a.actual_lrp_key.domain = "cf-apps"
    a.actual_lrp_instance_key.SetInParent()
    a.actual_lrp_net_info.SetInParent()
    a.modification_tag.epoch = "c3d4e5f6-a7b8-4c9d-0e1f-2a3b4c5d6e7f"
    return a


def actual_evacuating(index, instance_guid):
    a = actual_running(index, instance_guid)
    a.presence = actual.ActualLRP.EVACUATING
    a.actual_lrp_instance_key.cell_id = "cell-z2-0"
    a.availability_zone = "z2"
    return a


def bbs_error(kind, message):
    return error.Error(type=kind, message=message)


def scheduling_info(process_guid, instances, annotation, drivers, routes):
    s = desired.DesiredLRPSchedulingInfo(annotation=annotation, instances=instances, PlacementTags=["iso-seg-1"])
    s.desired_lrp_key.process_guid = process_guid
    s.desired_lrp_key.domain = "cf-apps"
    s.desired_lrp_key.log_guid = APP_GUID
    s.desired_lrp_resource.memory_mb = 256
    s.desired_lrp_resource.disk_mb = 1024
    s.desired_lrp_resource.root_fs = "preloaded:cflinuxfs4"
    s.desired_lrp_resource.max_pids = 1024
    s.routes.SetInParent()
    for name in routes:
        s.routes.routes[name] = ROUTES[name]
    s.modification_tag.epoch = "d4e5f6a7-b8c9-4d0e-1f2a-3b4c5d6e7f80"
    s.modification_tag.index = 1
    s.volume_placement.SetInParent()
    s.volume_placement.driver_names.extend(drivers)
    return s


def lrp_update():
    """AppRecipeBuilder#build_app_lrp_update: instances, annotation, metric
    tags and routes (the SSH route kept)."""
    u = desired.DesiredLRPUpdate(instances=5, annotation="1700000500.25")
    for name, value in ROUTES.items():
        u.routes.routes[name] = value
    lrp_metric_tags(u.metric_tags)
    return u


def vectors():
    v = {}
    v["ping_response"] = ping.PingResponse(available=True)
    v["upsert_domain_request"] = domain.UpsertDomainRequest(domain="cf-apps", ttl=120)
    v["upsert_domain_response"] = domain.UpsertDomainResponse()
    v["desire_task_request"] = task_requests.DesireTaskRequest(
        task_definition=staging_task_definition(), task_guid=TASK_GUID, domain="cf-tasks")
    v["task_lifecycle_response"] = task_requests.TaskLifecycleResponse(
        error=bbs_error(error.Error.InvalidStateTransition, "Cannot transition from Completed to Completed"))
    v["task_guid_request"] = task_requests.TaskGuidRequest(task_guid=TASK_GUID)
    v["tasks_request"] = task_requests.TasksRequest(domain="cf-tasks")
    v["tasks_response"] = task_requests.TasksResponse(tasks=[running_task(), failed_docker_task()])
    v["task_by_guid_request"] = task_requests.TaskByGuidRequest(task_guid=TASK_GUID)
    v["task_response"] = task_requests.TaskResponse(task=failed_docker_task())
    v["task_response_not_found"] = task_requests.TaskResponse(
        error=bbs_error(error.Error.ResourceNotFound, "the requested resource could not be found"))
    v["desire_lrp_request"] = desired_requests.DesireLRPRequest(desired_lrp=app_lrp())
    v["desired_lrp_lifecycle_response"] = desired_requests.DesiredLRPLifecycleResponse(
        error=bbs_error(error.Error.ResourceExists, "the requested resource already exists"))
    v["desired_lrp_by_process_guid_request"] = desired_requests.DesiredLRPByProcessGuidRequest(
        process_guid=DOCKER_PROCESS_GUID)
    v["desired_lrp_response"] = desired_requests.DesiredLRPResponse(desired_lrp=docker_lrp_read())
    v["desired_lrps_request"] = desired_requests.DesiredLRPsRequest(domain="cf-apps")
    v["desired_lrp_scheduling_infos_response"] = desired_requests.DesiredLRPSchedulingInfosResponse(
        desired_lrp_scheduling_infos=[
            scheduling_info(PROCESS_GUID, 21, "1700000000.123456", ["nfsv3driver"], list(ROUTES)),
            scheduling_info(DOCKER_PROCESS_GUID, 0, "1700000100.5", [], []),
        ])
    v["update_desired_lrp_request"] = desired_requests.UpdateDesiredLRPRequest(
        process_guid=PROCESS_GUID, update=lrp_update())
    v["update_desired_lrp_request_scale_to_zero"] = desired_requests.UpdateDesiredLRPRequest(
        process_guid=PROCESS_GUID, update=desired.DesiredLRPUpdate(instances=0))
    v["remove_desired_lrp_request"] = desired_requests.RemoveDesiredLRPRequest(process_guid=PROCESS_GUID)
    retire = actual_requests.RetireActualLRPRequest()
    retire.actual_lrp_key.process_guid = PROCESS_GUID
    retire.actual_lrp_key.index = 1
    retire.actual_lrp_key.domain = "cf-apps"
    v["retire_actual_lrp_request"] = retire
    v["actual_lrp_lifecycle_response"] = actual_requests.ActualLRPLifecycleResponse(
        error=bbs_error(error.Error.ResourceNotFound, "the requested resource could not be found"))
    v["actual_lrps_request"] = actual_requests.ActualLRPsRequest(process_guid=PROCESS_GUID)
    with_index = actual_requests.ActualLRPsRequest(domain="cf-apps", cell_id="cell-z1-0", index=0)
    assert with_index.WhichOneof("optional_index") == "index"
    v["actual_lrps_request_index_zero"] = with_index
    v["actual_lrps_response"] = actual_requests.ActualLRPsResponse(actual_lrps=[
        actual_running(0, "7c6b5a49-3827-4160-9f8e-d7c6b5a49382"),
        actual_crashed(1),
        actual_unclaimed(2),
        actual_evacuating(3, "8d7c6b5a-4938-4271-a09f-e8d7c6b5a493"),
    ])
    v["actual_lrps_by_process_guids_request"] = actual_requests.ActualLRPsByProcessGuidsRequest(
        process_guids=[PROCESS_GUID, DOCKER_PROCESS_GUID])
    v["actual_lrps_by_process_guids_response"] = actual_requests.ActualLRPsByProcessGuidsResponse(actual_lrps=[
        actual_running(0, "7c6b5a49-3827-4160-9f8e-d7c6b5a49382"),
        actual_unclaimed(1),
    ])
    v["actual_lrps_by_process_guids_response_invalid"] = actual_requests.ActualLRPsByProcessGuidsResponse(
        error=bbs_error(error.Error.InvalidRequest, "process_guids must not be empty"))
    for name, number in error.Error.Type.items():
        v["error_%d" % number] = bbs_error(number, name)
    return v


def main():
    mode = sys.argv[2]
    built = vectors()
    if mode == "encode":
        out = {name: message.SerializeToString(deterministic=True).hex() for name, message in built.items()}
        print(json.dumps(out))
        return 0
    given = json.load(sys.stdin)
    failed = False
    if set(given) != set(built):
        failed = True
        print("names differ: %s" % sorted(set(given) ^ set(built)), file=sys.stderr)
    for name, expected in built.items():
        if name not in given:
            continue
        parsed = type(expected)()
        parsed.ParseFromString(bytes.fromhex(given[name]))
        if parsed != expected:
            failed = True
            print(f"{name}: Rust bytes decode to\n{parsed}\nexpected\n{expected}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
