//! Server-rendered pages: login, consent, signed-in and error. Small, accessible (labels,
//! landmarks, `role="alert"` on errors, visible focus), readable on a phone and a desktop, light
//! and dark. No script at all; the one inline style sheet is allowed by its hash in the CSP.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

const CSS: &str = "\
:root{color-scheme:light dark;--bg:#f4f5f7;--card:#fff;--text:#1b1d21;--muted:#5b6270;--line:#d5d9e0;--accent:#2453d4;--accent-text:#fff;--error-bg:#fdecec;--error:#9b1c1c}\
@media (prefers-color-scheme:dark){:root{--bg:#14161a;--card:#1e2127;--text:#eceef2;--muted:#a4abb8;--line:#3a3f4a;--accent:#7d9cff;--accent-text:#0c1020;--error-bg:#3a1d1f;--error:#ffb4b4}}\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;padding:1rem;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}\
main{width:100%;max-width:26rem;background:var(--card);border:1px solid var(--line);border-radius:12px;padding:2rem 1.5rem;box-shadow:0 1px 3px rgba(0,0,0,.08)}\
.brand{margin:0 0 1.25rem;font-weight:700;font-size:.95rem;letter-spacing:.02em;color:var(--muted)}\
.brand span{display:inline-block;width:.8rem;height:.8rem;margin-right:.4rem;background:var(--accent);border-radius:2px;vertical-align:-1px}\
h1{font-size:1.35rem;line-height:1.3;margin:0 0 .75rem}\
p{margin:0 0 1rem}\
.muted{color:var(--muted);font-size:.95rem}\
label{display:block;font-weight:600;margin:1rem 0 .35rem}\
input[type=email],input[type=password]{width:100%;padding:.7rem .8rem;font:inherit;color:inherit;background:transparent;border:1px solid var(--line);border-radius:8px}\
button{font:inherit;font-weight:600;padding:.75rem 1rem;border-radius:8px;border:1px solid var(--accent);background:var(--accent);color:var(--accent-text);cursor:pointer;width:100%}\
button.secondary{background:transparent;color:var(--text);border-color:var(--line)}\
form>button{margin-top:1.5rem}\
.actions{display:flex;gap:.75rem;margin-top:1.5rem}\
.actions button{flex:1}\
input:focus-visible,button:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
.error{background:var(--error-bg);color:var(--error);border-radius:8px;padding:.75rem .9rem}\
dl{margin:0 0 1rem;display:grid;grid-template-columns:auto 1fr;gap:.35rem 1rem}\
dt{color:var(--muted)}\
dd{margin:0;font-weight:600;overflow-wrap:anywhere}\
main.wide{max-width:54rem}\
.top{display:flex;justify-content:space-between;align-items:center;gap:1rem;flex-wrap:wrap}\
.top form button{width:auto;padding:.4rem .8rem;font-size:.9rem}\
section{margin:1.75rem 0 0;padding-top:1.25rem;border-top:1px solid var(--line)}\
h2{font-size:1.1rem;margin:0 0 .75rem}\
.table{overflow-x:auto}\
table{width:100%;border-collapse:collapse;font-size:.95rem;margin:0 0 1rem}\
th,td{text-align:left;padding:.5rem;border-bottom:1px solid var(--line);vertical-align:middle}\
th{color:var(--muted);font-weight:600}\
td form{margin:0}\
button.small{width:auto;padding:.35rem .75rem;font-size:.9rem}\
form.inline{display:flex;gap:.5rem;align-items:flex-end;flex-wrap:wrap;margin:.5rem 0 1rem}\
form.inline label{margin:0 0 .35rem}\
form.inline>div{flex:1;min-width:12rem}\
form.inline>button{margin:0}\
input[type=text]{width:100%;padding:.6rem .8rem;font:inherit;color:inherit;background:transparent;border:1px solid var(--line);border-radius:8px}\
.badge{display:inline-block;padding:.05rem .55rem;border-radius:999px;font-size:.85rem;font-weight:600;border:1px solid currentColor;white-space:nowrap}\
.badge.ok{color:#1a7f37}.badge.warn{color:#9a6700}.badge.bad{color:var(--error)}.badge.none{color:var(--muted)}\
@media (prefers-color-scheme:dark){.badge.ok{color:#6fdd8b}.badge.warn{color:#e3b341}}\
.notice{border:1px solid var(--accent);border-radius:8px;padding:.75rem .9rem;margin:0 0 1rem}\
code.secret{display:block;margin:.5rem 0;padding:.6rem;border:1px dashed var(--line);border-radius:8px;overflow-wrap:anywhere;font-size:.95rem}\
meter{width:100%;height:1rem}\
.connect{display:flex;gap:.5rem;flex-wrap:wrap;margin:.5rem 0 1rem}\
a.button{display:inline-block;font-weight:600;padding:.55rem 1rem;border-radius:8px;background:var(--accent);color:var(--accent-text);text-decoration:none}\
a.button:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
h3{font-size:1rem;margin:1rem 0 .25rem}\
@media (max-width:40rem){.table thead{display:none}.table tr{display:block;padding:.6rem 0;border-bottom:1px solid var(--line)}.table td{display:block;border:0;padding:.15rem 0}}\
details{margin:.5rem 0 1rem}\
summary{cursor:pointer;font-weight:600}\
";

/// `'sha256-…'` of the style sheet, for the CSP.
fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| format!("'sha256-{}'", STANDARD.encode(Sha256::digest(CSS.as_bytes()))))
}

/// HTML-escapes text for element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page with the security headers every page gets. `form_targets` are the origins a form on
/// the page may end up at after redirects (CSP `form-action`), besides this one.
pub fn page(status: StatusCode, title: &str, body: &str, form_targets: &[&str]) -> Response {
    page_with_class(status, title, body, form_targets, "")
}

/// [`page`] with a class on `<main>` (`wide` for the account page).
pub fn page_with_class(status: StatusCode, title: &str, body: &str, form_targets: &[&str], main_class: &str) -> Response {
    let class = if main_class.is_empty() { String::new() } else { format!(" class=\"{}\"", escape(main_class)) };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{} · SquareMCP</title><style>{CSS}</style></head>\
         <body><main{class}><p class=\"brand\"><span aria-hidden=\"true\"></span>SquareMCP</p>{body}</main></body></html>\n",
        escape(title)
    );
    let mut form_action = String::from("'self'");
    for target in form_targets {
        form_action.push(' ');
        form_action.push_str(target);
    }
    let csp = format!(
        "default-src 'none'; style-src {}; img-src 'self' data:; form-action {form_action}; base-uri 'none'; frame-ancestors 'none'",
        style_hash()
    );
    let mut response = (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    security_headers(headers);
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Anti-framing, no referrer, no caching: on every page and redirect of the login and consent flow.
pub fn security_headers(headers: &mut http::HeaderMap) {
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

pub struct LoginForm<'a> {
    pub csrf: &'a str,
    pub return_to: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
    /// The sign-in is part of connecting an application.
    pub for_authorization: bool,
    /// Self-service sign-up and reset are open: link to them.
    pub signup_open: bool,
}

pub fn login(status: StatusCode, form: &LoginForm<'_>) -> Response {
    let lead = if form.for_authorization {
        "An application wants to connect to your SquareMCP account. Sign in to continue."
    } else {
        "Sign in with the email and password of your SquareMCP account."
    };
    let error = form
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\" id=\"form-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let described = if form.error.is_some() { " aria-describedby=\"form-error\"" } else { "" };
    let body = format!(
        "<h1>Sign in</h1><p class=\"muted\">{lead}</p>{error}\
         <form method=\"post\" action=\"/login\"{described}>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"return_to\" value=\"{return_to}\">\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required autofocus value=\"{email}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>{links}",
        links = if form.signup_open {
            "<p class=\"muted\"><a href=\"/reset\">Forgot your password?</a> · <a href=\"/signup\">Create an account</a></p>"
        } else {
            ""
        },
        csrf = escape(form.csrf),
        return_to = escape(form.return_to),
        email = escape(form.email),
    );
    page(status, "Sign in", &body, &[])
}

pub struct Consent<'a> {
    pub client_name: &'a str,
    /// The host of a metadata-document client's `client_id` URL: who really published it.
    pub client_host: Option<&'a str>,
    pub redirect_host: &'a str,
    /// `scheme://host[:port]` the decision redirects to.
    pub redirect_origin: &'a str,
    pub loopback: bool,
    pub email: &'a str,
    pub request_id: &'a str,
    pub csrf: &'a str,
}

