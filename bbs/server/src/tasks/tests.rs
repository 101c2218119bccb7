use bbs_models::TaskDefinition;

use super::*;

const SECOND: i64 = 1_000_000_000;

fn request(guid: &str, domain: &str, callback: &str) -> DesireTaskRequest {
    DesireTaskRequest {
        task_definition: Some(TaskDefinition {
            root_fs: "preloaded:cflinuxfs4".into(),
            completion_callback_url: callback.into(),
            ..TaskDefinition::default()
        }),
        task_guid: guid.into(),
        domain: domain.into(),
    }
}

fn state(tasks: &Tasks, guid: &str) -> Option<State> {
    tasks
        .get(guid)
        .ok()
        .map(|task| State::try_from(task.state).unwrap())
}

#[test]
fn a_desired_task_is_pending_and_listed() {
    let tasks = Tasks::new();
    tasks.desire(request("t1", "cf-tasks", ""), 5).unwrap();
    tasks
        .desire(request("t2", "cf-app-staging", ""), 6)
        .unwrap();
    let t1 = tasks.get("t1").unwrap();
    assert_eq!(t1.state, State::Pending as i32);
    assert_eq!(
        (t1.created_at, t1.updated_at, t1.domain.as_str()),
        (5, 5, "cf-tasks")
    );
    let guids = |list: Vec<Task>| list.into_iter().map(|t| t.task_guid).collect::<Vec<_>>();
    assert_eq!(guids(tasks.list("", "")), ["t1", "t2"]);
    assert_eq!(guids(tasks.list("cf-tasks", "")), ["t1"]);
    assert!(tasks.list("", "cell-1").is_empty());
}

#[test]
fn a_second_desire_of_a_guid_exists() {
    let tasks = Tasks::new();
    tasks.desire(request("t1", "cf-tasks", ""), 1).unwrap();
    assert!(matches!(
        tasks.desire(request("t1", "other", ""), 2),
        Err(Error::Exists)
    ));
    assert_eq!(tasks.get("t1").unwrap().domain, "cf-tasks");
}

#[test]
fn cancel_completes_once() {
    let tasks = Tasks::new();
    assert!(matches!(tasks.cancel("nope", 1), Err(Error::NotFound)));
    tasks.desire(request("t1", "cf-tasks", ""), 1).unwrap();
    let cancelled = tasks.cancel("t1", 7).unwrap();
    assert_eq!(cancelled.state, State::Completed as i32);
    assert!(cancelled.failed);
    assert_eq!(cancelled.failure_reason, "task was cancelled");
    assert_eq!((cancelled.first_completed_at, cancelled.updated_at), (7, 7));
    let again = tasks.cancel("t1", 8).unwrap_err();
    assert_eq!(
        again.to_string(),
        "Cannot transition from Completed to Completed"
    );
}

#[test]
fn a_callback_resolves_then_deletes() {
    let tasks = Tasks::new();
    tasks.desire(request("quiet", "cf-tasks", ""), 1).unwrap();
    tasks
        .desire(
            request(
                "t1",
                "cf-tasks",
                "https://cc/internal/v4/tasks/t1/completed",
            ),
            1,
        )
        .unwrap();
    // Only completed tasks with a callback resolve.
    assert!(tasks.start_resolving("t1", 2).is_none());
    tasks.cancel("quiet", 2).unwrap();
    assert!(tasks.start_resolving("quiet", 2).is_none());
    tasks.cancel("t1", 2).unwrap();
    let resolving = tasks.start_resolving("t1", 3).unwrap();
    assert_eq!(resolving.state, State::Resolving as i32);
    assert!(
        tasks.start_resolving("t1", 3).is_none(),
        "one delivery at a time"
    );
    let again = tasks.cancel("t1", 4).unwrap_err();
    assert_eq!(
        again.to_string(),
        "Cannot transition from Resolving to Completed"
    );
    tasks.resolved("t1");
    assert_eq!(state(&tasks, "t1"), None);
    // A task that is not resolving is not deleted by a late answer.
    tasks.resolved("quiet");
    assert_eq!(state(&tasks, "quiet"), Some(State::Completed));
}

#[test]
fn convergence_expires_kicks_and_deletes() {
    let timing = Timing::default();
    let tasks = Tasks::new();
    let callback = "https://cc/internal/v4/tasks/x/completed";
    tasks
        .desire(request("old", "cf-tasks", callback), 0)
        .unwrap();
    tasks
        .desire(request("young", "cf-tasks", callback), 10 * 60 * SECOND)
        .unwrap();
    tasks
        .desire(request("stuck", "cf-tasks", callback), 0)
        .unwrap();
    tasks.cancel("stuck", 0).unwrap();
    tasks.start_resolving("stuck", 0).unwrap();

    // 10 s: nothing is due yet.
    assert!(tasks.converge(10 * SECOND, &timing).is_empty());
    assert_eq!(state(&tasks, "stuck"), Some(State::Resolving));

    // 31 s: the unanswered callback is completed again and kicked.
    assert_eq!(tasks.converge(31 * SECOND, &timing), ["stuck"]);
    assert_eq!(state(&tasks, "stuck"), Some(State::Completed));

    // 30 min: the old pending task fails, its callback is due; the stuck
    // one, completed for longer than 2 min, is gone.
    let now = 30 * 60 * SECOND;
    assert_eq!(tasks.converge(now, &timing), ["old"]);
    let old = tasks.get("old").unwrap();
    assert_eq!(old.state, State::Completed as i32);
    assert_eq!(old.failure_reason, "not started within time limit");
    assert_eq!(state(&tasks, "stuck"), None);
    assert_eq!(state(&tasks, "young"), Some(State::Pending));
}
