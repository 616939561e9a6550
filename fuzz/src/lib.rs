//! What the fuzz targets share: reading a target's parameters off the front of an input,
//! the read patterns a streaming parser is fed with, and a heap meter.
//!
//! Parameters come first so that the rest of the input is the bytes a peer would send, and
//! a seed file is a real capture with a few bytes in front (see `seeds/README.md`).
//!
//! The meter is this crate's `#[global_allocator]`: every Rust allocation of a target (and
//! of deskrelay under it) goes through it, whatever sanitizer the target was built with, so
//! "never allocates more than the limit" is checked by the target itself, not left to
//! libFuzzer's `-malloc_limit_mb` (which needs a sanitizer's malloc hooks).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Reads parameters off the front of a fuzz input; an exhausted input reads as zeros.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// One of `choices`, picked by the next byte.
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[usize::from(self.byte()) % choices.len()]
    }

    /// What is left: the bytes under test.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Most reads [`read_patterns`] cuts an input into: short inputs are fed at every read
/// size down to single bytes, long ones (the captured 22-40 KiB hellos) in fewer, larger
/// reads, so that a run spends its time on many inputs rather than on many reads of one.
pub const MAX_READS: usize = 1024;

/// The ways a streaming parser is fed the same bytes, each a list of reads: all at once;
/// cut in two at `cut` (taken modulo the length + 1); in reads of `step` + 1 bytes, or
/// more when that would take over [`MAX_READS`] reads.
pub fn read_patterns(data: &[u8], cut: u16, step: u8) -> [Vec<&[u8]>; 3] {
    let cut = usize::from(cut) % (data.len() + 1);
    let step = (usize::from(step) + 1).max(data.len().div_ceil(MAX_READS));
    [
        vec![data],
        vec![&data[..cut], &data[cut..]],
        data.chunks(step).collect(),
    ]
}

/// Heap use of one closure, as seen by [`Meter`].
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Highest live heap reached, above what was live when the closure started.
    pub peak: usize,
    /// Largest single allocation (or reallocation) requested.
    pub largest: usize,
}

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` and reports the heap it used. Targets run on one thread; a libFuzzer worker
/// thread (`-jobs`) is its own process, so the counters are the target's own.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    LARGEST.store(0, Relaxed);
    let r = f();
    let usage = Usage {
        peak: PEAK.load(Relaxed).saturating_sub(base),
        largest: LARGEST.load(Relaxed),
    };
    (r, usage)
}

/// The system allocator, counting.
pub struct Meter;

impl Meter {
    fn grew(size: usize) {
        let live = LIVE.fetch_add(size, Relaxed) + size;
        PEAK.fetch_max(live, Relaxed);
        LARGEST.fetch_max(size, Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// counters are only read for reports and never influence what is returned.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            Meter::grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            Meter::grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // The old block may live until the copy is done: count both for the peak.
            Meter::grew(new_size);
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        p
    }
}

#[global_allocator]
static METER: Meter = Meter;

/// A small web root for the HTTP targets, made once per process under the temp directory:
/// an index, a script with a gzip sibling, a subdirectory, a hidden file, a link inside
/// the root and one leading out of it (to `/etc`), and a FIFO. Idempotent, so parallel
/// jobs may share it.
pub fn web_root() -> &'static deskrelay::front::http::WebRoot {
    use std::sync::OnceLock;
    static ROOT: OnceLock<deskrelay::front::http::WebRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = std::env::temp_dir().join("deskrelay-fuzz-webroot");
        let sub = dir.join("sub");
        std::fs::create_dir_all(&sub).expect("temp web root");
        for (name, body) in [
            ("index.html", &b"<html>index</html>"[..]),
            ("app.js", b"console.log(1)"),
            ("app.js.gz", b"\x1f\x8b not really gzip"),
            (".hidden", b"secret"),
            ("sub/index.html", b"<html>sub</html>"),
            ("sub/page.html", b"<html>page</html>"),
        ] {
            std::fs::write(dir.join(name), body).expect("temp web root file");
        }
        let link =
            |target: &str, name: &str| match std::os::unix::fs::symlink(target, dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    panic!("link {name}: {e}")
                }
                _ => {}
            };
        link("sub/page.html", "inside");
        link("/etc", "outside");
        let fifo = std::ffi::CString::new(dir.join("fifo").into_os_string().into_encoded_bytes())
            .expect("no NUL in a temp path");
        // SAFETY: `fifo` is a NUL-terminated path that lives across the call.
        unsafe { libc_mkfifo(fifo.as_ptr(), 0o600) };
        deskrelay::front::http::WebRoot::new(&dir).expect("web root opens")
    })
}

extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}

/// Checks that `bytes` starts with a well-formed HTTP/1.1 response head: a status line,
/// `Name: value` lines with no control characters but tab in the value, the empty line.
/// Client bytes that reach a header (a language echoed back, a redirect location) must not
/// be able to add a line or end the head early.
pub fn check_response_head(bytes: &[u8]) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head ends with an empty line");
    let head = std::str::from_utf8(&bytes[..end]).expect("a head is UTF-8");
    let mut lines = head.split("\r\n");
    let status = lines.next().expect("a status line");
    assert!(status.starts_with("HTTP/1.1 "), "status line {status:?}");
    for line in lines {
        let (name, value) = line.split_once(": ").expect("a header line");
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
            "header name {name:?}"
        );
        assert!(
            !value.chars().any(|c| c != '\t' && c.is_control()),
            "header value {value:?}"
        );
    }
}
