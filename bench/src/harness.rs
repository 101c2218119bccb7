//! What every scenario uses: child `cube` processes, free ports, CPU time,
//! latency statistics and the result table.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The release `cube` binary next to this benchmark binary, built first if
/// missing (`cargo run -p cube-bench --release` does not build it).
pub fn cube_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me.parent().context("benchmark binary has no directory")?;
    let cube = dir.join("cube");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "cube"])
        .current_dir(workspace_root())
        .status()
        .context("cannot run cargo to build the cube binary")?;
    if !status.success() {
        bail!("building the cube binary failed");
    }
    if !cube.exists() {
        bail!("{} does not exist after building", cube.display());
    }
    Ok(cube)
}

/// The workspace root (the bench crate's parent).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A free port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A child process killed when dropped.
pub struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    /// Starts `program args…` with its output discarded.
    pub fn spawn(name: &str, program: &Path, args: &[String]) -> anyhow::Result<Self> {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {name} ({})", program.display()))?;
        Ok(Self {
            child,
            name: name.to_owned(),
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) until `url` answers 2xx.
    pub async fn wait_ready(&mut self, url: &str, patience: Duration) -> anyhow::Result<()> {
        let http = client()?;
        let deadline = Instant::now() + patience;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("{} exited early with {status}", self.name);
            }
            if let Ok(response) = http.get(url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} not ready at {url} within {patience:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reqwest client for loopback benchmarking.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(opi::http::http_client_builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// CPU time (user + system) this process has used so far.
pub fn own_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let user = usage.user_time();
            let system = usage.system_time();
            let micros = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
            };
            micros(user) + micros(system)
        }
        Err(_) => Duration::ZERO,
    }
}

/// CPU time (user + system) process `pid` has used so far, from
/// `/proc/<pid>/stat` (in clock ticks of 10 ms).
pub fn proc_cpu(pid: u32) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command (which may hold spaces) in parentheses.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the line: 12 and 13 here.
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(utime + stime)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Resident set size of process `pid`, in bytes (from /proc).
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Latency percentiles of a sample.
#[derive(Debug, Clone, Copy)]
pub struct Latencies {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

/// Runs `op` on each of `items`, `concurrency` at a time: the wall time of
/// the whole run and each operation's own time (from its first poll), or
/// the first error.
pub async fn timed_all<I, F, Fut, E>(
    items: I,
    concurrency: usize,
    mut op: F,
) -> Result<(Duration, Vec<Duration>), E>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    use futures::StreamExt;
    let started = Instant::now();
    let results: Vec<Result<Duration, E>> = futures::stream::iter(items)
        .map(|item| {
            let operation = op(item);
            async move {
                let at = Instant::now();
                operation.await.map(|()| at.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let samples = results.into_iter().collect::<Result<Vec<_>, E>>()?;
    Ok((wall, samples))
}

/// Percentiles of `samples` (sorted in place).
pub fn latencies(samples: &mut [Duration]) -> Latencies {
    samples.sort_unstable();
    let at = |q: f64| {
        if samples.is_empty() {
            return Duration::ZERO;
        }
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index.min(samples.len() - 1)]
    };
    Latencies {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// One row of a result table.
pub struct Row {
    /// What was measured.
    pub what: String,
    /// Cube's figure.
    pub cube: String,
    /// The peer's (or the limit's) figure.
    pub peer: String,
}

/// Prints a table, then the scenario's last line.
pub fn report(scenario: &str, peer_name: &str, rows: &[Row], last_line: &str) {
    let width = rows
        .iter()
        .map(|r| r.what.len())
        .max()
        .unwrap_or(10)
        .max(10);
    println!("\n== {scenario} ==");
    println!("{:<width$}  {:>22}  {:>22}", "", "cube", peer_name);
    for row in rows {
        println!("{:<width$}  {:>22}  {:>22}", row.what, row.cube, row.peer);
    }
    println!("{scenario}: {last_line}");
}

/// `12.3 ms` style.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Writes droplet `.tgz` files: app files, then CF's `staging_info.yml`.
pub struct DropletWriter {
    tar: tar::Builder<flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>>,
}

impl DropletWriter {
    /// A droplet at `path`.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        Ok(Self {
            tar: tar::Builder::new(gz),
        })
    }

    /// Adds a file (mode 0644).
    pub fn add(&mut self, name: &str, data: &[u8]) -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        self.tar.append_data(&mut header, name, data)?;
        Ok(())
    }

    /// Adds `staging_info.yml` and finishes the file.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.add(
            "staging_info.yml",
            br#"{"detected_buildpack":"bench","start_command":"./run"}"#,
        )?;
        let mut gz = self.tar.into_inner()?;
        std::io::Write::flush(&mut gz)?;
        let mut file = gz.finish()?;
        std::io::Write::flush(&mut file)?;
        Ok(())
    }
}

