//! The bundle's three files over HTTP with `web-sys`: `fetch`, the `Response`, its
//! `Content-Length` and its body's `ReadableStream`, the bytes counted as they arrive, so a
//! page can show the download's progress without fetching anything itself.

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsError, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response, Window, WorkerGlobalScope};

use crate::bundle::{CONFIG_FILE, MODEL_FILE, VOC_FILE};

/// The bundle's files, in the order `Chatbot::from_bytes` takes them.
const FILES: [&str; 3] = [MODEL_FILE, CONFIG_FILE, VOC_FILE];

/// The bytes of one file, or an error that names its URL.
type Fetched = Result<Vec<u8>, JsError>;

/// `fetch(url)` in a window or in a worker.
fn fetch(url: &str) -> Result<Promise, JsError> {
    let global = js_sys::global();
    if let Some(worker) = global.dyn_ref::<WorkerGlobalScope>() {
        Ok(worker.fetch_with_str(url))
    } else if let Some(window) = global.dyn_ref::<Window>() {
        Ok(window.fetch_with_str(url))
    } else {
        Err(JsError::new("fetch: neither a window nor a worker"))
    }
}

/// A thrown JS value's message, for an error of ours.
fn message(error: &JsValue) -> String {
    Reflect::get(error, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// Calls `on_progress({file, url, loaded, total})`; `total` is the `Content-Length`, or
/// `null` when the server sent none, and never below `loaded`.
fn report(
    on_progress: Option<&Function>,
    file: &str,
    url: &str,
    loaded: usize,
    total: Option<usize>,
) -> Result<(), JsError> {
    let Some(callback) = on_progress else {
        return Ok(());
    };
    let progress = Object::new();
    let total = total.map_or(JsValue::NULL, |t| (t.max(loaded) as f64).into());
    for (key, value) in [
        ("file", JsValue::from_str(file)),
        ("url", JsValue::from_str(url)),
        ("loaded", (loaded as f64).into()),
        ("total", total),
    ] {
        Reflect::set(&progress, &JsValue::from_str(key), &value)
            .map_err(|e| JsError::new(&message(&e)))?;
    }
    callback
        .call1(&JsValue::NULL, &progress)
        .map_err(|e| JsError::new(&format!("onProgress: {}", message(&e))))?;
    Ok(())
}

/// `base_url` joined with a file name: `weights` and `weights/` both mean the directory.
fn url_of(base_url: &str, file: &str) -> String {
    if base_url.is_empty() || base_url.ends_with('/') {
        format!("{base_url}{file}")
    } else {
        format!("{base_url}/{file}")
    }
}

/// The body of a response that came back 2xx, read chunk by chunk.
async fn read_body(
    response: Response,
    file: &str,
    url: &str,
    total: Option<usize>,
    on_progress: Option<&Function>,
) -> Fetched {
    let failed = |e: JsValue| JsError::new(&format!("{url}: {}", message(&e)));
    let mut bytes = Vec::with_capacity(total.unwrap_or(0));
    let Some(body) = response.body() else {
        return Ok(bytes);
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(failed)?;
        let done = Reflect::get(&chunk, &JsValue::from_str("done")).map_err(failed)?;
        if done.as_bool().unwrap_or(true) {
            return Ok(bytes);
        }
        let value: Uint8Array = Reflect::get(&chunk, &JsValue::from_str("value"))
            .map_err(failed)?
            .dyn_into()
            .map_err(failed)?;
        let start = bytes.len();
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        report(on_progress, file, url, bytes.len(), total)?;
    }
}

/// Fetches `model.safetensors`, `config.json` and `voc.json` from each of `base_urls`
/// (relative to the page or worker), every file requested at once. Every response's headers
/// are awaited first, so a missing file fails before any body is read and each file's size
/// is reported (`loaded` 0) before the first byte; then the bodies are read in turn. One
/// `[model, config, voc]` per base URL, in order.
pub async fn bundle_files(
    base_urls: &[&str],
    on_progress: Option<&Function>,
) -> Result<Vec<[Vec<u8>; 3]>, JsError> {
    let mut requests = Vec::with_capacity(FILES.len() * base_urls.len());
    for base_url in base_urls {
        for file in FILES {
            let url = url_of(base_url, file);
            let pending = fetch(&url)?;
            requests.push((file, url, pending));
        }
    }
    let mut responses = Vec::with_capacity(requests.len());
    for (file, url, pending) in requests {
        let failed = |e: JsValue| JsError::new(&format!("{url}: {}", message(&e)));
        let response: Response = JsFuture::from(pending)
            .await
            .map_err(failed)?
            .dyn_into()
            .map_err(failed)?;
        if !response.ok() {
            let status = format!("{} {}", response.status(), response.status_text());
            return Err(JsError::new(&format!("{url}: HTTP {}", status.trim())));
        }
        let total = response
            .headers()
            .get("Content-Length")
            .ok()
            .flatten()
            .and_then(|length| length.trim().parse::<usize>().ok());
        report(on_progress, file, &url, 0, total)?;
        responses.push((file, url, response, total));
    }
    let mut files = Vec::with_capacity(responses.len());
    for (file, url, response, total) in responses {
        files.push(read_body(response, file, &url, total, on_progress).await?);
    }
    let mut bundles = Vec::with_capacity(base_urls.len());
    let mut files = files.into_iter();
    for _ in base_urls {
        let bundle: Vec<Vec<u8>> = files.by_ref().take(FILES.len()).collect();
        bundles.push(bundle.try_into().expect("one per file"));
    }
    Ok(bundles)
}
