//! A real browser and an independent WebSocket client for the tests, both from Debian's
//! packages: headless Chromium (`chromium`) driven through `chromedriver` (`chromium-driver`)
//! by a small python3-selenium helper, and Python's `websockets` (`python3-websockets`).
//! `scripts/test.sh` installs them.
//!
//! * [`Browser`]: one headless Chromium with a fresh profile and a fixed page size; navigate,
//!   run JavaScript, wait for a condition, take screenshots, read the console. Every call is
//!   bounded; on a failure the report has the page's console, the helper's log and a
//!   screenshot kept under `target/tmp/browser/`. Dropping it closes the browser and makes
//!   sure no chromium or chromedriver process is left (they carry the harness's
//!   environment tag, see [`Browser::tag`]).
//! * [`png_region_stats`] and [`compare_png_regions`]: what a region of a screenshot shows,
//!   by colours, and whether two pictures agree pixel for pixel (python3-pil).
//! * [`ws_exchange`]: connect a second, independent WebSocket client, send exact bytes and
//!   get back exactly what arrived, message by message, with the close code.
//! * xpra's own HTML5 client: [`html5_server_opts`] (an xpra 3.1.3 server that serves
//!   `/usr/share/xpra/www` and upgrades WebSocket on its TCP port), [`html5_client_url`] (the
//!   page address that makes the client connect by itself) and [`server_screenshot`] (what
//!   the server itself shows, to compare with what the browser drew).
//!
//! The helpers are Python scripts under `tests/common/browser/`, run with Debian's
//! `/usr/bin/python3` (the one python3-selenium, python3-websockets and python3-pil are for).

use super::xpra::{
    run_bounded, tagged_processes, wait_untagged, xpra_command, Scratch, ServerOpts, XpraServer,
    STARTUP,
};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// The bound for anything the browser does once: start, load a page, connect and draw.
/// A browser start takes 1-2 s idle and can take ten times that next to a parallel build.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// How much longer than its own bound a request may take before the helper counts as hung.
const REPLY_SLACK: Duration = Duration::from_secs(30);

/// The Python interpreter the Debian packages (selenium, websockets, PIL) are installed for.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// A helper script under `tests/common/browser/`.
pub fn helper_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/common/browser")
        .join(name)
}

/// Where failure screenshots and logs are kept (`target/tmp/browser/<tag>/`).
pub fn artifact_dir(tag: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser")
        .join(tag)
}

/// The page size (the viewport: screenshots are exactly this big, at one pixel per CSS px).
#[derive(Debug, Clone, Copy)]
pub struct BrowserOpts {
    pub width: u32,
    pub height: u32,
}

impl Default for BrowserOpts {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 800,
        }
    }
}

/// The request/reply channel to the helper; `broken` once a reply did not come.
struct Link {
    stdin: Option<ChildStdin>,
    replies: Receiver<String>,
    broken: Option<String>,
}

/// One headless Chromium (see the module docs). Methods panic with a full report (console,
/// helper log, screenshot path) when the browser fails; the `try_` ones return it instead.
pub struct Browser {
    child: Child,
    link: Mutex<Link>,
    reported: AtomicBool,
    closed: bool,
    /// What Chromium says it is, e.g. `156.0.8078.79`.
    pub version: String,
    pub opts: BrowserOpts,
    /// How long the browser took to start (chromedriver, Chromium, first blank page).
    pub startup: Duration,
    scratch: Scratch,
}

impl Browser {
    /// Starts a browser with the default page size and opens `url` (waits for its `load`).
    pub fn open(url: &str) -> Self {
        let b = Self::start(BrowserOpts::default());
        b.goto(url);
        b
    }

