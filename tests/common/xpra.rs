//! Real xpra 3.1.3 peers (the Debian package) for the integration tests, all on loopback:
//! a server running xclock on its own Xvfb, clients attached from displays of their own,
//! `xpra info`, and tools to see what those peers put on the wire.
//!
//! Each guard runs its programs hermetically (scratch dir, no system xpra.conf, see
//! [`Scratch::hermetic_env`]), bounds every wait, prints its log when the test panics, and on
//! drop stops everything it started, down to the Xvfb that xpra runs in a session of its own.
//! Every process carries an environment tag so tests can prove nothing was left behind
//! ([`tagged_processes`]).
//!
//! `scripts/test.sh` installs the packages: xpra, xvfb, x11-apps (xclock), x11-utils
//! (xdpyinfo, xwininfo), xauth, python3-pil, python3-lz4 and python3-gi-cairo (without it the
//! client maps windows but never paints them).

mod client;
mod proc;
mod server;
mod wire;
mod x11;

// Each test file uses a different subset of these.
#[allow(unused_imports)]
pub use client::{client_flags, hide_lz4, ClientOpts, XpraClient};
#[allow(unused_imports)]
pub use proc::{run_bounded, tagged_processes, wait_untagged, Scratch};
#[allow(unused_imports)]
pub use server::{server_flags, xpra_info, ServerOpts, XpraServer};
#[allow(unused_imports)]
pub use wire::{
    packet_type, read_frame, rencode_frame, rencode_strings, Compression, Dir, FakeServer, Frame,
    FrameHeader, FrameTap, HeaderTrap, PacketType,
};
#[allow(unused_imports)]
pub use x11::{display_answers, free_display, parse_tree_line, windows, Window, Xvfb};

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// The bound for anything xpra does once (start, attach, answer `info`), sized for a loaded
/// two-core machine where a server start takes 2 s idle and 10+ s under a parallel build.
pub const STARTUP: Duration = Duration::from_secs(60);

/// `tcp://[USER@]HOST:PORT/`
pub fn tcp_uri(addr: SocketAddr, user: Option<&str>) -> String {
    match user {
        Some(u) => format!("tcp://{u}@{addr}/"),
        None => format!("tcp://{addr}/"),
    }
}

/// A `Command` for `xpra` with `scratch`'s hermetic environment.
pub fn xpra_command(scratch: &Scratch) -> Command {
    let mut cmd = Command::new("xpra");
    scratch.hermetic_env(&mut cmd);
    cmd
}