pub fn consent(c: &Consent<'_>) -> Response {
    let name = escape(c.client_name);
    // Anyone can call their application anything; the host of its metadata document cannot be
    // faked, so it goes in the question itself.
    let (asker, from) = match c.client_host {
        Some(host) => {
            let host = escape(host);
            (format!("{name} (from <strong>{host}</strong>)"), format!("<dt>Published by</dt><dd>{host}</dd>"))
        }
        None => (name.clone(), String::new()),
    };
    let where_to = if c.loopback {
        "It runs on this computer (a loopback address). Allow it only if you just started it yourself."
    } else {
        "Allow it only if you trust it and you started this connection yourself."
    };
    let body = format!(
        "<h1>Allow {asker} to use your SquareMCP account?</h1>\
         <p>{name} will be able to list and call SquareMCP tools on the platforms you connected, \
         using your stored credentials.</p>\
         <dl><dt>Application</dt><dd>{name}</dd>{from}<dt>Returns to</dt><dd>{host}</dd><dt>Account</dt><dd>{email}</dd></dl>\
         <p class=\"muted\">{where_to}</p>\
         <form method=\"post\" action=\"/oauth/authorize\">\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <div class=\"actions\"><button type=\"submit\" name=\"action\" value=\"deny\" class=\"secondary\">Deny</button>\
         <button type=\"submit\" name=\"action\" value=\"allow\">Allow</button></div></form>",
        host = escape(c.redirect_host),
        email = escape(c.email),
        request = escape(c.request_id),
        csrf = escape(c.csrf),
    );
    page(StatusCode::OK, "Allow access", &body, &[c.redirect_origin])
}