    /// Starts a browser on a blank page. Panics with the helper's log if it cannot start.
    pub fn start(opts: BrowserOpts) -> Self {
        let began = Instant::now();
        let scratch = Scratch::new("browser");
        let log = scratch.file("driver.log");
        let mut cmd = Command::new(SYSTEM_PYTHON);
        cmd.arg(helper_script("driver.py"))
            .arg(format!("--profile={}", scratch.file("profile").display()))
            .arg(format!(
                "--driver-log={}",
                scratch.file("chromedriver.log").display()
            ))
            .arg(format!("--width={}", opts.width))
            .arg(format!("--height={}", opts.height))
            .arg(format!("--timeout={}", BROWSER_TIMEOUT.as_secs()));
        // HOME, XDG dirs and the tag; no DISPLAY: headless needs none.
        scratch.hermetic_env(&mut cmd);
        cmd.env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("create driver.log"))
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {SYSTEM_PYTHON} driver.py: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, replies) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut browser = Self {
            link: Mutex::new(Link {
                stdin: child.stdin.take(),
                replies,
                broken: None,
            }),
            child,
            reported: AtomicBool::new(false),
            closed: false,
            version: String::new(),
            opts,
            startup: Duration::ZERO,
            scratch,
        };
        let hello = browser.receive(BROWSER_TIMEOUT + REPLY_SLACK);
        match hello {
            Ok(info) => {
                browser.version = json_field(&info, "browserVersion").unwrap_or_default();
                browser.startup = began.elapsed();
            }
            Err(e) => browser.fail(&format!("the browser did not start: {e}")),
        }
        browser
    }

    /// The environment tag chromedriver, Chromium and all its helpers carry
    /// (see `common::xpra::tagged_processes`).
    pub fn tag(&self) -> &str {
        &self.scratch.tag
    }

    /// The pid of the driver.py helper (the leader of the browser's process group).
    pub fn helper_pid(&self) -> u32 {
        self.child.id()
    }

    /// Navigates to `url` and waits for its `load` event; returns the address it ended on.
    pub fn goto(&self, url: &str) -> String {
        self.try_goto(url).unwrap_or_else(|e| self.fail(&e))
    }

    pub fn try_goto(&self, url: &str) -> Result<String, String> {
        self.request("get", &[url], BROWSER_TIMEOUT + REPLY_SLACK)
            .map_err(|e| format!("opening {url}: {e}"))
    }

    /// Evaluates the JavaScript expression `expr` in the page: a string result as is,
    /// anything else as JSON (`null`, `true`, `[1,2]`, ...).
    pub fn eval_js(&self, expr: &str) -> String {
        self.try_eval_js(expr).unwrap_or_else(|e| self.fail(&e))
    }

    pub fn try_eval_js(&self, expr: &str) -> Result<String, String> {
        self.request("eval", &[expr], BROWSER_TIMEOUT + REPLY_SLACK)
            .map_err(|e| format!("evaluating {expr}: {e}"))
    }

    /// Polls the JavaScript expression `condition` (every 100 ms, in the page) until it is
    /// truthy; returns how long that took. A condition that throws counts as false.
    pub fn wait_until(&self, condition: &str, timeout: Duration) -> Duration {
        self.try_wait_until(condition, timeout)
            .unwrap_or_else(|e| self.fail(&e))
    }

    pub fn try_wait_until(&self, condition: &str, timeout: Duration) -> Result<Duration, String> {
        let began = Instant::now();
        let secs = format!("{:.3}", timeout.as_secs_f64());
        self.request("wait", &[condition, &secs], timeout + REPLY_SLACK)?;
        Ok(began.elapsed())
    }

    /// Every `<canvas>` of the page with how many distinct colours it holds (read back
    /// with `getImageData`, counted up to 100,000).
    pub fn canvases(&self) -> Vec<CanvasRegion> {
        let list = self.eval_js(&format!("({CANVASES_JS}).join(';')"));
        list.split(';').filter_map(CanvasRegion::parse).collect()
    }

    /// Waits until some canvas at least 32x32 px holds `min_colours` distinct colours or
    /// more (a window drawn with real content, not a blank or single-colour area) and
    /// returns the most colourful one, with how long the wait took.
    pub fn wait_for_canvas_pixels(
        &self,
        min_colours: usize,
        timeout: Duration,
    ) -> (CanvasRegion, Duration) {
        let condition = format!(
            "({CANVASES_JS}).some(function (s) {{ var f = s.split(','); \
             return +f[2] >= 32 && +f[3] >= 32 && +f[4] >= {min_colours}; }})"
        );
        let took = self
            .try_wait_until(&condition, timeout)
            .unwrap_or_else(|e| {
                self.fail(&format!(
                    "no canvas with {min_colours}+ colours: {e}\ncanvases: {:?}",
                    self.try_eval_js(&format!("({CANVASES_JS}).join(';')"))
                ))
            });
        let best = self
            .canvases()
            .into_iter()
            .filter(|c| c.width >= 32 && c.height >= 32 && c.colours >= min_colours as i64)
            .max_by_key(|c| c.colours)
            .unwrap_or_else(|| self.fail("the canvas that qualified is gone"));
        (best, took)
    }

    /// Saves a PNG of the page (exactly `opts.width` x `opts.height`) to `path`.
    pub fn screenshot_png(&self, path: &Path) {
        self.try_screenshot_png(path)
            .unwrap_or_else(|e| self.fail(&e))
    }

    pub fn try_screenshot_png(&self, path: &Path) -> Result<(), String> {
        let path = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.request(
            "screenshot",
            &[&path.to_string_lossy()],
            BROWSER_TIMEOUT + REPLY_SLACK,
        )
        .map(|_| ())
        .map_err(|e| format!("screenshot to {}: {e}", path.display()))
    }

    /// Every console line of the page so far (`LEVEL url line:col message`), JavaScript
    /// errors included.
    pub fn console_log(&self) -> String {
        self.request("console", &[], BROWSER_TIMEOUT + REPLY_SLACK)
            .unwrap_or_else(|e| format!("(no console: {e})"))
    }

    /// The addresses the page loaded (`performance.getEntriesByType('resource')`), in order.
    pub fn loaded_resources(&self) -> Vec<String> {
        self.eval_js("performance.getEntriesByType('resource').map(function (e) { return e.name; }).join('\\n')")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Saves a screenshot, the console and the helper's logs under [`artifact_dir`] and
    /// returns a report to print: where they are, the console's last lines, the log's tail.
    pub fn failure_report(&self) -> String {
        self.reported.store(true, Ordering::SeqCst);
        let dir = artifact_dir(self.tag());
        let _ = fs::create_dir_all(&dir);
        let mut out = String::new();
        let shot = dir.join("failure.png");
        match self.try_screenshot_png(&shot) {
            Ok(()) => {
                let _ = writeln!(out, "screenshot kept: {}", shot.display());
            }
            Err(e) => {
                let _ = writeln!(out, "(no screenshot: {e})");
            }
        }
        let console = self.console_log();
        let _ = fs::write(dir.join("console.log"), &console);
        let _ = writeln!(
            out,
            "--- browser console (last 60 lines; all in {}) ---\n{}",
            dir.join("console.log").display(),
            tail(&console, 60)
        );
        for name in ["driver.log", "chromedriver.log"] {
            let _ = fs::copy(self.scratch.file(name), dir.join(name));
        }
        let driver_log = read_lossy(&self.scratch.file("driver.log"));
        let _ = writeln!(
            out,
            "--- driver.py log (last 30 lines; chromedriver's log in {}) ---\n{}\n--- end ---",
            dir.display(),
            tail(&driver_log, 30)
        );
        out
    }

    /// Panics with `msg` and a [`Browser::failure_report`].
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.failure_report())
    }

    /// Closes the browser now (see `Drop`); returns the processes that outlived it, if any.
    pub fn close(mut self) -> Vec<(u32, String)> {
        self.shutdown()
    }

    fn request(&self, verb: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
        let mut line = verb.to_string();
        for a in args {
            line.push('\t');
            line.push_str(&hex::encode(a.as_bytes()));
        }
        line.push('\n');
        {
            let mut link = self.link.lock().unwrap();
            if let Some(why) = &link.broken {
                return Err(format!("the browser is gone ({why})"));
            }
            let sent = link
                .stdin
                .as_mut()
                .map(|s| s.write_all(line.as_bytes()).and_then(|()| s.flush()));
            if let Some(Err(e)) = sent {
                link.broken = Some(format!("write to driver.py: {e}"));
                return Err(format!("the browser is gone (write to driver.py: {e})"));
            }
        }
        self.receive(timeout)
    }

    fn receive(&self, timeout: Duration) -> Result<String, String> {
        let mut link = self.link.lock().unwrap();
        if let Some(why) = &link.broken {
            return Err(format!("the browser is gone ({why})"));
        }
        let line = match link.replies.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                let why = format!("driver.py gave no answer in {timeout:?}");
                link.broken = Some(why.clone());
                return Err(why);
            }
            Err(RecvTimeoutError::Disconnected) => {
                let why = "driver.py exited".to_string();
                link.broken = Some(why.clone());
                return Err(why);
            }
        };
        let (status, data) = line.split_once('\t').unwrap_or((&line, ""));
        let text = hex::decode(data)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| format!("(unreadable reply {line:?})"));
        match status {
            "ok" => Ok(text),
            "err" => Err(text),
            _ => Err(format!("unexpected reply from driver.py: {line:?}")),
        }
    }

    /// `quit`, up to 20 s for the helper to close Chromium and chromedriver, then SIGKILL
    /// to whatever is left of its process group and of its tag. Returns what outlived that.
    fn shutdown(&mut self) -> Vec<(u32, String)> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        {
            let mut link = self.link.lock().unwrap();
            if let Some(mut stdin) = link.stdin.take() {
                let _ = stdin.write_all(b"quit\n");
                // Dropping stdin is the helper's other way out: end of input quits too.
            }
            link.broken.get_or_insert_with(|| "closed".into());
        }
        let pid = self.child.id();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !has_exited(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        // The group before the leader is reaped, so its id cannot have been reused.
        // SAFETY: kill(2) on the process group this browser created.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
        // Anything that left the group (a helper in a session of its own) still has the tag.
        for (pid, _) in tagged_processes(self.tag()) {
            // SAFETY: kill(2) on a process that carries this browser's environment tag.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
        wait_untagged(self.tag(), Duration::from_secs(10))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if thread::panicking() && !self.reported.load(Ordering::SeqCst) && !self.closed {
            eprintln!("--- browser ---\n{}", self.failure_report());
        }
        let left = self.shutdown();
        if !left.is_empty() {
            eprintln!("browser {}: processes left behind: {left:?}", self.tag());
        }
    }
}

