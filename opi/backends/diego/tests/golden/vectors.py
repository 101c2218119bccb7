"""Golden vectors for opi-diego's BBS models, from Debian's python3-protobuf.

Usage: vectors.py GENERATED_DIR encode   -> JSON {name: hex} on stdout
       vectors.py GENERATED_DIR decode   <- JSON {name: hex} on stdin;
                                            exits 1 unless each decodes to
                                            exactly the message built here.

GENERATED_DIR holds the *_pb2.py that `protoc --python_out` made from the
same proto/models/*.proto the Rust side is built from. The messages are built
here independently of the Rust code, field by field.
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

import actions_pb2  # noqa: E402
import check_definition_pb2  # noqa: E402
import desired_lrp_pb2  # noqa: E402
import environment_variables_pb2  # noqa: E402
import metric_tags_pb2  # noqa: E402
import task_pb2  # noqa: E402


def run_action():
    run = actions_pb2.RunAction(
        path="/bin/sh",
        args=["-c", "bundle exec rackup -p $PORT"],
        dir="/home/vcap/app",
        env=[environment_variables_pb2.EnvironmentVariable(name="GREETING", value="héllo")],
        user="vcap",
        log_source="APP/PROC/WEB",
    )
    run.resource_limits.nofile = 16384
    return actions_pb2.Action(run_action=run)


def desired_lrp():
    lrp = desired_lrp_pb2.DesiredLRP(
        process_guid="app-guid-v1",
        domain="cf-apps",
        root_fs="docker://127.0.0.1:8087/cloudfoundry/droplet#abc123",
        instances=3,
        action=run_action(),
        start_timeout_ms=60000,
        disk_mb=1024,
        memory_mb=256,
        cpu_weight=20,
        ports=[8080, 9090],
        log_source="CELL",
        log_guid="app-guid",
        annotation="1700000000.0",
        PlacementTags=["iso-seg-1"],
        image_username="user",
        image_password="secret",
        update_strategy=desired_lrp_pb2.DesiredLRP.RECREATE,
    )
    lrp.routes.routes["cf-router"] = b'[{"hostnames":["dora.example.com"],"port":8080}]'
    lrp.routes.routes["cube-lrp-id"] = b'{"guid":"app-guid","version":"v1"}'
    lrp.check_definition.checks.append(
        check_definition_pb2.Check(
            http_check=check_definition_pb2.HTTPCheck(port=8080, request_timeout_ms=1500, path="/healthz")
        )
    )
    lrp.check_definition.log_source = "HEALTH_CHECK"
    lrp.metric_tags["source_id"].static = "app-guid"
    lrp.metric_tags["instance_id"].dynamic = metric_tags_pb2.MetricTagValue.INDEX
    return lrp


def task():
    t = task_pb2.Task(
        task_guid="task-guid",
        domain="cf-tasks",
        created_at=1700000000123456789,
        state=task_pb2.Task.Completed,
        cell_id="cell-z1-0",
        failed=True,
        failure_reason="Exited with status 3",
        rejection_count=-1,
    )
    d = t.task_definition
    d.root_fs = "docker:///library/busybox#1.36"
    d.action.CopyFrom(run_action())
    d.memory_mb = 64
    d.disk_mb = 128
    d.cpu_weight = 10
    d.log_source = "APP/TASK/migrate"
    d.log_guid = "app-guid"
    d.annotation = "http://127.0.0.1:9/internal/v4/tasks/task-guid/completed"
    d.environment_variables.append(environment_variables_pb2.EnvironmentVariable(name="A", value="1"))
    d.metric_tags["app_name"].static = "dora"
    return t


VECTORS = {"desired_lrp": desired_lrp, "task": task}


def main():
    mode = sys.argv[2]
    if mode == "encode":
        out = {name: make().SerializeToString(deterministic=True).hex() for name, make in VECTORS.items()}
        print(json.dumps(out))
        return 0
    given = json.load(sys.stdin)
    failed = False
    for name, make in VECTORS.items():
        expected = make()
        parsed = type(expected)()
        parsed.ParseFromString(bytes.fromhex(given[name]))
        if parsed != expected:
            failed = True
            print(f"{name}: Rust bytes decode to\n{parsed}\nexpected\n{expected}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