pub fn signed_in(email: &str) -> Response {
    let body = format!(
        "<h1>You are signed in</h1><p>Signed in as <strong>{}</strong>. You can close this window, \
         or return to the application you were connecting.</p>\
         <p><a href=\"/account\">Your account</a>: usage, connections, API keys and connected applications.</p>\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\" class=\"secondary\">Sign out</button></form>",
        escape(email)
    );
    page(StatusCode::OK, "Signed in", &body, &[])
}

pub fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p role=\"alert\">{}</p><p class=\"muted\">You can close this window and start again from your application.</p>",
        escape(title),
        escape(message)
    );
    page(status, title, &body, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    async fn consent_text(client_host: Option<&str>) -> String {
        let response = consent(&Consent {
            client_name: "Claude <Code>",
            client_host,
            redirect_host: "127.0.0.1:33418",
            redirect_origin: "http://127.0.0.1:33418",
            loopback: true,
            email: "ada@example.com",
            request_id: "r",
            csrf: "c",
        });
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.map(|b| b.to_vec()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn consent_names_the_host_of_a_metadata_document_client() {
        let page = consent_text(Some("evil.example")).await;
        assert!(page.contains("<h1>Allow Claude &lt;Code&gt; (from <strong>evil.example</strong>)"), "{page}");
        assert!(page.contains("<dt>Published by</dt><dd>evil.example</dd>"), "{page}");
        let page = consent_text(None).await;
        assert!(page.contains("<h1>Allow Claude &lt;Code&gt; to use") && !page.contains("Published by"), "{page}");
    }

    #[test]
    fn pages_carry_the_security_headers() {
        let response = error(StatusCode::BAD_REQUEST, "Nope", "<script>");
        let headers = response.headers();
        assert_eq!(headers[X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[REFERRER_POLICY], "no-referrer");
        let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("style-src 'sha256-"), "{csp}");
    }
}