/// Whether `pid` has exited, without reaping it (so its pid and group id stay reserved).
fn has_exited(pid: u32) -> bool {
    // SAFETY: waitid with WNOWAIT only inspects our own child; `info` is a valid out-buffer.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        rc != 0 || info.si_pid() != 0
    }
}

/// The canvases of the page, one `left,top,width,height,colours,canvas.width,canvas.height,
/// parent id` string each (colours -1: no 2D context, -2: unreadable).
const CANVASES_JS: &str = "Array.from(document.querySelectorAll('canvas')).map(function (c) { \
    var r = c.getBoundingClientRect(); var n = -1; \
    try { var ctx = c.getContext('2d'); if (ctx) { \
      var d = ctx.getImageData(0, 0, c.width, c.height).data; var seen = new Set(); \
      for (var i = 0; i < d.length && seen.size < 100000; i += 4) { \
        seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]); } \
      n = seen.size; } } catch (e) { n = -2; } \
    return [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height), \
      n, c.width, c.height, String((c.parentElement && c.parentElement.id) || '').replace(/[,;]/g, '_')].join(','); })";

/// Where a canvas is on the page (CSS px = screenshot px) and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanvasRegion {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    /// Distinct colours in its pixels (-1: not a 2D canvas, -2: unreadable).
    pub colours: i64,
    /// The drawing buffer's size (may differ from the on-page size when scaled).
    pub buffer: (u32, u32),
    /// The id of the element holding it (xpra's HTML5 client: the window's number).
    pub parent_id: String,
}

