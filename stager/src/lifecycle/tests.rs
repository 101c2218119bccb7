use std::path::Path;

use super::supply::{Step, plan};
use super::testing::{buildpack, logging};
use super::*;

fn env_with_log(log: &Path) -> Vec<(String, String)> {
    vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("LOG".into(), log.display().to_string()),
    ]
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

/// A full buildpack whose every script logs; `detect` exits `detect_code`.
fn full(root: &Path, name: &str, detect_code: i32) -> Buildpack {
    let release = format!(
        "echo \"{name} release $*\" >> \"$LOG\"\nprintf -- '---\\ndefault_process_types:\\n  web: {name}-web\\n'"
    );
    buildpack(
        root,
        name,
        &[
            (
                "detect",
                &format!(
                    "echo \"{name} detect $*\" >> \"$LOG\"\necho {name}-detected\nexit {detect_code}"
                ),
            ),
            ("supply", &logging(name, "supply", 0)),
            ("finalize", &logging(name, "finalize", 0)),
            ("release", &release),
        ],
    )
}

#[tokio::test]
async fn detection_stops_at_the_first_match_and_only_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let bps = vec![
        full(&dir.path().join("bps"), "a", 1),
        full(&dir.path().join("bps"), "b", 0),
        full(&dir.path().join("bps"), "c", 0),
    ];
    let layout = Layout::new(&dir.path().join("ws"));
    let staged = stage(&layout, &bps, &env_with_log(&log)).await.unwrap();
    assert_eq!(
        log_lines(&log),
        [
            "a detect",
            "b detect",
            "b supply",
            "b finalize",
            "b release"
        ]
    );
    assert_eq!(staged.detected_buildpack, "b-detected");
    assert_eq!(staged.buildpack_key, "b-key");
    assert_eq!(staged.start_command(), "b-web");
    assert_eq!(staged.buildpacks.len(), 1);
}

#[tokio::test]
async fn named_buildpacks_skip_detection_supply_then_finalize_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let mut bps = vec![
        full(&dir.path().join("bps"), "a", 1),
        full(&dir.path().join("bps"), "b", 1),
        full(&dir.path().join("bps"), "c", 1),
    ];
    for bp in &mut bps {
        bp.skip_detect = true;
    }
    let layout = Layout::new(&dir.path().join("ws"));
    let staged = stage(&layout, &bps, &env_with_log(&log)).await.unwrap();
    assert_eq!(
        log_lines(&log),
        [
            "a supply",
            "b supply",
            "c supply",
            "c finalize",
            "c release"
        ]
    );
    // Arguments follow the contract: supply gets <build> <cache> <deps> <index>.
    let text = std::fs::read_to_string(&log).unwrap();
    let b_supply = text.lines().find(|l| l.starts_with("b supply")).unwrap();
    assert!(b_supply.ends_with(&format!(
        "{} {} {} 1",
        layout.build_dir.display(),
        layout.cache_dir.display(),
        layout.deps_dir.display()
    )));
    let c_finalize = text.lines().find(|l| l.starts_with("c finalize")).unwrap();
    assert!(c_finalize.ends_with(&format!(" 2 {}", layout.profile_dir.display())));
    assert!(layout.deps_dir.join("0").is_dir() && layout.deps_dir.join("2").is_dir());
    assert_eq!(staged.buildpacks.len(), 3);
    assert_eq!(staged.detected_buildpack, "c");
}

#[tokio::test]
async fn legacy_compile_runs_when_there_is_no_finalize() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let bp = buildpack(
        &dir.path().join("bps"),
        "old",
        &[
            ("detect", "exit 0"),
            ("compile", &logging("old", "compile", 0)),
            ("release", "echo '--- {}'"),
        ],
    );
    let layout = Layout::new(&dir.path().join("ws"));
    std::fs::create_dir_all(&layout.build_dir).unwrap();
    std::fs::write(layout.build_dir.join("Procfile"), "web: ./start\n").unwrap();
    let staged = stage(&layout, &[bp], &env_with_log(&log)).await.unwrap();
    assert_eq!(log_lines(&log), ["old compile"]);
    assert_eq!(staged.start_command(), "./start", "the Procfile gives web");
    assert_eq!(
        staged.detected_buildpack, "old",
        "empty detect output: the name"
    );
}

#[tokio::test]
async fn procfile_overrides_release() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let bp = full(&dir.path().join("bps"), "x", 0);
    let layout = Layout::new(&dir.path().join("ws"));
    std::fs::create_dir_all(&layout.build_dir).unwrap();
    std::fs::write(layout.build_dir.join("Procfile"), "worker: ./w\n").unwrap();
    let staged = stage(&layout, &[bp], &env_with_log(&log)).await.unwrap();
    assert_eq!(staged.process_types["web"], "x-web");
    assert_eq!(staged.process_types["worker"], "./w");
}

