//! The offline page: the trace's timeline as one self-contained HTML file.

use super::model::Model;

/// The page for `json` (the Chrome trace of `m`).
pub(crate) fn page(json: &str, m: &Model) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>shmrun trace, {} ranks</title></head>\
         <body><script id=\"trace\" type=\"application/json\">{json}</script></body></html>\n",
        m.n
    )
}