impl CanvasRegion {
    fn parse(s: &str) -> Option<Self> {
        let f: Vec<&str> = s.split(',').collect();
        if f.len() < 8 {
            return None;
        }
        Some(Self {
            x: f[0].parse().ok()?,
            y: f[1].parse().ok()?,
            width: f[2].parse().ok()?,
            height: f[3].parse().ok()?,
            colours: f[4].parse().ok()?,
            buffer: (f[5].parse().ok()?, f[6].parse().ok()?),
            parent_id: f[7].to_string(),
        })
    }
}

/// What a region of a PNG shows (`pixels.py stats`).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionStats {
    /// Distinct RGB values.
    pub colours: usize,
    /// Fractions of the pixels that are near-white (all channels >= 224), dark (all <= 64),
    /// or neither.
    pub white: f64,
    pub dark: f64,
    pub mid: f64,
    /// The most common colour and its share.
    pub top: ([u8; 3], f64),
}

/// What the `width` x `height` region at (`x`, `y`) of `png` shows. Errors (with the
/// script's output) for a region that is not inside the picture.
pub fn png_region_stats(png: &Path, x: i32, y: i32, w: u32, h: u32) -> Result<RegionStats, String> {
    let out = pixels(&[
        "stats".into(),
        png.display().to_string(),
        x.to_string(),
        y.to_string(),
        w.to_string(),
        h.to_string(),
    ])?;
    let field = |k: &str| -> Result<&str, String> {
        out.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(' '))
            .ok_or_else(|| format!("no {k} in pixels.py output: {out}"))
    };
    let num = |k: &str| -> Result<f64, String> {
        field(k)?.parse().map_err(|e| format!("{k}: {e}: {out}"))
    };
    let (rgb, share) = field("top")?
        .split_once(' ')
        .ok_or_else(|| format!("top: {out}"))?;
    let mut c = rgb.split(',').filter_map(|v| v.parse::<u8>().ok());
    let top = [
        c.next().unwrap_or(0),
        c.next().unwrap_or(0),
        c.next().unwrap_or(0),
    ];
    Ok(RegionStats {
        colours: num("colours")? as usize,
        white: num("white")?,
        dark: num("dark")?,
        mid: num("mid")?,
        top: (top, share.parse().map_err(|e| format!("top: {e}"))?),
    })
}

