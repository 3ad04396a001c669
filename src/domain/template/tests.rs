use super::*;
use crate::domain::decimal::Decimal;
use crate::domain::event::{Attribution, Custom, Kind, Revenue};
use crate::domain::when::Rates;

fn event() -> Event {
    let mut e = Event::new("ev-1", "game-ios", "dev-1", Kind::Payment, 1_700_000_123_456);
    e.user_id = "user-9".into();
    e.device.idfa = "AAAA-BBBB".into();
    e.device.gaid = "g-1".into();
    e.revenue =
        Some(Revenue { amount: "4.99".into(), currency: "USD".into(), transaction_id: "tx-1".into(), verified: true });
    e.custom = Some(Custom { name: "level_up".into(), params: [("level".to_owned(), "7".to_owned())].into() });
    e
}

fn attributed() -> Attributed {
    let mut a = Attribution {
        partner_id: "acme".into(),
        campaign_id: "cmp-7".into(),
        click_id: "clk-1".into(),
        touch_ms: 1_699_999_000_000,
        ..Default::default()
    };
    a.subs[1] = "s2".into();
    a.click_params.insert("utm_source".into(), "fb".into());
    Attributed::new(Some(a), 1_699_999_500_000)
}

fn render_with(source: &str, place: Place, ev: &Event, attr: &Attributed) -> String {
    let t = Template::parse(source, place).unwrap_or_else(|e| panic!("{source}: {e}"));
    let partner = crate::domain::PartnerParams {
        params: [("sdk_key".to_owned(), "k-123".to_owned())].into(),
        ..Default::default()
    };
    let rates = Rates([("EUR".to_owned(), Decimal::parse("1.0842").unwrap())].into());
    let privacy = crate::domain::Privacy::default();
    let ctx = RenderCtx {
        event: ev,
        attribution: attr,
        install_ms: 1_699_999_600_000,
        platform: Platform::Mobile,
        postback_event: "payment",
        partner: Some(&partner),
        job_id: "job-1",
        usd_rates: &rates,
        privacy: &privacy,
        strip: false,
    };
    t.render(&ctx)
}

fn render(source: &str) -> String {
    render_with(source, Place::Url, &event(), &attributed())
}

#[test]
fn renders_every_macro_family() {
    assert_eq!(
        render(
            "https://pb.example/p?c={click_id}&ifa={idfa}&ts={event_ts}&rev={revenue}&cur={currency}&k={partner_param:sdk_key}&u={click_param:utm_source}&s2={sub2}&pb={postback_id}&ev={event}&lvl={event_param:level}&name={event_name}"
        ),
        "https://pb.example/p?c=clk-1&ifa=AAAA-BBBB&ts=1700000123&rev=4.99&cur=USD&k=k-123&u=fb&s2=s2&pb=job-1&ev=payment&lvl=7&name=level_up"
    );
    assert_eq!(
        render(
            "https://pb.example/?a={attribution_ts}&c={click_ts}&i={install_ts}&ms={event_ts_ms}&p={partner}&cmp={campaign_id}&pl={platform}&app={app_id}&d={device_id}&u={user_id}&t={transaction_id}&e={event_id}"
        ),
        "https://pb.example/?a=1699999500&c=1699999000&i=1699999600&ms=1700000123456&p=acme&cmp=cmp-7&pl=mobile&app=game-ios&d=dev-1&u=user-9&t=tx-1&e=ev-1"
    );
}

#[test]
fn missing_values_render_empty_or_default() {
    let organic = Attributed::new(None, 0);
    let ev = Event::new("e", "a", "d", Kind::Launch, 1_700_000_000_000);
    assert_eq!(
        render_with(
            "https://x.example/?c={click_id}&o={oaid|default:none}&i={install_ts}&r={revenue|default:0}",
            Place::Url,
            &ev,
            &organic
        ),
        "https://x.example/?c=&o=none&i=1699999600&r=0"
    );
}

