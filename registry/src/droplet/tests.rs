use super::*;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

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

// ---- the pipeline: threads, channels and the segmented gzip ----

/// Hands out at most `step` bytes per read, like a slow network body.
struct Trickle<R> {
    inner: R,
    step: usize,
}

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step);
        self.inner.read(&mut buf[..n])
    }
}

/// A droplet spanning many pipeline chunks and gzip segments: random files
/// (stored) and text files (compressed).
fn large() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..5 << 18)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let text: Vec<u8> = b"puts 'hello'\n"
        .iter()
        .cycle()
        .take(1 << 20)
        .copied()
        .collect();
    tgz(&[
        E::Dir("./app/"),
        E::File("./app/a.jar", &random),
        E::File("./app/a.rb", &text),
        E::File("./app/b.jar", &random[1000..]),
    ])
}

#[test]
fn pipelined_conversion_does_not_depend_on_how_input_arrives() {
    let droplet = large();
    let (layer, out) = run(&droplet, &Limits::default()).unwrap();
    for step in [65_536, 1000] {
        let mut again = Vec::new();
        let trickled = Trickle {
            inner: droplet.as_slice(),
            step,
        };
        assert_eq!(
            convert(trickled, &mut again, &Limits::default()).unwrap(),
            layer
        );
        assert_eq!(again, out, "read size {step}");
    }
    // The layer unpacks to the tar its diff id names, and the hashes cover
    // the whole droplet and the whole layer.
    let mut tar = Vec::new();
    GzDecoder::new(out.as_slice())
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(layer.diff_id, Digest::of(&tar));
    assert_eq!(layer.digest, Digest::of(&out));
    assert_eq!(layer.size, out.len() as u64);
    assert_eq!(layer.droplet_sha256, hex::encode(Sha256::digest(&droplet)));
    // Random files are stored, not grown by static Huffman codes (+5 %).
    let random = 2 * (5 << 18) - 1000;
    assert!(
        out.len() < random + random / 50,
        "layer is {} bytes",
        out.len()
    );
}

#[test]
fn the_tar_rewrite_is_unchanged_by_the_pipeline() {
    // Pinned: how the layer is compressed may change, the tar it holds (and
    // so the diff id of a droplet) must not.
    let (layer, _) = run(&good(), &Limits::default()).unwrap();
    assert_eq!(
        layer.diff_id.to_string(),
        "sha256:e8694c5ad18c6a177473ce1ae6d918dad939bbeedf17d425fa31914ce81f3ed2"
    );
}

#[test]
fn a_refused_droplet_stops_reading_an_endless_body() {
    let mut hostile = tgz(&[E::File("../escape", b"x")]);
    // Then bytes forever: the read stage must stop, not wait for the end.
    hostile.extend_from_slice(&[0; 4096]);
    let endless = hostile.as_slice().chain(io::repeat(0));
    let limits = Limits {
        max_compressed: u64::MAX,
        ..Limits::default()
    };
    let result = convert(endless, io::sink(), &limits);
    assert!(
        matches!(result, Err(Error::DropletInvalid(_))),
        "{result:?}"
    );
}

#[test]
fn an_endless_gzip_bomb_trips_the_unpacked_limit() {
    // A gzip member whose deflate data never ends: blocks of zeros forever.
    let header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut block = Vec::with_capacity(1 << 16);
    flate2::Compress::new(Compression::fast(), false)
        .compress_vec(&[0; 1 << 20], &mut block, flate2::FlushCompress::Sync)
        .unwrap();
    let endless = header.as_slice().chain(Repeat(block, 0));
    let limits = Limits {
        max_unpacked: 16 << 20,
        max_compressed: u64::MAX,
        ..Limits::default()
    };
    let result = convert(endless, io::sink(), &limits);
    assert!(matches!(result, Err(Error::TooLarge(_))), "{result:?}");
}

/// Repeats a byte string forever.
struct Repeat(Vec<u8>, usize);

impl Read for Repeat {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.0.len() - self.1);
        buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
        self.1 = (self.1 + n) % self.0.len();
        Ok(n)
    }
}

/// Fails every write, like a full disk.
struct Full;

impl Write for Full {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("no space left on device"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_output_stops_the_conversion_with_its_error() {
    let result = convert(large().as_slice(), Full, &Limits::default());
    let Err(Error::Storage(why)) = result else {
        panic!("expected a storage error, got {result:?}")
    };
    assert!(why.contains("no space"), "{why}");
}