/// How well two same-sized regions agree (`pixels.py compare`).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Share of pixels whose channels all differ by at most the tolerance.
    pub matched: f64,
    /// Pixels that are not near-white in either picture (a clock's hands and ticks), and
    /// the share of those that match: a picture off by a pixel scores low here.
    pub ink: usize,
    pub ink_match: f64,
    /// Mean of the largest channel difference per pixel.
    pub mean_diff: f64,
}

/// Compares the `size` region at `a_at` of `a` with the one at `b_at` of `b`, a channel
/// difference up to `tolerance` counting as equal (0 for exact, ~48 for a lossy encoding).
pub fn compare_png_regions(
    a: &Path,
    a_at: (i32, i32),
    b: &Path,
    b_at: (i32, i32),
    size: (u32, u32),
    tolerance: u8,
) -> Result<Comparison, String> {
    let out = pixels(&[
        "compare".into(),
        a.display().to_string(),
        a_at.0.to_string(),
        a_at.1.to_string(),
        b.display().to_string(),
        b_at.0.to_string(),
        b_at.1.to_string(),
        size.0.to_string(),
        size.1.to_string(),
        tolerance.to_string(),
    ])?;
    let num = |k: &str| -> Result<f64, String> {
        out.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {k} in pixels.py output: {out}"))
    };
    Ok(Comparison {
        matched: num("match")?,
        ink: num("ink")? as usize,
        ink_match: num("ink_match")?,
        mean_diff: num("mean_diff")?,
    })
}

/// The size of a PNG (from its IHDR chunk).
pub fn png_size(png: &Path) -> Result<(u32, u32), String> {
    let data = fs::read(png).map_err(|e| format!("{}: {e}", png.display()))?;
    if data.len() < 24 || &data[..8] != b"\x89PNG\r\n\x1a\n" || &data[12..16] != b"IHDR" {
        return Err(format!("{} is not a PNG", png.display()));
    }
    let be = |i: usize| u32::from_be_bytes(data[i..i + 4].try_into().unwrap());
    Ok((be(16), be(20)))
}

fn pixels(args: &[String]) -> Result<String, String> {
    let mut cmd = Command::new(SYSTEM_PYTHON);
    cmd.arg(helper_script("pixels.py")).args(args);
    match run_bounded(&mut cmd, Duration::from_secs(60))? {
        (0, out, _) => Ok(out),
        (code, out, err) => Err(format!("pixels.py {args:?} exited with {code}: {out}{err}")),
    }
}

/// Options of an xpra server whose TCP port also serves the HTML5 client
/// (`/usr/share/xpra/www`) over HTTP and upgrades WebSocket requests: `--html=on`, which
/// overrides the harness's default `--html=off`.
pub fn html5_server_opts() -> ServerOpts {
    ServerOpts {
        extra_args: vec!["--html=on".into()],
        ..ServerOpts::default()
    }
}

