//! Tests for the web root: resolution, refusals, heads, and the real xpra HTML5 client.

use std::os::unix::fs::symlink;

use super::*;
use crate::front::http::request::parse;
use crate::front::http::testdir::TempDir;

const XPRA_WWW: &str = "/usr/share/xpra/www";

fn get(method: &str, target: &str, extra: &str) -> Request {
    let head = format!("{method} {target} HTTP/1.1\r\nHost: h\r\n{extra}\r\n");
    parse(head.as_bytes()).unwrap().unwrap().0
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

/// root/{index.html, app.js, app.js.gz, sub/{index.html}, empty/, .secret, out -> other}
fn fixture() -> (TempDir, WebRoot) {
    let dir = TempDir::new("webroot");
    dir.write("www/index.html", b"<html>root</html>");
    dir.write("www/app.js", b"console.log(1);");
    dir.write("www/app.js.gz", b"\x1f\x8b fake gzip");
    dir.write("www/style.css", b"body{}");
    dir.write("www/sub/index.html", b"sub");
    dir.write("www/a b.txt", b"spaced");
    dir.write("www/.secret", b"hidden");
    std::fs::create_dir_all(dir.path().join("www/empty")).unwrap();
    dir.write("outside/passwd", b"root:x:0:0");
    dir.write("lib/jquery.js", b"jQuery");
    symlink(
        dir.path().join("outside/passwd"),
        dir.path().join("www/out"),
    )
    .unwrap();
    symlink(
        dir.path().join("lib/jquery.js"),
        dir.path().join("www/jquery.js"),
    )
    .unwrap();
    let root = WebRoot::new(dir.path().join("www")).unwrap();
    (dir, root)
}

fn file(r: Result<Resolved, HttpError>) -> FileInfo {
    match r {
        Ok(Resolved::File(f)) => f,
        other => panic!("expected a file, got {other:?}"),
    }
}

#[test]
fn index_and_files() {
    let (_dir, root) = fixture();
    let f = file(root.resolve("/"));
    assert!(f.path.ends_with("www/index.html"));
    assert_eq!(f.content_type, "text/html; charset=utf-8");
    assert_eq!(f.len, 17);
    assert!(file(root.resolve("/sub/")).path.ends_with("sub/index.html"));
    assert_eq!(root.resolve("/sub"), Ok(Resolved::Redirect("/sub/".into())));
    assert_eq!(
        root.resolve("//sub"),
        Ok(Resolved::Redirect("/sub/".into())),
        "never //host"
    );
    assert_eq!(file(root.resolve("/./app.js")).len, 15);
    assert_eq!(file(root.resolve("/a%20b.txt")).len, 6);
    assert_eq!(
        root.resolve("/empty/"),
        Err(HttpError::NotFound),
        "no listing"
    );
    assert_eq!(root.resolve("/missing"), Err(HttpError::NotFound));
    assert_eq!(root.resolve("/app.js/x"), Err(HttpError::NotFound));
    assert_eq!(root.resolve("/.secret"), Err(HttpError::NotFound));
}

#[test]
fn traversal_refused() {
    let (_dir, root) = fixture();
    for path in [
        "/../outside/passwd",
        "/sub/../../outside/passwd",
        "/%2e%2e/outside/passwd",
        "/%2E%2E/outside/passwd",
        "/sub/%2e%2e%2f%2e%2e%2foutside/passwd",
        "/..%2foutside/passwd",
        "/%2fetc%2fpasswd",
        "/..%5coutside",
    ] {
        let err = root.resolve(path).unwrap_err();
        assert_eq!(err.status().code(), 403, "{path}: {err}");
    }
    for path in ["/app.js%00.png", "/%zz", "/%"] {
        let err = root.resolve(path).unwrap_err();
        assert_eq!(err.status().code(), 400, "{path}: {err}");
    }
    // A link placed in the root pointing outside it.
    assert_eq!(
        root.resolve("/out"),
        Err(HttpError::Forbidden("outside the web root"))
    );
}

#[test]
fn link_roots_let_deliberate_links_out() {
    let (dir, root) = fixture();
    assert_eq!(
        root.resolve("/jquery.js"),
        Err(HttpError::Forbidden("outside the web root"))
    );
    let root = root.with_link_roots([dir.path().join("lib")]).unwrap();
    let f = file(root.resolve("/jquery.js"));
    assert!(f.path.ends_with("lib/jquery.js"));
    assert_eq!(f.content_type, "text/javascript; charset=utf-8");
    assert!(root.resolve("/out").is_err(), "only the listed trees");
    assert!(root.with_link_roots(["/nonexistent/dir"]).is_err());
}

#[test]
fn get_and_head() {
    let (_dir, root) = fixture();
    let r = root.respond(&get("GET", "/app.js", ""), false);
    assert_eq!(r.status, Status::Ok);
    assert!(r.keep_alive);
    let head = text(&r.head);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Type: text/javascript; charset=utf-8\r\n"));
    assert!(head.contains("\r\nContent-Length: 15\r\n"));
    assert!(head.contains("\r\nLast-Modified: "));
    assert!(head.contains("\r\nX-Content-Type-Options: nosniff\r\n"));
    assert!(head.contains("\r\nConnection: keep-alive\r\n"));
    assert!(!head.contains("Strict-Transport-Security"));
    assert!(head.ends_with("\r\n\r\n"));
    match &r.body {
        BodySource::File { path, len } => {
            assert!(path.ends_with("www/app.js"));
            assert_eq!(*len, 15);
        }
        other => panic!("{other:?}"),
    }
    let h = root.respond(&get("HEAD", "/app.js", "Connection: close\r\n"), true);
    assert_eq!(h.body, BodySource::Empty);
    assert!(!h.keep_alive);
    let head = text(&h.head);
    assert!(
        head.contains("\r\nContent-Length: 15\r\n"),
        "HEAD keeps the length"
    );
    assert!(head.contains("\r\nStrict-Transport-Security: max-age=31536000\r\n"));
    assert!(head.contains("\r\nConnection: close\r\n"));
}

#[test]
fn other_methods_405() {
    let (_dir, root) = fixture();
    for m in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let r = root.respond(&get(m, "/app.js", ""), false);
        assert_eq!(r.status, Status::MethodNotAllowed, "{m}");
        assert!(text(&r.head).contains("\r\nAllow: GET, HEAD\r\n"));
        assert_eq!(
            r.body,
            BodySource::Bytes(b"405 Method Not Allowed\n".to_vec())
        );
    }
    let r = root.respond(&get("POST", "/", "Content-Length: 5\r\n"), false);
    assert!(!r.keep_alive, "the unread body ends the connection");
}

