//! The browser path end to end: headless Chromium opens xpra's HTML5 client served by
//! deskrelay (`--web-root /usr/share/xpra/www`), which connects over deskrelay's WebSocket on
//! the same port, through the xpra door's authentication, to a real xpra 3.1.3 server
//! running xclock. The test asserts on pixels: the window's region of a screenshot shows what
//! the server itself shows. Then the same over `wss://` with a certificate made by the test.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::browser::{
    compare_with_server, html5_client_url, png_region_stats, Browser, BrowserOpts, Pictures,
    BROWSER_TIMEOUT,
};
use common::xpra::{ServerOpts, XpraServer};
use common::RelayProcess;

const WWW: &str = "/usr/share/xpra/www";

struct Files(PathBuf);

impl Files {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("deskrelay-web-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens the HTML5 client from the relay and asserts the xclock window is drawn as the
/// server draws it.
fn html5_client_draws_xclock(relay: &RelayProcess, server: &XpraServer, ssl: bool, name: &str) {
    let pics = Pictures::new(name);
    let browser = Browser::start(BrowserOpts::default());
    let ssl = if ssl { "true" } else { "false" };
    let mut url = html5_client_url(
        relay.addr,
        relay.addr,
        None,
        &[("username", "web"), ("password", "web-pw"), ("ssl", ssl)],
    );
    if ssl == "true" {
        url = url.replacen("http://", "https://", 1);
    }
    browser.goto(&url);
    let (canvas, took) = browser.wait_for_canvas_pixels(3, BROWSER_TIMEOUT);
    println!("{name}: first window pixels {took:?} after page load; canvas {canvas:?}");
    let shot = pics.path("page.png");
    browser.screenshot_png(&shot);
    let stats = png_region_stats(&shot, canvas.x, canvas.y, canvas.width, canvas.height)
        .unwrap_or_else(|e| browser.fail(&e));
    if !(stats.colours >= 16 && stats.white >= 0.5 && stats.dark >= 0.005) {
        browser.fail(&format!(
            "{name}: the window's region is not a clock: {stats:?}\nrelay:\n{}",
            relay.stderr()
        ));
    }
    let (_, cmp) = compare_with_server(&browser, server, &canvas, &pics);
    println!("{name}: page vs server {cmp:?}");
    let ws = browser.eval_js("client.uri");
    let want = if ssl == "true" { "wss://" } else { "ws://" };
    assert!(
        ws.starts_with(want),
        "{name}: the client's WebSocket is {ws}"
    );
    let left = browser.close();
    assert!(left.is_empty(), "browser processes left behind: {left:?}");
}

#[test]
fn the_html5_client_from_deskrelay_draws_the_remote_window() {
    let server = XpraServer::start(ServerOpts::default());
    let files = Files::new("ws");
    let users = files.write(
        "users",
        &format!("web|web-pw|1000|1000|{}||\n", server.uri()),
    );
    let relay = RelayProcess::start(&[
        "--auth",
        &format!("multifile:{}", users.display()),
        "--web-root",
        WWW,
    ]);
    html5_client_draws_xclock(&relay, &server, false, "html5-ws");
    assert!(
        relay.wait_for_log("user=\"web\"", std::time::Duration::from_secs(20)),
        "{}",
        relay.stderr()
    );
}

#[test]
fn the_html5_client_over_wss_with_a_self_signed_certificate() {
    let server = XpraServer::start(ServerOpts::default());
    let files = Files::new("wss");
    let users = files.write(
        "users",
        &format!("web|web-pw|1000|1000|{}||\n", server.uri()),
    );
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let cert = files.write("cert.pem", &key.cert.pem());
    let key = files.write("key.pem", &key.key_pair.serialize_pem());
    let relay = RelayProcess::start(&[
        "--auth",
        &format!("multifile:{}", users.display()),
        "--web-root",
        WWW,
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    html5_client_draws_xclock(&relay, &server, true, "html5-wss");
}
