use super::*;
use flate2::read::GzDecoder;
use proptest::prelude::*;

/// One entry of a test droplet; paths are written raw, so hostile names survive.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Special(&'a str, EntryType),
}

fn raw_header(path: &str, kind: EntryType, size: u64, link: &str) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    let gnu = header.as_gnu_mut().unwrap();
    gnu.name[..path.len()].copy_from_slice(path.as_bytes());
    gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_cksum();
    header
}

fn tgz(entries: &[E<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for entry in entries {
        let (header, data): (Header, &[u8]) = match *entry {
            E::File(p, d) => (raw_header(p, EntryType::Regular, d.len() as u64, ""), d),
            E::Dir(p) => (raw_header(p, EntryType::Directory, 0, ""), b""),
            E::Symlink(p, t) => (raw_header(p, EntryType::Symlink, 0, t), b""),
            E::Hardlink(p, t) => (raw_header(p, EntryType::Link, 0, t), b""),
            E::Special(p, k) => (raw_header(p, k, 0, ""), b""),
        };
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn run(droplet: &[u8], limits: &Limits) -> Result<(Layer, Vec<u8>), Error> {
    let mut out = Vec::new();
    convert(droplet, &mut out, limits).map(|layer| (layer, out))
}

fn good() -> Vec<u8> {
    tgz(&[
        E::Dir("./"),
        E::Dir("./app/"),
        E::File("./app/run.sh", b"#!/bin/sh\necho hi\n"),
        E::Dir("./app/lib"),
        E::File("./app/lib/x.so", b"elf"),
        E::Symlink("./app/current", "lib"),
        E::Symlink("./app/home", "/home/vcap/app"),
        E::Hardlink("./app/lib/y.so", "./app/lib/x.so"),
        E::File(
            "./staging_info.yml",
            br#"{"detected_buildpack":"binary","start_command":"./run.sh"}"#,
        ),
    ])
}

#[test]
fn reroots_a_droplet_under_home_vcap_owned_by_vcap() {
    let droplet = good();
    let (layer, out) = run(&droplet, &Limits::default()).unwrap();
    assert_eq!(layer.digest, Digest::of(&out));
    assert_eq!(layer.size, out.len() as u64);
    assert_eq!(layer.droplet_sha256, hex::encode(Sha256::digest(&droplet)));
    assert_eq!(layer.droplet_sha1, hex::encode(Sha1::digest(&droplet)));
    assert_eq!(layer.start_command.as_deref(), Some("./run.sh"));

    let mut plain = Vec::new();
    GzDecoder::new(out.as_slice())
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(layer.diff_id, Digest::of(&plain));

    let mut archive = tar::Archive::new(plain.as_slice());
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let header = entry.header();
        if path != "home/" {
            assert_eq!(
                (header.uid().unwrap(), header.gid().unwrap()),
                (2000, 2000),
                "{path}"
            );
            assert_eq!(header.username().unwrap(), Some("vcap"));
        }
        if path == "home/vcap/app/run.sh" {
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            assert_eq!(body, "#!/bin/sh\necho hi\n");
        }
        if path == "home/vcap/app/lib/y.so" {
            assert_eq!(
                entry.link_name().unwrap().unwrap().to_str(),
                Some("home/vcap/app/lib/x.so")
            );
        }
        seen.push(path);
    }
    assert_eq!(
        seen,
        [
            "home/",
            "home/vcap/",
            "home/vcap/app/",
            "home/vcap/app/run.sh",
            "home/vcap/app/lib/",
            "home/vcap/app/lib/x.so",
            "home/vcap/app/current",
            "home/vcap/app/home",
            "home/vcap/app/lib/y.so",
            "home/vcap/staging_info.yml",
        ]
    );
}

#[test]
fn conversion_is_deterministic() {
    let droplet = good();
    let (a, out_a) = run(&droplet, &Limits::default()).unwrap();
    let (b, out_b) = run(&droplet, &Limits::default()).unwrap();
    assert_eq!(a, b);
    assert_eq!(out_a, out_b);
}

fn refused(entries: &[E<'_>]) -> String {
    match run(&tgz(entries), &Limits::default()) {
        Err(Error::DropletInvalid(why)) => why,
        other => panic!("expected DropletInvalid, got {other:?}"),
    }
}

#[test]
fn refuses_hostile_entries() {
    let cases: Vec<(Vec<E<'_>>, &str)> = vec![
        (vec![E::File("../etc/passwd", b"x")], "`..`"),
        (vec![E::File("app/../../x", b"x")], "`..`"),
        (vec![E::File("/etc/passwd", b"x")], "absolute"),
        (
            vec![E::Symlink("app/evil", "../../..")],
            "leaves the droplet root",
        ),
        (vec![E::Symlink("evil", "..")], "leaves the droplet root"),
        (vec![E::Symlink("etc", "/etc")], "leaves the droplet root"),
        (
            vec![E::Symlink("v", "/home/vcapx")],
            "leaves the droplet root",
        ),
        (vec![E::File("a", b"x"), E::Hardlink("b", "../a")], "`..`"),
        (vec![E::Hardlink("b", "/etc/shadow")], "absolute"),
        (vec![E::Hardlink("b", "nothing")], "earlier file"),
        (
            vec![E::Special("dev/sda", EntryType::Block)],
            "block device",
        ),
        (vec![E::Special("tty", EntryType::Char)], "character device"),
        (vec![E::Special("pipe", EntryType::Fifo)], "FIFO"),
        (vec![E::File("a", b"x"), E::File("./a", b"y")], "duplicate"),
        (
            vec![E::Symlink("l", "/home/vcap/app"), E::File("l/x", b"x")],
            "through the symlink",
        ),
        (
            vec![E::Symlink("a", "/home/vcap"), E::Symlink("b", "a/..")],
            "climbs out",
        ),
        (
            vec![E::Symlink("b", "q/.."), E::Symlink("q", "/home/vcap")],
            "replaces a directory",
        ),
    ];
    for (entries, expected) in cases {
        let why = refused(&entries);
        assert!(
            why.contains(expected),
            "{why:?} should mention {expected:?}"
        );
    }
}

#[test]
fn refuses_what_is_not_a_tgz() {
    for bad in [b"plain text, not gzip".to_vec(), Vec::new()] {
        assert!(matches!(
            run(&bad, &Limits::default()),
            Err(Error::DropletInvalid(_))
        ));
    }
    let mut truncated = good();
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        run(&truncated, &Limits::default()),
        Err(Error::DropletInvalid(_))
    ));
}

#[test]
fn stops_gzip_bombs_and_oversized_droplets() {
    let zeros = vec![0u8; 8 << 20];
    let bomb = tgz(&[E::File("app/zeros", &zeros)]);
    assert!(
        bomb.len() < 64 << 10,
        "the bomb compresses well: {}",
        bomb.len()
    );
    let limits = Limits {
        max_unpacked: 1 << 20,
        ..Limits::default()
    };
    let Err(Error::TooLarge(why)) = run(&bomb, &limits) else {
        panic!("bomb accepted")
    };
    assert!(why.contains("limit"), "{why}");

    let limits = Limits {
        max_compressed: 100,
        ..Limits::default()
    };
    assert!(matches!(run(&good(), &limits), Err(Error::TooLarge(_))));

    let limits = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    assert!(matches!(run(&good(), &limits), Err(Error::TooLarge(_))));
}

#[test]
fn long_names_survive_re_rooting() {
    let long = format!("app/{}/file", "d".repeat(150));
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mut header = Header::new_gnu();
    header.set_size(2);
    header.set_mode(0o644);
    builder.append_data(&mut header, &long, &b"ok"[..]).unwrap();
    let droplet = builder.into_inner().unwrap().finish().unwrap();
    let (_, out) = run(&droplet, &Limits::default()).unwrap();
    let mut archive = tar::Archive::new(GzDecoder::new(out.as_slice()));
    let paths: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(paths.contains(&format!("home/vcap/{long}")), "{paths:?}");
}

/// An independent model: a relative target from a directory at `depth`
/// escapes iff some prefix climbs above the root.
fn escapes(depth: usize, parts: &[&str]) -> bool {
    let mut depth = depth as i64;
    for part in parts {
        match *part {
            ".." => depth -= 1,
            "." | "" => {}
            _ => depth += 1,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

proptest! {
    #[test]
    fn rerooted_paths_never_climb(parts in proptest::collection::vec(prop_oneof!["a", "b", "\\.", "\\.\\.", "", "[a-z]{1,3}"], 0..8), absolute in any::<bool>()) {
        let path = format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"));
        match reroot(path.as_bytes()) {
            Ok(Some(rerooted)) => {
                prop_assert!(!rerooted.starts_with('/'));
                for part in rerooted.split('/') {
                    prop_assert!(!matches!(part, "" | "." | ".."));
                }
            }
            Ok(None) => prop_assert!(parts.iter().all(|p| matches!(p.as_str(), "" | "."))),
            Err(_) => prop_assert!(path.starts_with('/') || parts.iter().any(|p| p == "..")),
        }
    }

    #[test]
    fn symlinks_are_accepted_iff_they_stay_inside(dir in proptest::collection::vec("[a-c]", 0..4), target in proptest::collection::vec(prop_oneof!["[a-c]", "\\.\\.", "\\."], 1..7)) {
        let mut path = dir.clone();
        path.push("link".to_owned());
        let path = path.join("/");
        let parts: Vec<&str> = target.iter().map(String::as_str).collect();
        let mut tree = Tree::default();
        let accepted = tree.check_symlink(&path, &parts.join("/")).is_ok();
        prop_assert_eq!(accepted, !escapes(dir.len(), &parts));
    }
}
