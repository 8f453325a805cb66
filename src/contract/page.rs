//! The API page for unit developers, `/api/docs`: Swagger UI (swagger-ui-dist 5.35.0,
//! Apache-2.0, in `assets/swagger-ui/`) served from the binary, so it works on a ministry
//! network with no way out. `/api/docs?unit=<unit>` shows one unit's document.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

const BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");

/// Which document to show: `?unit=` picks one unit's, else the whole API. A script file of
/// its own, not inline, so a strict Content-Security-Policy can stay on.
const INIT: &str = r##"(function () {
  var unit = new URLSearchParams(window.location.search).get("unit");
  var url = unit && /^[A-Za-z0-9_-]+$/.test(unit)
    ? "/api/v1/units/" + unit + "/openapi.json"
    : "/api/v1/openapi.json";
  window.ui = SwaggerUIBundle({ url: url, dom_id: "#api", deepLinking: true });
})();
"##;

pub async fn page() -> Html<String> {
    Html(
        maud::html! {
            (maud::DOCTYPE)
            html lang="vi" {
                head {
                    meta charset="utf-8";
                    title { "lienthong: API" }
                    link rel="stylesheet" href="/api/docs/swagger-ui.css";
                }
                body {
                    div id="api" {}
                    script src="/api/docs/swagger-ui-bundle.js" {}
                    script src="/api/docs/init.js" {}
                }
            }
        }
        .into_string(),
    )
}

fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

pub async fn bundle() -> Response {
    asset("text/javascript; charset=utf-8", BUNDLE)
}

pub async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn init() -> Response {
    asset("text/javascript; charset=utf-8", INIT.as_bytes())
}