/// Fills `data` with incompressible bytes (xorshift from `seed`; the same
/// seed gives the same bytes).
pub fn fill_random(data: &mut [u8], seed: u64) {
    let mut state = seed | 1;
    for byte in data {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
}

/// The load generator for HTTP services: plain HTTP/1.1 on one kept-alive
/// connection, reading each body into one reused 1 MiB buffer and checking its
/// length against `Content-Length`. It does as little per request and per
/// byte as a client can (as `wrk` does), so the two shared cores go to the
/// servers being compared rather than to the client. A general-purpose client
/// (reqwest: 15–22 µs of CPU per manifest GET here, a fresh buffer per body
/// chunk) used most of the machine and set the latencies itself.
pub struct RawClient {
    stream: tokio::net::TcpStream,
    host: String,
    buf: Vec<u8>,
}

/// A response head read by [`RawClient`].
struct Head {
    /// The status code.
    status: u16,
    /// `Content-Length`.
    length: u64,
    /// Where the body starts in the buffer.
    body_at: usize,
    /// How much of the buffer holds the response so far.
    filled: usize,
}

impl RawClient {
    /// A connection to `url`'s host and port (`TCP_NODELAY`, as HTTP clients set it).
    pub async fn connect(url: &reqwest::Url) -> anyhow::Result<Self> {
        let addr = *url
            .socket_addrs(|| None)?
            .first()
            .context("URL has no address")?;
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host: format!("{}:{}", addr.ip(), addr.port()),
            buf: vec![0; 1 << 20],
        })
    }

    /// GETs `path` (200 expected) and reads the whole body: its length.
    pub async fn get(&mut self, path: &str, accept: Option<&str>) -> anyhow::Result<u64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let accept = accept
            .map(|a| format!("Accept: {a}\r\n"))
            .unwrap_or_default();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{accept}\r\n", self.host);
        self.stream.write_all(request.as_bytes()).await?;
        let head = self.head().await?;
        anyhow::ensure!(head.status == 200, "GET {path} answered {}", head.status);
        let length = head.length;
        let mut read = (head.filled - head.body_at) as u64;
        while read < length {
            let want = (length - read).min(self.buf.len() as u64) as usize;
            let n = self.stream.read(&mut self.buf[..want]).await?;
            anyhow::ensure!(
                n > 0,
                "connection closed {read} bytes into a {length}-byte body"
            );
            read += n as u64;
        }
        anyhow::ensure!(read == length, "body longer than its Content-Length");
        Ok(read)
    }

    /// Writes `request`, a whole HTTP/1.1 request (head and body, built by the
    /// caller), and reads the response: its status and body, which must fit
    /// the buffer (1 MiB).
    pub async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<(u16, &[u8])> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(request).await?;
        let head = self.head().await?;
        let end = usize::try_from(head.length)
            .ok()
            .and_then(|length| head.body_at.checked_add(length))
            .filter(|end| *end <= self.buf.len())
            .with_context(|| format!("a {}-byte body does not fit", head.length))?;
        let mut filled = head.filled;
        while filled < end {
            let n = self.stream.read(&mut self.buf[filled..end]).await?;
            anyhow::ensure!(n > 0, "connection closed in the response body");
            filled += n;
        }
        anyhow::ensure!(filled == end, "body longer than its Content-Length");
        Ok((head.status, &self.buf[head.body_at..end]))
    }

    /// Reads a response head (and whatever part of the body came with it).
    async fn head(&mut self) -> anyhow::Result<Head> {
        use tokio::io::AsyncReadExt;
        let mut filled = 0;
        let body_at = loop {
            let n = self.stream.read(&mut self.buf[filled..]).await?;
            anyhow::ensure!(n > 0, "connection closed before the response head");
            filled += n;
            if let Some(i) = self.buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            anyhow::ensure!(filled < 64 * 1024, "response head over 64 KiB");
        };
        let head = std::str::from_utf8(&self.buf[..body_at])?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .context("response without a status code")?;
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .context("response without Content-Length")?;
        Ok(Head {
            status,
            length,
            body_at,
            filled,
        })
    }
}