/// The address of xpra's HTML5 client page, served by `page` (`http://PAGE/index.html`),
/// that makes it connect by itself to `ws://WS_HOST:WS_PORT{path}` (`path` defaults to the
/// page's own path, `/index.html`; xpra's server accepts any path, a gateway may route on
/// it) and draw the session's windows. Sound, clipboard, printing, file transfer and
/// reconnecting are off, so a test sees one connection and no permission prompts. `extra`
/// adds or overrides parameters, e.g. `("username", "alice")`, `("password", "...")`,
/// `("encoding", "png")`.
pub fn html5_client_url(
    page: SocketAddr,
    ws: SocketAddr,
    path: Option<&str>,
    extra: &[(&str, &str)],
) -> String {
    let port = ws.port().to_string();
    let host = ws.ip().to_string();
    let mut params: Vec<(&str, &str)> = vec![
        ("server", &host),
        ("port", &port),
        ("ssl", "false"),
        ("submit", "true"),
        ("sound", "false"),
        ("clipboard", "false"),
        ("printing", "false"),
        ("file_transfer", "false"),
        ("reconnect", "false"),
        ("notifications", "false"),
    ];
    if let Some(p) = path {
        params.push(("path", p));
    }
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        params.push((k, v));
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect();
    format!("http://{page}/index.html?{}", query.join("&"))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// What `server` itself shows, from `xpra screenshot` over its TCP port: a PNG of the
/// bounding box of its windows (for one xclock, exactly the window), composited by the
/// server, so it can be compared with what a client drew.
pub fn server_screenshot(server: &XpraServer, out: &Path) -> Result<(u32, u32), String> {
    let scratch = Scratch::new("shot");
    let mut cmd = xpra_command(&scratch);
    cmd.arg("screenshot").arg(out).arg(server.uri());
    if let Some(p) = server.password() {
        let f = scratch.write_secret("password", p);
        cmd.arg(format!("--password-file={}", f.display()));
    }
    match run_bounded(&mut cmd, STARTUP)? {
        (0, _, _) => png_size(out),
        (code, stdout, stderr) => Err(format!(
            "xpra screenshot exited with {code}:\n{stdout}{stderr}"
        )),
    }
}

/// A message as the independent WebSocket client received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    Binary(Vec<u8>),
    Text(String),
}

/// What to do in one [`ws_exchange`].
#[derive(Debug, Clone)]
pub struct WsClientOpts {
    /// Offered in `Sec-WebSocket-Protocol`, e.g. `binary` (what xpra's HTML5 client and
    /// websockify use).
    pub subprotocols: Vec<String>,
    /// Sent in order, one binary message each, right after the upgrade.
    pub send: Vec<Vec<u8>>,
    /// Stop reading (and close with 1000) once this many payload bytes arrived; `None`
    /// reads until the peer closes or the timeout.
    pub expect_bytes: Option<usize>,
    /// The bound for the upgrade, and separately for all the reading.
    pub timeout: Duration,
    /// More request headers (`Name`, `value`).
    pub headers: Vec<(String, String)>,
    pub origin: Option<String>,
}

impl Default for WsClientOpts {
    fn default() -> Self {
        Self {
            subprotocols: vec!["binary".into()],
            send: Vec::new(),
            expect_bytes: None,
            timeout: Duration::from_secs(30),
            headers: Vec::new(),
            origin: None,
        }
    }
}

/// Everything that happened in one [`ws_exchange`].
#[derive(Debug, Clone, Default)]
pub struct WsExchange {
    /// The subprotocol the server chose, `None` for none.
    pub subprotocol: Option<String>,
    /// The upgrade response's headers, as sent.
    pub response_headers: Vec<(String, String)>,
    pub messages: Vec<WsMessage>,
    /// The peer's close code and reason; 1006 when the connection ended without a close
    /// frame.
    pub close: Option<(u16, String)>,
    pub timed_out: bool,
    /// Why the upgrade or the connection failed, e.g. `InvalidStatusCode: server rejected
    /// WebSocket connection: HTTP 404`.
    pub error: Option<String>,
    pub elapsed: Duration,
    /// The helper's own output, for failure messages.
    pub transcript: String,
}

impl WsExchange {
    /// Whether the upgrade succeeded.
    pub fn opened(&self) -> bool {
        self.transcript.lines().any(|l| l.starts_with("open "))
    }

    /// The payloads of all binary messages, concatenated.
    pub fn binary_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for m in &self.messages {
            if let WsMessage::Binary(b) = m {
                out.extend_from_slice(b);
            }
        }
        out
    }

    /// A response header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Connects Python's `websockets` (no permessage-deflate) to `url`, sends `opts.send`, reads
