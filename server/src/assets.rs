//! The console's static files (`/pkg`: WASM, JS, CSS): compressed once with brotli and gzip
//! beside the originals, served in the encoding the browser accepts, and cached for a year
//! when cargo-leptos has put a content hash in their names.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Files worth compressing (the rest are images or already small).
const COMPRESSIBLE: [&str; 4] = ["wasm", "js", "css", "json"];

/// Numbers the files being compressed in this process (see [`precompress_dir`]).
static PARTIALS: AtomicU64 = AtomicU64::new(0);

/// The stylesheet's address, for the pages made outside Leptos (sign-in, OAuth errors); set
/// once at start-up by [`hashed_names`].
static STYLESHEET: OnceLock<String> = OnceLock::new();

/// Whether cargo-leptos hashed the file names (its `hash.txt` sits beside the binary), and the
/// stylesheet's address either way.
pub fn hashed_names(hash_file: &str, output_name: &str) -> bool {
    let hashes = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(hash_file)))
        .and_then(|path| std::fs::read_to_string(path).ok());
    let css_hash = hashes.as_deref().and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("css:").map(|hash| hash.trim().to_owned()))
    });
    let href = match &css_hash {
        Some(hash) => format!("/pkg/{output_name}.{hash}.css"),
        None => format!("/pkg/{output_name}.css"),
    };
    let _ = STYLESHEET.set(href);
    hashes.is_some()
}

/// The console stylesheet's address (`/pkg/berth.<hash>.css` in a release build).
pub fn stylesheet() -> &'static str {
    STYLESHEET.get().map_or("/pkg/berth.css", String::as_str)
}

/// Writes `name.br` and `name.gz` beside each compressible file of `dir` that lacks a current
/// one. Runs at start-up, so requests never pay for compression.
pub async fn precompress(dir: PathBuf) {
    let done = tokio::task::spawn_blocking(move || precompress_dir(&dir)).await;
    match done {
        Ok(Ok(count)) if count > 0 => tracing::info!(count, "compressed console assets"),
        Ok(Ok(_)) => {}
        Ok(Err(err)) => {
            tracing::warn!(%err, "compressing console assets failed; serving them uncompressed")
        }
        Err(err) => tracing::warn!(%err, "compressing console assets failed"),
    }
}

fn precompress_dir(dir: &Path) -> std::io::Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut count = 0;
    for entry in entries {
        let path = entry?.path();
        let compressible = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| COMPRESSIBLE.contains(&e));
        if !compressible {
            continue;
        }
        let modified = std::fs::metadata(&path)?.modified()?;
        for (suffix, compress) in [
            ("br", brotli_bytes as fn(&[u8]) -> std::io::Result<Vec<u8>>),
            ("gz", gzip_bytes),
        ] {
            let target = PathBuf::from(format!("{}.{suffix}", path.display()));
            let current = std::fs::metadata(&target)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= modified);
            if current {
                continue;
            }
            let compressed = compress(&std::fs::read(&path)?)?;
            // Written aside then renamed: a reader never sees half a file. The aside name is
            // this run's own, as several servers started together may share the folder.
            let partial = PathBuf::from(format!(
                "{}.{}-{}.partial",
                target.display(),
                std::process::id(),
                PARTIALS.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&partial, compressed)?;
            std::fs::rename(&partial, &target)?;
            count += 1;
        }
    }
    Ok(count)
}

fn brotli_bytes(input: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut output = Vec::with_capacity(input.len() / 3);
    {
        let mut writer = brotli::CompressorWriter::new(&mut output, 64 * 1024, 11, 22);
        writer.write_all(input)?;
    }
    Ok(output)
}

/// Zopfli: about 5% smaller than zlib's best for any gzip reader (Chromium over plain HTTP
/// asks for gzip, not brotli), at about two seconds for the WASM bundle, once.
fn gzip_bytes(input: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut output = Vec::with_capacity(input.len() / 3);
    zopfli::compress(
        zopfli::Options::default(),
        zopfli::Format::Gzip,
        input,
        &mut output,
    )?;
    Ok(output)
}

/// No asset has a long name. A segment near the filesystem's 255-byte limit (ServeDir adds
/// `.br` or `.gz` to it), or a path near `PATH_MAX`, would make `ServeDir` answer the
/// system's "file name too long" with a 500.
async fn no_overlong_names(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    const MAX_SEGMENT: usize = 200;
    const MAX_PATH: usize = 1024;
    let path = request.uri().path();
    if path.len() > MAX_PATH || path.split('/').any(|segment| segment.len() > MAX_SEGMENT) {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    next.run(request).await
}

/// `/pkg`: precompressed variants chosen by `Accept-Encoding`; a year's caching for hashed
/// names, revalidation otherwise.
pub fn router(dir: PathBuf, hashed: bool) -> Router {
    let cache = if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Router::new()
        .fallback_service(ServeDir::new(dir).precompressed_br().precompressed_gzip())
        .layer(axum::middleware::from_fn(no_overlong_names))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[test]
    fn compressed_files_appear_beside_the_originals_and_decompress_to_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = "fn main() {}\n".repeat(1000);
        std::fs::write(dir.path().join("app.js"), &text).expect("write");
        std::fs::write(dir.path().join("logo.png"), [0u8; 10]).expect("write");
        assert_eq!(precompress_dir(dir.path()).expect("compress"), 2);
        assert!(!dir.path().join("logo.png.br").exists());
        let gz = std::fs::read(dir.path().join("app.js.gz")).expect("gz");
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain)
            .expect("gunzip");
        assert_eq!(plain, text);
        let br = std::fs::read(dir.path().join("app.js.br")).expect("br");
        let mut plain = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut plain).expect("unbrotli");
        assert_eq!(plain, text.as_bytes());
        // A second run finds them current.
        assert_eq!(precompress_dir(dir.path()).expect("compress"), 0);
    }

    async fn status(dir: &Path, path: &str) -> StatusCode {
        let request = Request::get(path)
            .header(header::ACCEPT_ENCODING, "br, gzip")
            .body(Body::empty())
            .expect("request");
        router(dir.to_path_buf(), true)
            .oneshot(request)
            .await
            .expect("answer")
            .status()
    }

    #[tokio::test]
    async fn names_no_file_can_have_are_not_found_not_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("app.js"), "x").expect("write");
        assert_eq!(status(dir.path(), "/app.js").await, StatusCode::OK);
        // 254 bytes fit a file name, but not with the `.br` ServeDir tries first.
        for length in [201, 254, 255, 256, 5000] {
            let name = "a".repeat(length);
            assert_eq!(
                status(dir.path(), &format!("/{name}")).await,
                StatusCode::NOT_FOUND
            );
        }
        let deep = format!("/{}", vec!["a".repeat(200); 25].join("/"));
        assert_eq!(status(dir.path(), &deep).await, StatusCode::NOT_FOUND);
    }
}
