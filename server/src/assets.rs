//! Static files: the chat page (compiled in) and the official Socket.IO client (read from the
//! installed npm package at start-up, because it is not ours to vendor).

use std::path::{Path, PathBuf};

use bytes::Bytes;

/// The chat page, compiled into the binary so `chat-server` works from any directory.
pub const INDEX_HTML: &str = include_str!("../../web/index.html");
pub const APP_JS: &str = include_str!("../../web/app.js");
pub const STYLE_CSS: &str = include_str!("../../web/style.css");
/// The race page: every door at once, charting when each delivered a message.
pub const RACE_HTML: &str = include_str!("../../web/race.html");
pub const RACE_JS: &str = include_str!("../../web/race.js");
pub const RACE_CSS: &str = include_str!("../../web/race.css");

/// Where the client bundle sits inside a web folder (minified first).
const CLIENT_BUNDLES: [&str; 2] = [
    "node_modules/socket.io-client/dist/socket.io.min.js",
    "node_modules/socket.io-client/dist/socket.io.js",
];

/// Files loaded at start-up.
#[derive(Debug, Default)]
pub struct Assets {
    /// `/socket.io/socket.io.js`, if the npm package is installed.
    pub socket_io_client: Option<Bytes>,
}

impl Assets {
    /// Loads the client bundle from `web_dir`, else `./web`, else the source tree's `web/`.
    pub fn load(web_dir: Option<&Path>) -> Self {
        let candidates: Vec<PathBuf> = match web_dir {
            Some(dir) => vec![dir.to_path_buf()],
            None => vec![
                PathBuf::from("web"),
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../web")),
            ],
        };
        for dir in &candidates {
            for bundle in CLIENT_BUNDLES {
                let path = dir.join(bundle);
                if let Ok(bytes) = std::fs::read(&path) {
                    tracing::debug!("serving /socket.io/socket.io.js from {}", path.display());
                    return Assets {
                        socket_io_client: Some(Bytes::from(bytes)),
                    };
                }
            }
        }
        tracing::warn!(
            "socket.io-client is not installed (looked in {candidates:?}); /socket.io/socket.io.js will \
             answer 404 and the chat page will fall back to long polling. Fix: run `npm ci --prefix web`"
        );
        Assets::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_the_package_yields_no_client() {
        let assets = Assets::load(Some(Path::new("this-folder-does-not-exist")));
        assert!(assets.socket_io_client.is_none());
    }

    #[test]
    fn the_page_loads_the_client_and_renders_text_safely() {
        assert!(INDEX_HTML.contains("/socket.io/socket.io.js"));
        assert!(!APP_JS.contains("innerHTML"));
    }

    #[test]
    fn the_race_page_loads_the_client_and_renders_text_safely() {
        assert!(RACE_HTML.contains("/socket.io/socket.io.js"));
        assert!(RACE_HTML.contains("/race.js") && RACE_HTML.contains("/race.css"));
        assert!(
            INDEX_HTML.contains("href=\"/race\""),
            "the chat page links the race page"
        );
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!RACE_JS.contains(forbidden), "race.js uses {forbidden}");
        }
        // Relative URLs only, so the page works against any server it is served from (the one
        // absolute URL is SVG's namespace name, which is never fetched).
        let without_svg_namespace = RACE_JS.replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(!without_svg_namespace.contains("://"));
    }
}