#[tokio::test]
async fn no_detection_is_no_app_detected() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let bps = vec![
        full(&dir.path().join("bps"), "a", 1),
        full(&dir.path().join("bps"), "b", 1),
    ];
    let layout = Layout::new(&dir.path().join("ws"));
    let error = stage(&layout, &bps, &env_with_log(&log)).await.unwrap_err();
    assert_eq!(error.id, ids::NO_APP_DETECTED);
    assert!(error.message.contains("a, b"), "{}", error.message);
    let error = stage(&layout, &[], &env_with_log(&log)).await.unwrap_err();
    assert_eq!(error.id, ids::NO_APP_DETECTED);
}

#[tokio::test]
async fn a_failing_finalize_names_buildpack_script_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let bp = buildpack(
        &dir.path().join("bps"),
        "broken",
        &[
            ("detect", "exit 0"),
            ("finalize", "echo 'about to fail' >&2; exit 7"),
            ("release", &logging("broken", "release", 0)),
        ],
    );
    let layout = Layout::new(&dir.path().join("ws"));
    let error = stage(&layout, &[bp], &env_with_log(&log))
        .await
        .unwrap_err();
    assert_eq!(error.id, ids::COMPILE_FAILED);
    assert!(error.message.contains("broken"), "{}", error.message);
    assert!(error.message.contains("bin/finalize"), "{}", error.message);
    assert!(error.message.contains("status 7"), "{}", error.message);
    assert!(log_lines(&log).is_empty(), "release must not run");
}

#[tokio::test]
async fn a_failing_release_is_release_failed() {
    let dir = tempfile::tempdir().unwrap();
    let bp = buildpack(
        &dir.path().join("bps"),
        "rel",
        &[
            ("detect", "exit 0"),
            ("finalize", "exit 0"),
            ("release", "exit 3"),
        ],
    );
    let layout = Layout::new(&dir.path().join("ws"));
    let error = stage(&layout, &[bp], &env_with_log(&dir.path().join("log")))
        .await
        .unwrap_err();
    assert_eq!(error.id, ids::RELEASE_FAILED);
    assert!(error.message.contains("rel") && error.message.contains("status 3"));
}

#[test]
fn plan_orders_scripts_and_refuses_impossible_combinations() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let supply_only = buildpack(root, "s", &[("supply", "exit 0")]);
    let both = buildpack(root, "f", &[("supply", "exit 0"), ("finalize", "exit 0")]);
    let finalize_only = buildpack(root, "fo", &[("finalize", "exit 0")]);
    let compile = buildpack(root, "c", &[("compile", "exit 0")]);
    assert_eq!(
        plan(&[supply_only.clone(), both.clone()]).unwrap(),
        [Step::Supply(0), Step::Supply(1), Step::Finalize(1)]
    );
    assert_eq!(
        plan(std::slice::from_ref(&finalize_only)).unwrap(),
        [Step::Finalize(0)]
    );
    assert_eq!(
        plan(std::slice::from_ref(&compile)).unwrap(),
        [Step::Compile(0)]
    );
    let error = plan(&[finalize_only.clone(), both.clone()]).unwrap_err();
    assert!(error.message.contains("fo") && error.message.contains("bin/supply"));
    let error = plan(&[supply_only.clone(), compile]).unwrap_err();
    assert!(error.message.contains("bin/finalize"), "{}", error.message);
    assert!(plan(&[supply_only]).is_err(), "the last one must finalize");
    assert!(plan(&[]).is_err());
}

#[tokio::test]
async fn profile_scripts_of_deps_are_collected_and_droplet_is_laid_out_like_cf() {
    let dir = tempfile::tempdir().unwrap();
    let bp = buildpack(
        &dir.path().join("bps"),
        "p",
        &[
            ("detect", "exit 0"),
            (
                "supply",
                "mkdir -p \"$3/$4/profile.d\" && echo 'export A=1' > \"$3/$4/profile.d/a.sh\"",
            ),
            (
                "finalize",
                "echo 'export B=2' > \"$5/b.sh\"; echo built > \"$1/built.txt\"",
            ),
            (
                "release",
                "printf 'default_process_types:\\n  web: ./go\\n'",
            ),
        ],
    );
    let ws = dir.path().join("ws");
    let layout = Layout::new(&ws);
    let staged = stage(&layout, &[bp], &env_with_log(&dir.path().join("log")))
        .await
        .unwrap();
    assert!(layout.profile_dir.join("0_a.sh").is_file());
    assert!(layout.profile_dir.join("b.sh").is_file());
    let droplet = droplet::write(&layout, &staged, &ws.join("droplet.tgz")).unwrap();
    assert_eq!(droplet.sha256.len(), 64);
    let bytes = std::fs::read(&droplet.path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut names = Vec::new();
    let mut info = String::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        if name.ends_with("staging_info.yml") {
            use std::io::Read;
            entry.read_to_string(&mut info).unwrap();
        }
        names.push(name);
    }
    for expected in [
        "./app/built.txt",
        "./deps/0/profile.d/a.sh",
        "./profile.d/0_a.sh",
        "./profile.d/b.sh",
        "./tmp/",
        "./logs/",
        "./staging_info.yml",
    ] {
        assert!(
            names
                .iter()
                .any(|n| n == expected || n == expected.trim_start_matches("./")),
            "{expected} missing from {names:?}"
        );
    }
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["detected_buildpack"], "p");
    assert_eq!(info["start_command"], "./go");
}