#[test]
fn errors_and_redirects() {
    let (_dir, root) = fixture();
    let r = root.respond(&get("GET", "/missing", ""), false);
    assert_eq!(r.status, Status::NotFound);
    assert_eq!(r.body, BodySource::Bytes(b"404 Not Found\n".to_vec()));
    let head = text(&r.head);
    assert!(head.contains("\r\nContent-Length: 14\r\n"), "{head}");
    let r = root.respond(&get("HEAD", "/missing", ""), false);
    assert_eq!(r.body, BodySource::Empty);
    let r = root.respond(&get("GET", "/%2e%2e/x", ""), false);
    assert_eq!(r.status, Status::Forbidden);
    let r = root.respond(&get("GET", "/sub?x=1", ""), false);
    assert_eq!(r.status, Status::MovedPermanently);
    assert!(text(&r.head).contains("\r\nLocation: /sub/\r\n"));
    assert_eq!(r.body, BodySource::Empty);
}

#[test]
fn precompressed_sibling() {
    let (_dir, root) = fixture();
    let r = root.respond(
        &get("GET", "/app.js", "Accept-Encoding: gzip, deflate\r\n"),
        false,
    );
    let head = text(&r.head);
    assert!(head.contains("\r\nContent-Encoding: gzip\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Type: text/javascript; charset=utf-8\r\n"));
    assert!(head.contains("\r\nVary: Accept-Encoding\r\n"));
    assert!(matches!(&r.body, BodySource::File { path, .. } if path.ends_with("app.js.gz")));
    for refuse in ["gzip;q=0", "br", "identity", "*;q=0", "gzip; q=0.000"] {
        let r = root.respond(
            &get("GET", "/app.js", &format!("Accept-Encoding: {refuse}\r\n")),
            false,
        );
        assert!(!text(&r.head).contains("Content-Encoding"), "{refuse}");
    }
    let r = root.respond(&get("GET", "/app.js", "Accept-Encoding: *\r\n"), false);
    assert!(text(&r.head).contains("Content-Encoding: gzip"));
    let r = root.respond(
        &get("GET", "/style.css", "Accept-Encoding: gzip\r\n"),
        false,
    );
    assert!(!text(&r.head).contains("Content-Encoding"), "no sibling");
}