#[test]
fn filters_chain_left_to_right() {
    assert_eq!(render("https://x.example/?a={idfa|lower}"), "https://x.example/?a=aaaa-bbbb");
    assert_eq!(render("https://x.example/?a={oaid|or:gaid|upper}"), "https://x.example/?a=G-1");
    assert_eq!(render("https://x.example/?a={idfa|or:gaid}"), "https://x.example/?a=AAAA-BBBB");
    assert_eq!(
        render("https://x.example/?a={idfa|lower|sha1}"),
        "https://x.example/?a=4123e4c9a20b012e0301d5fc4eff56ac2d8c2630"
    );
    assert_eq!(render("https://x.example/?a={gaid|md5}"), "https://x.example/?a=76d2f15ce0154b98818dfb764a51c6da");
    assert_eq!(
        render("https://x.example/?a={gaid|sha256}"),
        "https://x.example/?a=b9817549cc546b0ee549a42a97b94811ed862005f8c17409217cc58128d8f630"
    );
    // a hash of nothing is nothing, not a constant that looks like an id
    assert_eq!(render("https://x.example/?a={oaid|sha1}"), "https://x.example/?a=");
    assert_eq!(render("https://x.example/?a={oaid|sha1|default:n}"), "https://x.example/?a=n");
}

fn hostile_event() -> (Event, Attributed) {
    let mut ev = event();
    ev.device.idfa = "x&admin=1#frag\r\nX-Evil: yes ✓/..?".into();
    let mut attr = attributed();
    attr.source.as_mut().unwrap().click_id = "\"},\"evil\":{\"a\":\"".into();
    (ev, attr)
}

#[test]
fn values_never_inject_into_a_url_in_any_position() {
    let (ev, attr) = hostile_event();
    let encoded = "x%26admin%3D1%23frag%0D%0AX-Evil%3A%20yes%20%E2%9C%93%2F..%3F";
    for (tpl, want) in [
        ("https://x.example/p/{idfa}/q", format!("https://x.example/p/{encoded}/q")),
        ("https://x.example/p?a={idfa}&b=1", format!("https://x.example/p?a={encoded}&b=1")),
        ("https://x.example/p?{idfa}=1", format!("https://x.example/p?{encoded}=1")),
        ("https://x.example/p#{idfa}", format!("https://x.example/p#{encoded}")),
    ] {
        let got = render_with(tpl, Place::Url, &ev, &attr);
        assert_eq!(got, want, "{tpl}");
        let url = url::Url::parse(&got).unwrap();
        assert_eq!(url.host_str(), Some("x.example"));
        assert!(url.query_pairs().all(|(k, _)| k != "admin"), "{got}");
    }
}

