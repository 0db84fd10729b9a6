//! The web phone: the files of `web/`, compiled into the binary so that
//! `siphon` alone serves a working page at `/`.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// (path, content type, body) of every served file.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    ),
    (
        "siphon.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/siphon.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
];

/// `/`: the page.
pub(super) async fn index() -> Response {
    file("index.html")
}

/// `/<name>`: one of the page's files, else 404.
pub(super) async fn asset(Path(name): Path<String>) -> Response {
    file(&name)
}

fn file(name: &str) -> Response {
    match FILES.iter().find(|(path, ..)| *path == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // Small files, and a new siphon must never run an old page.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_page_and_its_files_are_served_with_their_types() {
        let page = index().await;
        assert_eq!(page.status(), StatusCode::OK);
        let ct = page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(ct.starts_with("text/html"), "{ct}");
        let html = body(page).await;
        for id in [
            "token", "to", "call", "answer", "reject", "hangup", "mute", "hold", "pad", "state",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "#{id} missing");
        }
        for (name, ty) in [
            ("siphon.js", "text/javascript"),
            ("app.js", "text/javascript"),
            ("style.css", "text/css"),
        ] {
            let r = asset(Path(name.to_owned())).await;
            assert_eq!(r.status(), StatusCode::OK, "{name}");
            assert!(r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(ty));
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        }
        assert!(body(asset(Path("siphon.js".into())).await)
            .await
            .contains("export class Siphon"));
    }

    #[tokio::test]
    async fn anything_else_is_404() {
        for name in ["nope.js", "../Cargo.toml", "index.htm", ""] {
            let r = asset(Path(name.to_owned())).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{name}");
        }
    }
}