/// until `opts.expect_bytes`, the peer's close or the timeout, and returns all of it.
/// Panics only if the helper itself cannot run.
pub fn ws_exchange(url: &str, opts: &WsClientOpts) -> WsExchange {
    let scratch = Scratch::new("ws");
    let mut cmd = Command::new(SYSTEM_PYTHON);
    cmd.arg(helper_script("ws_client.py"))
        .arg(url)
        .arg(format!("--timeout={}", opts.timeout.as_secs_f64()));
    for p in &opts.subprotocols {
        cmd.arg(format!("--subprotocol={p}"));
    }
    for (i, m) in opts.send.iter().enumerate() {
        let f = scratch.file(&format!("send-{i}"));
        fs::write(&f, m).expect("write a message file");
        cmd.arg(format!("--send-file={}", f.display()));
    }
    if let Some(n) = opts.expect_bytes {
        cmd.arg(format!("--expect={n}"));
    }
    for (k, v) in &opts.headers {
        cmd.arg(format!("--header={k}: {v}"));
    }
    if let Some(o) = &opts.origin {
        cmd.arg(format!("--origin={o}"));
    }
    let began = Instant::now();
    let (code, out, err) = run_bounded(&mut cmd, opts.timeout * 2 + REPLY_SLACK)
        .unwrap_or_else(|e| panic!("ws_client.py: {e}"));
    let elapsed = began.elapsed();
    assert_eq!(code, 0, "ws_client.py exited with {code}:\n{out}{err}");
    let mut ex = WsExchange {
        elapsed,
        transcript: format!("{out}{err}"),
        ..WsExchange::default()
    };
    let unhex = |h: &str| -> Vec<u8> {
        if h == "-" {
            Vec::new()
        } else {
            hex::decode(h).unwrap_or_else(|e| panic!("ws_client.py sent bad hex ({e}): {h}"))
        }
    };
    for line in out.lines() {
        let (event, rest) = line.split_once(' ').unwrap_or((line, ""));
        match event {
            "open" => ex.subprotocol = (rest != "-").then(|| rest.to_string()),
            "header" => {
                if let Some((k, v)) = rest.split_once(": ") {
                    ex.response_headers.push((k.to_string(), v.to_string()));
                }
            }
            "recv" => ex.messages.push(WsMessage::Binary(unhex(rest))),
            "text" => ex.messages.push(WsMessage::Text(
                String::from_utf8_lossy(&unhex(rest)).into_owned(),
            )),
            "close" => {
                let (code, reason) = rest.split_once(' ').unwrap_or((rest, "-"));
                let reason = String::from_utf8_lossy(&unhex(reason)).into_owned();
                // websockets reports None (no close frame, printed as "None") as 1006.
                ex.close = Some((code.parse().unwrap_or(1006), reason));
            }
            "timeout" => ex.timed_out = true,
            "error" => ex.error = Some(rest.to_string()),
            _ => {}
        }
    }
    ex
}

/// A value of a flat JSON object, good enough for the helper's hello
/// (`{"browserVersion": "156.0...", ...}`).
fn json_field(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A directory for this test's pictures under `target/tmp/browser/`, kept when the test
/// fails and removed when it passes.
pub struct Pictures(PathBuf);

impl Pictures {
    pub fn new(name: &str) -> Self {
        let dir = artifact_dir(&format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Pictures {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("pictures kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Screenshots the page and the server until the window's region of the page matches what
/// the server shows (xclock moves its hands once a minute, so one pair of pictures may
/// straddle a tick); returns the page screenshot and the comparison.
pub fn compare_with_server(
    browser: &Browser,
    server: &XpraServer,
    canvas: &CanvasRegion,
    pics: &Pictures,
) -> (PathBuf, Comparison) {
    let page = pics.path("page.png");
    let reference = pics.path("server.png");
    let mut last = None;
    for _ in 0..3 {
        let size = server_screenshot(server, &reference)
            .unwrap_or_else(|e| browser.fail(&format!("server screenshot: {e}")));
        assert_eq!(
            size,
            (canvas.width, canvas.height),
            "the server's picture of its windows and the page's canvas differ in size"
        );
        browser.screenshot_png(&page);
        let cmp = compare_png_regions(&page, (canvas.x, canvas.y), &reference, (0, 0), size, 48)
            .unwrap_or_else(|e| browser.fail(&e));
        if cmp.matched >= 0.99 && cmp.ink_match >= 0.9 {
            return (page, cmp);
        }
        last = Some(cmp);
        std::thread::sleep(Duration::from_secs(1));
    }
    browser.fail(&format!(
        "the window's region of the page ({canvas:?}) does not show what the server shows: \
         {last:?}; page: {}, server: {}",
        page.display(),
        reference.display()
    ))
}