#[test]
fn if_modified_since() {
    let (_dir, root) = fixture();
    let first = root.respond(&get("GET", "/app.js", ""), false);
    let head = text(&first.head);
    let lm = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Last-Modified: "))
        .unwrap()
        .to_owned();
    let r = root.respond(
        &get("GET", "/app.js", &format!("If-Modified-Since: {lm}\r\n")),
        false,
    );
    assert_eq!(r.status, Status::NotModified);
    assert_eq!(r.body, BodySource::Empty);
    assert!(!text(&r.head).contains("Content-Length"));
    let old = "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
    assert_eq!(
        root.respond(&get("GET", "/app.js", old), false).status,
        Status::Ok
    );
    let junk = "If-Modified-Since: yesterday\r\n";
    assert_eq!(
        root.respond(&get("GET", "/app.js", junk), false).status,
        Status::Ok
    );
}

#[test]
fn echo_headers_for_connect_html() {
    let (_dir, root) = fixture();
    let r = root.respond(
        &get(
            "GET",
            "/app.js?echo-headers",
            "Accept-Language: en-GB,en;q=0.8<script>\r\n",
        ),
        false,
    );
    assert!(text(&r.head).contains("\r\nEcho-Accept-Language: en-GB,en;q=0.8script\r\n"));
    let r = root.respond(&get("GET", "/app.js", "Accept-Language: en\r\n"), false);
    assert!(!text(&r.head).contains("Echo-"));
}

#[test]
fn special_files_not_served() {
    let dir = TempDir::new("webroot-fifo");
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let root = WebRoot::new(dir.path()).unwrap();
    assert_eq!(root.resolve("/pipe"), Err(HttpError::NotFound));
    assert!(
        WebRoot::new(dir.path().join("pipe")).is_err(),
        "the root must be a directory"
    );
}

#[test]
fn content_types() {
    for (name, ty) in [
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.html", "text/html; charset=utf-8"),
        ("a.svg", "image/svg+xml; charset=utf-8"),
        ("a.wasm", "application/wasm"),
        ("a.png", "image/png"),
        ("a.woff2", "font/woff2"),
        ("a.woff", "font/woff"),
        ("a.js.map", "application/json; charset=utf-8"),
        ("AUTHORS", "application/octet-stream"),
        ("a.PNG", "image/png"),
    ] {
        assert_eq!(content_type(name), ty, "{name}");
    }
}

/// Every file of Debian's xpra HTML5 client resolves, with a type the browser accepts under
/// `nosniff`; jQuery only with the Debian link root.
#[test]
fn real_xpra_www() {
    if !Path::new(XPRA_WWW).join("index.html").exists() {
        eprintln!("skipped: {XPRA_WWW} not installed (Debian package xpra)");
        return;
    }
    let bare = WebRoot::new(XPRA_WWW).unwrap();
    let jquery = "/js/lib/jquery.js";
    let jquery_linked = std::fs::symlink_metadata(format!("{XPRA_WWW}{jquery}"))
        .is_ok_and(|m| m.file_type().is_symlink());
    if jquery_linked {
        assert_eq!(
            bare.resolve(jquery),
            Err(HttpError::Forbidden("outside the web root"))
        );
    }
    let root = bare.with_link_roots([DEBIAN_JAVASCRIPT]).unwrap();
    let mut seen = 0;
    let mut stack = vec![PathBuf::from(XPRA_WWW)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(XPRA_WWW).unwrap().to_str().unwrap();
            let f = file(root.resolve(&format!("/{rel}")));
            seen += 1;
            let want = match p.extension().and_then(|e| e.to_str()) {
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("html") => "text/html; charset=utf-8",
                Some("png") => "image/png",
                Some("map") => "application/json; charset=utf-8",
                _ => continue,
            };
            assert_eq!(f.content_type, want, "{rel}");
        }
    }
    assert!(seen > 40, "walked only {seen} files");
    let index = file(root.resolve("/"));
    assert!(index.path.ends_with("index.html"));
    let r = root.respond(&get("GET", "/connect.html", ""), true);
    assert_eq!(r.status, Status::Ok);
    let r = root.respond(&get("GET", jquery, ""), false);
    assert_eq!(r.status, Status::Ok, "{}", text(&r.head));
}

proptest::proptest! {
    /// Paths built from traversal pieces never panic and never leave the root.
    #[test]
    fn resolve_stays_inside(pieces in proptest::collection::vec(
        proptest::sample::select(vec![
            "/", ".", "..", "%2e", "%2E", "%2f", "%5c", "%00", "%", "sub", "out", "app.js",
            "outside", "passwd", "index.html", "%252e",
        ]),
        0..12,
    )) {
        let (dir, root) = fixture();
        let path = format!("/{}", pieces.concat());
        if let Ok(Resolved::File(f)) = root.resolve(&path) {
            proptest::prop_assert!(f.path.starts_with(dir.path().join("www")), "{path}");
        }
        let _ = root.respond(&get("GET", "/", ""), false);
    }
}
