//! X displays for the tests: picking a free display number, a headless Xvfb guard, and reading
//! the window tree the way a person would look at the screen (`xwininfo`).

use super::proc::{self, Scratch};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long an X server gets to come up on a loaded machine.
const XVFB_START: Duration = Duration::from_secs(30);

fn display_in_use(n: u32) -> bool {
    Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        || Path::new(&format!("/tmp/.X{n}-lock")).exists()
}

/// An X display number that no socket or lock file claims, from 100 up. Numbers are never
/// handed out twice in one test process; the start offset depends on the process id so that
/// test binaries running side by side mostly stay apart, and the starters retry on a clash.
pub fn free_display() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 100 + (std::process::id() % 500) * 16;
    loop {
        let n = base + NEXT.fetch_add(1, Ordering::Relaxed) % 8000;
        if !display_in_use(n) {
            return n;
        }
    }
}

/// Whether an X client can talk to display `:n` (one `xdpyinfo` round trip).
pub fn display_answers(n: u32) -> bool {
    // The socket appears before the server serves; connecting first keeps the xdpyinfo
    // process (the expensive part) for when it can succeed.
    if UnixStream::connect(format!("/tmp/.X11-unix/X{n}")).is_err() {
        return false;
    }
    let mut cmd = Command::new("xdpyinfo");
    cmd.args(["-display", &format!(":{n}")]);
    matches!(
        proc::run_bounded(&mut cmd, Duration::from_secs(10)),
        Ok((0, _, _))
    )
}

/// A headless X server (`Xvfb :N -screen 0 1024x768x24 -nolisten tcp`), killed on drop.
pub struct Xvfb {
    pub display: u32,
    child: proc::Leader,
    scratch: Scratch,
}

impl Xvfb {
    /// Starts Xvfb on a free display and waits until the display answers `xdpyinfo`.
    /// Panics, with Xvfb's output, if no display came up in three tries.
    pub fn start() -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(x) => return x,
                Err(e) => last = e,
            }
        }
        panic!("Xvfb did not start: {last}");
    }

    fn try_start() -> Result<Self, String> {
        let scratch = Scratch::new("xvfb");
        let display = free_display();
        let log = scratch.file("xvfb.log");
        let mut cmd = Command::new("Xvfb");
        cmd.arg(format!(":{display}"))
            .args([
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .env(proc::TAG_VAR, &scratch.tag)
            .current_dir(&scratch.path);
        let mut child =
            proc::Leader::spawn_logged(&mut cmd, &log).map_err(|e| format!("spawn: {e}"))?;
        let up = proc::poll(XVFB_START, Duration::from_millis(50), || {
            if child.has_exited() {
                return Some(false);
            }
            display_answers(display).then_some(true)
        });
        if up == Some(true) {
            return Ok(Self {
                display,
                child,
                scratch,
            });
        }
        child.stop(libc::SIGKILL, Duration::ZERO);
        Err(format!(":{display}: {}", proc::read_lossy(&log)))
    }

    /// `:N`, the value for DISPLAY.
    pub fn name(&self) -> String {
        format!(":{}", self.display)
    }

    pub fn tag(&self) -> &str {
        &self.scratch.tag
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.child.stop(libc::SIGTERM, Duration::from_secs(5));
    }
}

/// One top-level window as `xwininfo -root -tree` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub id: String,
    /// The title, empty for "(has no name)".
    pub title: String,
    /// WM_CLASS instance and class, when set.
    pub class: Option<(String, String)>,
    pub width: u32,
    pub height: u32,
}

/// Windows of `display` as listed by `xwininfo -root -tree`, top-level and nested alike.
pub fn windows(display: u32) -> Result<Vec<Window>, String> {
    let mut cmd = Command::new("xwininfo");
    cmd.args(["-root", "-tree", "-display", &format!(":{display}")]);
    let (code, out, err) = proc::run_bounded(&mut cmd, Duration::from_secs(15))?;
    if code != 0 {
        return Err(format!("xwininfo exited with {code}: {err}"));
    }
    Ok(out.lines().filter_map(parse_tree_line).collect())
}

/// Parses `0x20000a "xclock on vm": ("xclock" "XClock")  164x164+0+0  +0+0`.
pub fn parse_tree_line(line: &str) -> Option<Window> {
    let line = line.trim_start();
    let (id, rest) = line.split_once(' ')?;
    if !id.starts_with("0x") {
        return None;
    }
    let (title, rest) = if let Some(named) = rest.strip_prefix('"') {
        let end = named.find("\": ")?;
        (named[..end].to_string(), &named[end + 3..])
    } else {
        (String::new(), rest.split_once(": ")?.1)
    };
    let (class, rest) = match rest.strip_prefix("(\"") {
        Some(c) => {
            let end = c.find(")")?;
            let mut parts = c[..end].split("\" \"");
            let instance = parts.next()?.trim_matches('"').to_string();
            let class = parts.next().unwrap_or("").trim_matches('"').to_string();
            (Some((instance, class)), &c[end + 1..])
        }
        None => (None, rest.split_once(')')?.1),
    };
    let geometry = rest.split_whitespace().next()?;
    let (w, h) = geometry.split_once('x')?;
    let h: String = h.chars().take_while(char::is_ascii_digit).collect();
    Some(Window {
        id: id.to_string(),
        title,
        class,
        width: w.parse().ok()?,
        height: h.parse().ok()?,
    })
}

/// Whether window `id` on `display` is mapped and viewable (`xwininfo -id`).
pub fn is_viewable(display: u32, id: &str) -> bool {
    let mut cmd = Command::new("xwininfo");
    cmd.args(["-id", id, "-display", &format!(":{display}")]);
    matches!(proc::run_bounded(&mut cmd, Duration::from_secs(15)),
        Ok((0, out, _)) if out.contains("Map State: IsViewable"))
}

/// How many distinct colours window `id` shows on `display` (its on-screen area, grabbed
/// with python3-pil, which the xpra tests install anyway).
pub fn distinct_colours(display: u32, id: &str) -> Result<usize, String> {
    let mut cmd = Command::new("xwininfo");
    cmd.args(["-id", id, "-display", &format!(":{display}")]);
    let (_, info, err) = proc::run_bounded(&mut cmd, Duration::from_secs(15))?;
    let field = |name: &str| -> Result<i64, String> {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.trim().parse().ok())
            .ok_or_else(|| format!("no {name:?} in xwininfo output: {info}{err}"))
    };
    let (x, y) = (
        field("Absolute upper-left X:")?,
        field("Absolute upper-left Y:")?,
    );
    let (w, h) = (field("Width:")?, field("Height:")?);
    let script = format!(
        "from PIL import ImageGrab\n\
         im = ImageGrab.grab(bbox=({x}, {y}, {}, {}), xdisplay=':{display}')\n\
         print(len(im.getcolors(1 << 24)))\n",
        x + w,
        y + h
    );
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", &script]);
    match proc::run_bounded(&mut cmd, Duration::from_secs(30))? {
        (0, out, _) => out.trim().parse().map_err(|e| format!("{e}: {out}")),
        (code, out, err) => Err(format!("screen grab exited with {code}: {out}{err}")),
    }
}