#[test]
fn values_never_break_out_of_a_json_body() {
    let (ev, attr) = hostile_event();
    let body = render_with(r#"{{"click":"{click_id}","ifa":"{idfa}","rev":{revenue}}}"#, Place::JsonBody, &ev, &attr);
    assert_eq!(body, r#"{"click":"\"},\"evil\":{\"a\":\"","ifa":"x&admin=1#frag\r\nX-Evil: yes ✓/..?","rev":4.99}"#);
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed.as_object().unwrap().len(), 3);
    assert_eq!(parsed["click"], "\"},\"evil\":{\"a\":\"");
}

#[test]
fn values_never_add_a_header_line_or_a_form_field() {
    let (ev, attr) = hostile_event();
    assert_eq!(render_with("Bearer {idfa}", Place::Header, &ev, &attr), "Bearer x&admin=1#fragX-Evil: yes ✓/..?");
    assert_eq!(
        render_with("ifa={idfa}&c=1", Place::FormBody, &ev, &attr),
        "ifa=x%26admin%3D1%23frag%0D%0AX-Evil%3A%20yes%20%E2%9C%93%2F..%3F&c=1"
    );
}

#[test]
fn literal_braces_are_doubled() {
    assert_eq!(render_with("{{\"a\":{{}}}}", Place::JsonBody, &event(), &attributed()), "{\"a\":{}}");
}

fn parse_err(source: &str, place: Place) -> String {
    Template::parse(source, place).unwrap_err().to_string()
}

#[test]
fn load_errors_name_the_column_and_the_reason() {
    assert_eq!(parse_err("https://x.example/?a={nope}", Place::Url), "column 23: unknown macro 'nope'");
    assert_eq!(parse_err("https://x.example/?a={idfa", Place::Url), "column 22: unbalanced '{': no closing '}'");
    assert_eq!(
        parse_err("https://x.example/?a=}", Place::Url),
        "column 22: unbalanced '}' (write '}}' for a literal brace)"
    );
    assert_eq!(parse_err("https://x.example/?a={idfa|rot13}", Place::Url), "column 23: unknown filter 'rot13'");
    assert_eq!(parse_err("https://x.example/?a={}", Place::Url), "column 23: empty macro '{}'");
    assert_eq!(
        parse_err("https://x.example/?a={click_param:}", Place::Url),
        "column 23: macro 'click_param:' needs a parameter name"
    );
    assert_eq!(
        parse_err("https://{partner}.example/", Place::Url),
        "column 9: macros are not allowed in the scheme or host of a URL"
    );
    assert_eq!(parse_err("ftp://x.example/", Place::Url), "column 1: scheme must be http or https, not 'ftp'");
    assert_eq!(parse_err("pb.example/?a=1", Place::Url), "column 1: not a valid URL: relative URL without a base");
    assert_eq!(parse_err("https:///?a={idfa}", Place::Url), "column 1: not a valid URL: empty host");
}

#[test]
fn a_value_can_never_walk_up_the_path() {
    let mut attr = attributed();
    let click = |attr: &mut Attributed, v: &str| attr.source.as_mut().unwrap().click_id = v.into();
    for (value, want) in [
        ("..", "https://pb.example/cb/%252E%252E/x?c=.."),
        (".", "https://pb.example/cb/%252E/x?c=."),
        ("../../admin", "https://pb.example/cb/..%2F..%2Fadmin/x?c=..%2F..%2Fadmin"),
        ("a..", "https://pb.example/cb/a../x?c=a.."),
        ("%2e%2e", "https://pb.example/cb/%252e%252e/x?c=%252e%252e"),
    ] {
        click(&mut attr, value);
        let url = render_with("https://pb.example/cb/{click_id}/x?c={click_id}", Place::Url, &event(), &attr);
        assert_eq!(url, want, "{value}");
        // what the HTTP client sends: the path as the template wrote it
        let parsed = url::Url::parse(&url).unwrap();
        assert_eq!(parsed.path_segments().unwrap().count(), 3, "{value}: {parsed}");
        assert!(parsed.path().starts_with("/cb/") && parsed.path().ends_with("/x"), "{value}: {parsed}");
    }
    // a segment that mixes literal dots with a value
    click(&mut attr, ".");
    assert_eq!(
        render_with("https://pb.example/a/.{click_id}", Place::Url, &event(), &attr),
        "https://pb.example/a/%252E%252E"
    );
    assert_eq!(
        parse_err("https://pb.example/a/../{click_id}", Place::Url),
        "column 1: the URL path has a '.' or '..' segment"
    );
}

#[test]
fn idfa_or_gaid_follows_the_devices_platform() {
    let attr = attributed();
    let with = |os: &str, idfa: &str, gaid: &str| {
        let mut ev = event();
        (ev.device.os, ev.device.idfa, ev.device.gaid) = (os.into(), idfa.into(), gaid.into());
        render_with("https://x.example/?a={idfa_or_gaid}", Place::Url, &ev, &attr)
    };
    assert_eq!(with("iOS", "I-1", "G-1"), "https://x.example/?a=I-1");
    assert_eq!(with("android", "I-1", "G-1"), "https://x.example/?a=G-1");
    assert_eq!(with("", "", "G-1"), "https://x.example/?a=G-1");
    assert_eq!(with("", "I-1", "G-1"), "https://x.example/?a=I-1");
    assert_eq!(with("iOS", "", "G-1"), "https://x.example/?a=", "an iOS device's gaid is not its advertising id");
}

#[test]
fn or_takes_a_filtered_macro() {
    let mut ev = event();
    // each branch with its own filters
    assert_eq!(render("https://x.example/?a={idfa|lower|or:gaid|upper}"), "https://x.example/?a=aaaa-bbbb");
    assert_eq!(render("https://x.example/?a={oaid|lower|or:gaid|upper}"), "https://x.example/?a=G-1");
    // a branch without filters takes the last branch's
    assert_eq!(render("https://x.example/?a={idfa|or:gaid|lower}"), "https://x.example/?a=aaaa-bbbb");
    ev.device.idfa.clear();
    let r = |s: &str| render_with(s, Place::Url, &ev, &attributed());
    assert_eq!(r("https://x.example/?a={idfa|upper|or:gaid|lower}"), "https://x.example/?a=g-1");
    assert_eq!(r("https://x.example/?a={idfa|or:oaid|or:gaid|sha1}"), r("https://x.example/?a={gaid|sha1}"));
    assert_eq!(r("https://x.example/?a={idfa|or:oaid|default:none}"), "https://x.example/?a=none");
    assert!(parse_err("https://x.example/?a={idfa|or:nope}", Place::Url).contains("unknown macro 'nope'"));
    assert!(parse_err("https://x.example/?a={idfa|or}", Place::Url).contains("filter 'or' needs an argument (or:...)"));
    assert!(
        parse_err("https://x.example/?a={idfa|lower|or:gaid|sha1}", Place::Url)
            .contains("one side of 'or:' is hashed and another is not")
    );
    assert!(
        parse_err("https://x.example/?a={idfa|default:x|or:gaid}", Place::Url).contains("'default:' must come last")
    );
}

#[test]
fn revenue_share_and_usd_are_exact_decimals() {
    let mut ev = event();
    assert_eq!(render("https://x.example/?r={revenue|revenue_share:30}"), "https://x.example/?r=1.497");
    assert_eq!(render("https://x.example/?r={revenue|revenue_share:12.5}"), "https://x.example/?r=0.62375");
    assert_eq!(render("https://x.example/?r={revenue_usd}"), "https://x.example/?r=4.99");
    ev.revenue.as_mut().unwrap().currency = "EUR".into();
    let r = |s: &str| render_with(s, Place::Url, &ev, &attributed());
    // 4.99 EUR × 1.0842 = 5.410158 USD; 70% of it
    assert_eq!(
        r("https://x.example/?r={revenue_usd}&s={revenue_usd|revenue_share:70}"),
        "https://x.example/?r=5.410158&s=3.7871106"
    );
    ev.revenue.as_mut().unwrap().currency = "GBP".into();
    let r = |s: &str| render_with(s, Place::Url, &ev, &attributed());
    assert_eq!(r("https://x.example/?r={revenue_usd|default:na}"), "https://x.example/?r=na");
    // not a number: nothing rather than a wrong amount
    assert_eq!(render("https://x.example/?r={event_id|revenue_share:50}"), "https://x.example/?r=");
    for bad in ["revenue_share", "revenue_share:101", "revenue_share:-5", "revenue_share:abc"] {
        let e = parse_err(&format!("https://x.example/?r={{revenue|{bad}}}"), Place::Url);
        assert!(e.contains("revenue_share"), "{bad}: {e}");
    }
}

#[test]
fn waid_and_medium() {
    let mut ev = event();
    ev.device.waid = "W-1".into();
    let mut attr = attributed();
    attr.source.as_mut().unwrap().medium = "cpc".into();
    assert_eq!(
        render_with("https://x.example/?w={waid}&m={medium}&i={idfa|or:waid|lower}", Place::Url, &ev, &attr),
        "https://x.example/?w=W-1&m=cpc&i=aaaa-bbbb"
    );
    ev.device.idfa.clear();
    assert_eq!(
        render_with("https://x.example/?i={idfa|or:waid|lower}", Place::Url, &ev, &attr),
        "https://x.example/?i=w-1"
    );
    // another partner's attribution in a send-all postback hides its medium
    assert_eq!(attr.without_details().source.unwrap().medium, "");
}
