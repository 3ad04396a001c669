//! What ad-ops get without writing templates, and MyTracker parity: partner
//! presets render the partners' documented URLs exactly; MyTracker's macros
//! render its documented examples byte for byte; partner defaults and
//! overrides; each privacy policy on identifiers, IP and suppression; and
//! the load errors of each, by exact message. No broker: the rules engine.

use postback::config::{self, Config};
use postback::domain::engine::Engine;
use postback::domain::privacy::{AttStatus, Privacy};
use postback::domain::{Attribution, DeviceInfo, Event, Job, Kind, Revenue};
use std::path::Path;
use std::sync::Arc;

const T: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn load(text: &str) -> Config {
    config::load_str(text, Path::new("pb.toml"), Vec::<(String, String)>::new()).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(text: &str) -> Vec<String> {
    config::load_str(text, Path::new("pb.toml"), Vec::<(String, String)>::new())
        .map(|_| panic!("loaded"))
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

const APPS: &str = "[[apps]]\nid = \"game\"\nplatform = \"mobile\"\n[[apps]]\nid = \"shop\"\nplatform = \"web\"\n";

fn event(id: &str, kind: Kind, minutes: i64) -> Event {
    Event::new(id, "game", "dev-1", kind, T + minutes * 60_000)
}

fn from(mut e: Event, partner: &str, click: &str) -> Event {
    e.attribution = Some(Attribution {
        partner_id: partner.into(),
        campaign_id: "summer".into(),
        click_id: click.into(),
        ..Attribution::default()
    });
    e
}

fn pay(mut e: Event, amount: &str, currency: &str, tx: &str) -> Event {
    e.revenue =
        Some(Revenue { amount: amount.into(), currency: currency.into(), transaction_id: tx.into(), verified: false });
    e
}

/// Every job `events` make under `config`, in order.
fn jobs(config: &Config, events: &[Event]) -> Vec<Job> {
    let mut engine = Engine::new(Arc::clone(&config.rules));
    events.iter().flat_map(|e| engine.process(e, T + 86_400_000).unwrap()).collect()
}

fn urls(config: &Config, events: &[Event]) -> Vec<(String, String)> {
    jobs(config, events).into_iter().map(|j| (j.postback_id, j.url)).collect()
}

#[test]
fn presets_render_the_partners_documented_urls() {
    // Voluum: the exemplary template (cid, payout, txid, currency, et) and
    // the custom conversions examples (et=install, et=purchase)
    let voluum = load(&format!(
        "{APPS}[[partners]]\nid = \"voluum\"\npreset = \"voluum\"\nbase_url = \"https://your_Voluum_domain.com/postback\"\n\
         [partners.events]\ninstall = \"attributed\"\npayment = \"attributed\"\n"
    ));
    let click = "c384EFV6JHQODRN70575OK6UG5";
    let stream = [
        from(event("i1", Kind::Install, 0), "voluum", click),
        pay(event("p1", Kind::Payment, 5), "5.9999", "USD", "transactionID"),
    ];
    assert_eq!(
        urls(&voluum, &stream),
        vec![
            ("voluum.install".into(), format!("https://your_Voluum_domain.com/postback?cid={click}&et=install")),
            (
                "voluum.payment".into(),
                format!(
                    "https://your_Voluum_domain.com/postback?cid={click}&payout=5.9999&txid=transactionID&currency=USD&et=purchase"
                )
            ),
        ]
    );

    // Taboola: the documented template, with the event name Taboola knows
    let taboola = load(&format!(
        "{APPS}[[partners]]\nid = \"taboola\"\npreset = \"taboola\"\n[partners.events]\nfirst_payment = \"attributed\"\n\
         [partners.event_names]\nfirst_payment = \"Purchase\"\n"
    ));
    let click = "GiDxLZcEVjwEqkGfKQMQndUYMIeZXFHmZ0DrHIJhGS6kKiDzkGUos9GzkpqG-YHQATCwxlQ";
    let stream = [
        from(event("i1", Kind::Install, 0), "taboola", click),
        pay(event("p1", Kind::Payment, 5), "9.99", "EUR", "ORD-1"),
    ];
    assert_eq!(
        urls(&taboola, &stream),
        vec![(
            "taboola.first_payment".into(),
            format!(
                "https://trc.taboola.com/actions-handler/log/3/s2s-action?click-id={click}&name=Purchase&revenue=9.99&currency=EUR&orderid=ORD-1"
            )
        )]
    );

    // Scaleo: /track/conv with the advertiser token and a goal alias
    let scaleo = load(&format!(
        "{APPS}[[partners]]\nid = \"scaleo\"\npreset = \"scaleo\"\nbase_url = \"https://workspace.scaletrk.com/track/conv\"\n\
         [partners.params]\ntoken = \"344387eb\"\n[partners.events]\nfirst_payment = \"attributed\"\n\
         [partners.event_names]\nfirst_payment = \"sale\"\n"
    ));
    let click = "974efaa86716e372442ab44c8a3f563b";
    let stream =
        [from(event("i1", Kind::Install, 0), "scaleo", click), pay(event("p1", Kind::Payment, 5), "1.00", "USD", "t")];
    assert_eq!(
        urls(&scaleo, &stream),
        vec![(
            "scaleo.first_payment".into(),
            format!("https://workspace.scaletrk.com/track/conv?click_id={click}&token=344387eb&goal_alias=sale")
        )]
    );

    // Unity Ads: the install postback, IDFA upper case on iOS, seconds
    let unity = load(&format!(
        "{APPS}[[partners]]\nid = \"unity\"\npreset = \"unity-ads\"\n[partners.params]\ngame_id = \"500009999\"\n\
         [partners.events]\ninstall = \"attributed\"\n"
    ));
    let mut install = from(Event::new("i1", "game", "dev-1", Kind::Install, 1_615_973_128_000), "unity", "c");
    install.device =
        DeviceInfo { idfa: "ae06df78-ca5a-46c3-bd44-1d3b6aa4d6e9".into(), os: "iOS".into(), ..DeviceInfo::default() };
    assert_eq!(
        urls(&unity, &[install]),
        vec![(
            "unity.install".into(),
            "https://postback.unityads.unity3d.com/games/500009999/install?advertisingTrackingId=AE06DF78-CA5A-46C3-BD44-1D3B6AA4D6E9&installTimeEpoch=1615973128".into()
        )]
    );

    // Affise: clickid and action_id as in its examples, the goal by event
    let affise = load(&format!(
        "{APPS}[[partners]]\nid = \"affise\"\npreset = \"affise\"\nbase_url = \"https://offers.admin.affise.com/postback\"\n\
         [partners.events]\ninstall = \"attributed\"\n[partners.event_names]\ninstall = \"1\"\n"
    ));
    assert_eq!(
        urls(&affise, &[from(event("ev-9", Kind::Install, 0), "affise", "sub1-value")]),
        vec![(
            "affise.install".into(),
            "https://offers.admin.affise.com/postback?clickid=sub1-value&action_id=ev-9&goal=1".into()
        )]
    );

    // Keitaro: the tracker's postback URL with its key; sale with payout and currency
    let keitaro = load(&format!(
        "{APPS}[[partners]]\nid = \"keitaro\"\npreset = \"keitaro\"\nbase_url = \"https://example.com/key/postback\"\n\
         [partners.events]\nfirst_payment = \"attributed\"\n"
    ));
    let stream =
        [from(event("i1", Kind::Install, 0), "keitaro", "3kd9f"), pay(event("p1", Kind::Payment, 5), "10", "EUR", "1")];
    assert_eq!(
        urls(&keitaro, &stream),
        vec![(
            "keitaro.first_payment".into(),
            "https://example.com/key/postback?subid=3kd9f&status=sale&payout=10&currency=EUR&tid=1".into()
        )]
    );
}

#[test]
fn the_webhook_preset_posts_signed_json_for_every_event_enabled() {
    let config = load(&format!(
        "{APPS}[[partners]]\nid = \"warehouse\"\npreset = \"webhook\"\nbase_url = \"https://events.example.com/postbacks\"\n\
         signing_secret = \"0123456789abcdef-wh\"\n[partners.events]\ninstall = \"all\"\n\"custom_event_ca:level_up\" = \"all\"\n"
    ));
    let mut level = event("e1", Kind::CustomEvent, 3);
    level.custom = Some(postback::domain::Custom { name: "level_up".into(), params: Default::default() });
    let jobs = jobs(&config, &[from(event("i1", Kind::Install, 0), "acme", "clk-1"), level]);
    let got: Vec<(&str, &str, &str, Option<&str>)> = jobs
        .iter()
        .map(|j| {
            (
                j.postback_id.as_str(),
                j.method.as_str(),
                j.url.as_str(),
                j.headers.get("Content-Type").map(String::as_str),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("warehouse.install", "POST", "https://events.example.com/postbacks", Some("application/json")),
            (
                "warehouse.custom_event_ca.level_up",
                "POST",
                "https://events.example.com/postbacks",
                Some("application/json")
            ),
        ]
    );
    // `all` tells the warehouse who won the install but never another
    // partner's campaign or click id (docs/design.md §1.5).
    assert_eq!(
        jobs[0].body.as_deref(),
        Some(format!(
            r#"{{"postback_id":"{}","postback":"install","event_id":"i1","event_ts_ms":{T},"app_id":"game","device_id":"dev-1","user_id":"","partner":"acme","campaign_id":"","click_id":"","attribution_ts":"{}","country":"","os":""}}"#,
            jobs[0].job_id,
            T / 1000
        ))
        .as_deref()
    );
    assert!(jobs[1].body.as_deref().unwrap().ends_with(r#""event_name":"level_up"}"#));
}

#[test]
fn partner_defaults_are_inherited_and_a_postback_of_a_preset_can_be_overridden() {
    let config = load(&format!(
        "{APPS}[[partners]]\nid = \"voluum\"\npreset = \"voluum\"\nbase_url = \"https://t.example/postback\"\n\
         [partners.query]\nsrc = \"pb\"\n[partners.headers]\nX-Key = \"{{partner_param:key}}\"\n[partners.params]\nkey = \"k-1\"\n\
         [partners.events]\ninstall = \"attributed\"\nfirst_registration = \"attributed\"\n\
         [[postbacks]]\nid = \"voluum.install\"\nname = \"Voluum | install, our way\"\npartner = \"voluum\"\nevent = \"install\"\n\
         url = \"?cid={{click_id}}&et=first_open\"\n"
    ));
    let mut reg = event("r1", Kind::Registration, 2);
    reg.user_id = "u1".into();
    let jobs = jobs(&config, &[from(event("i1", Kind::Install, 0), "voluum", "c1"), reg]);
    let got: Vec<(&str, &str, &str)> =
        jobs.iter().map(|j| (j.postback_id.as_str(), j.url.as_str(), j.headers["X-Key"].as_str())).collect();
    assert_eq!(
        got,
        vec![
            // the file's own postback of that id wins over the preset's
            ("voluum.install", "https://t.example/postback?cid=c1&et=first_open&src=pb", "k-1"),
            ("voluum.first_registration", "https://t.example/postback?cid=c1&et=registration&src=pb", "k-1"),
        ]
    );
    assert_eq!(config.rules.postbacks()[0].name, "Voluum | install, our way");
}

#[test]
fn preset_and_default_mistakes_are_load_errors_by_key() {
    let cases = [
        (
            "[[partners]]\nid = \"x\"\npreset = \"nobody\"\n",
            "pb.toml: partners[0].preset: unknown preset 'nobody' (presets: affise, keitaro, scaleo, taboola, unity-ads, voluum, webhook)",
        ),
        (
            "[[partners]]\nid = \"v\"\npreset = \"voluum\"\n",
            "pb.toml: partners[0].base_url: preset 'voluum' needs base_url: your Voluum tracking domain with /postback, e.g. https://abcd.voluumtrk.com/postback",
        ),
        (
            "[[partners]]\nid = \"s\"\npreset = \"scaleo\"\nbase_url = \"https://w.scaletrk.com/track/conv\"\n",
            "pb.toml: partners[0].params.token: preset 'scaleo' needs partner parameter 'token': the Advertiser Security Token (Scaleo sends it with every postback request it expects)",
        ),
        (
            "[[partners]]\nid = \"t\"\npreset = \"taboola\"\n[partners.events]\nreinstall = \"attributed\"\n",
            "pb.toml: partners[0].events.\"reinstall\": preset 'taboola' has no postback 'reinstall' (it has: install, first_registration, registration, first_payment, payment, custom_payment, custom_event; a custom event as \"custom_event:NAME\")",
        ),
        (
            "[[partners]]\nid = \"t\"\npreset = \"taboola\"\n[partners.events]\ncustom_event = \"attributed\"\n",
            "pb.toml: partners[0].events.\"custom_event\": name the app's custom event: \"custom_event:NAME\"",
        ),
        (
            "[[partners]]\nid = \"a\"\n[partners.event_names]\npurchase = \"p\"\n",
            "pb.toml: partners[0].event_names.purchase: 'purchase' is not a postback event: one of install, reinstall, reengagement, new_user, first_registration, registration, first_login, login, first_payment, payment, first_custom_payment, custom_payment, custom_event, or custom_event:NAME",
        ),
        (
            "[[partners]]\nid = \"a\"\n[partners.privacy]\npurpose = \"ads\"\n",
            "pb.toml: partners[0].privacy: a consent purpose or require_consent does nothing without a policy: set policy = \"strip\" or \"suppress\"",
        ),
        (
            "[[partners]]\nid = \"a\"\n[partners.events]\ninstall = \"attributed\"\n",
            "pb.toml: partners[0].events: only a partner with a `preset` takes `events`",
        ),
        (
            "[[partners]]\nid = \"a\"\n[[postbacks]]\nname = \"A | i\"\npartner = \"a\"\nevent = \"install\"\nurl = \"?c={click_id}\"\n",
            "pb.toml: postbacks[0].url: '?c={click_id}' is relative, but partner 'a' has no base_url to start it from",
        ),
        (
            "[[partners]]\nid = \"w\"\npreset = \"webhook\"\nbase_url = \"https://e.example/h\"\n",
            "pb.toml: partners[0].signing_secret: preset 'webhook' signs every request: set signing_secret",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(errors(&format!("{APPS}{text}")), vec![want.to_owned()], "{text}");
    }
}

/// MyTracker's documented examples (pages "Postback macros" and "Postback
/// parameters" of docs.tracker.my.com), pasted as they are.
#[test]
fn every_preset_loads_with_every_postback_enabled() {
    for preset in postback::config::presets::all() {
        let id = &preset.preset.id;
        let mut text = format!(
            "{APPS}[[partners]]\nid = \"p\"\npreset = \"{id}\"\nbase_url = \"https://p.example/pb\"\n\
             signing_secret = \"0123456789abcdef-p\"\n[partners.params]\n"
        );
        for name in preset.preset.params.keys() {
            text.push_str(&format!("{name} = \"v\"\n"));
        }
        text.push_str("[partners.events]\n");
        for pb in &preset.postbacks {
            let key = if pb.event == "custom_event" { format!("{}:level_up", pb.id) } else { pb.id.clone() };
            text.push_str(&format!("\"{key}\" = \"attributed\"\n"));
        }
        let config = config::load_str(&text, Path::new("pb.toml"), Vec::<(String, String)>::new())
            .unwrap_or_else(|e| panic!("preset {id}: {e}"));
        assert_eq!(config.rules.postbacks().len(), preset.postbacks.len(), "preset {id}");
    }
}

#[test]
fn custom_events_take_their_own_partner_name_else_the_partners_one_name_for_all() {
    let config = load(&format!(
        "{APPS}[[partners]]\nid = \"voluum\"\npreset = \"voluum\"\nbase_url = \"https://t.example/postback\"\n\
         [partners.event_names]\ncustom_event = \"custom\"\n\"custom_event:level_up\" = \"lvl\"\n\
         [partners.events]\n\"custom_event:level_up\" = \"all\"\n\"custom_event:boss\" = \"all\"\n"
    ));
    let custom = |id: &str, name: &str| {
        let mut e = event(id, Kind::CustomEvent, 1);
        e.custom = Some(postback::domain::Custom { name: name.into(), params: Default::default() });
        e
    };
    assert_eq!(
        urls(&config, &[custom("e1", "level_up"), custom("e2", "boss")]),
        vec![
            ("voluum.custom_event.level_up".to_owned(), "https://t.example/postback?cid=&et=lvl".to_owned()),
            ("voluum.custom_event.boss".to_owned(), "https://t.example/postback?cid=&et=custom".to_owned()),
        ]
    );
}

#[test]
fn mytracker_templates_load_as_they_are_and_render_its_examples_byte_for_byte() {
    let template = |url: &str| {
        format!(
            "{APPS}[[partners]]\nid = \"acme\"\n[partners.params]\nsdk_key = \"K-77\"\n\
             [[postbacks]]\nname = \"Acme | payment\"\npartner = \"acme\"\nevent = \"payment\"\nattribution = \"ca\"\nurl = \"{url}\"\n"
        )
    };
    let mut p = pay(
        from(Event::new("p1", "game", "dev-1", Kind::Payment, 1_505_486_690_000), "acme", "c"),
        "5.9999",
        "USD",
        "t",
    );
    p.device =
        DeviceInfo { idfa: "AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA".into(), os: "iOS".into(), ..DeviceInfo::default() };
    let cases = [
        (
            "http://site.com/postback/?idfa={mt_idfa}&event-time={mt_event_ts}&revenue={mt_payment_sum_src}",
            "http://site.com/postback/?idfa=AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA&event-time=1505486690&revenue=5.9999",
        ),
        (
            "http://site.com/postback/?param1=123&idfa={mt_idfa}&event-time={mt_event_ts}&revenue={mt_payment_sum_src}",
            "http://site.com/postback/?param1=123&idfa=AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA&event-time=1505486690&revenue=5.9999",
        ),
        ("http://site.com/?k={mtpp_sdk_key}&n={mt_network}&c={mt_campaign}", "http://site.com/?k=K-77&n=acme&c=summer"),
    ];
    for (url, want) in cases {
        let config = load(&template(url));
        assert_eq!(urls(&config, &[p.clone()]), vec![("acme-payment".to_owned(), want.to_owned())], "{url}");
    }
    // the device table's examples
    let id = "82706CAC-3B4C-4C76-A9CB-B23F80D87692";
    let ios =
        DeviceInfo { idfa: id.into(), idfv: id.into(), waid: id.into(), os: "iOS".into(), ..DeviceInfo::default() };
    let android = DeviceInfo {
        gaid: id.into(),
        android_id: "96c504a0a4f0bb19".into(),
        oaid: id.into(),
        os: "Android".into(),
        ..DeviceInfo::default()
    };
    let table = [
        (&ios, "{mt_idfa}", id),
        (&ios, "{mt_waid}", id),
        (&ios, "{mt_idfv}", id),
        (&ios, "{mt_idfa_or_gaid}", id),
        (&ios, "{mt_idfa_upper_or_gaid_lower}", id),
        (&android, "{mt_gaid}", id),
        // the page's example shows "a9Cb"; lower case is what the macro says
        (&android, "{mt_gaid_lc}", "82706cac-3b4c-4c76-a9cb-b23f80d87692"),
        (&android, "{mt_idfa_or_gaid}", id),
        (&android, "{mt_idfa_upper_or_gaid_lower}", "82706cac-3b4c-4c76-a9cb-b23f80d87692"),
        (&android, "{mt_android_id}", "96c504a0a4f0bb19"),
        (&android, "{mt_oaid}", id),
    ];
    for (device, m, want) in table {
        let config = load(&template(&format!("http://site.com/?v={m}")));
        let mut e = p.clone();
        e.device = device.clone();
        assert_eq!(urls(&config, &[e]), vec![("acme-payment".to_owned(), format!("http://site.com/?v={want}"))], "{m}");
    }
    // check-config says what it read them as
    let config = load(&template("http://site.com/?a={mt_gaid_lc}&b={mtpp_sdk_key}"));
    assert_eq!(
        postback::config::table::mytracker_summary(&config),
        "MyTracker macros read as ours: {mt_gaid_lc} -> {gaid|lower}, {mtpp_sdk_key} -> {partner_param:sdk_key}\n"
    );
    assert_eq!(
        errors(&template("http://site.com/?a={mtj_x}")),
        vec!["pb.toml: postbacks[0].url: template \"http://site.com/?a={mtj_x}\": column 21: MyTracker's 'mtj_' parameters have no equivalent here: use a partner parameter ({partner_param:NAME}) or an event parameter ({event_param:NAME})".to_owned()]
    );
}

/// Three partners with the three policies; a device that limits ad
/// tracking, then one that refused consent, then one that allows all.
#[test]
fn each_privacy_policy_applies_to_identifiers_ip_and_suppression() {
    let url = "https://p.example/i?ifa={idfa}&gaid={gaid}&ip={ip}&ua={user_agent}&country={country}&lat={limit_ad_tracking}&att={att_status}&ads={consent:ad_sharing}";
    let mut text = String::from(APPS);
    for (id, policy) in [("open", "send"), ("careful", "strip"), ("strict", "suppress")] {
        text.push_str(&format!(
            "[[partners]]\nid = \"{id}\"\n[partners.privacy]\npolicy = \"{policy}\"\n\
             [[postbacks]]\nname = \"{id} | all installs\"\npartner = \"{id}\"\nevent = \"install\"\nsending = \"all\"\nurl = \"{url}\"\n\
             [[postbacks]]\nname = \"{id} | payments\"\npartner = \"{id}\"\nevent = \"payment\"\nsending = \"all\"\nattribution = \"ca\"\nurl = \"{url}\"\n"
        ));
    }
    let config = load(&text);
    let device = DeviceInfo {
        idfa: "IDFA-1".into(),
        gaid: "gaid-1".into(),
        ip: "203.0.113.7".into(),
        user_agent: "UA/1".into(),
        country: "de".into(),
        ..DeviceInfo::default()
    };
    let limited = |id: &str, dev: &str, privacy: Privacy| {
        let mut e = Event::new(id, "game", dev, Kind::Install, T);
        e.device = device.clone();
        e.privacy = privacy;
        e
    };
    let lat = Privacy { limit_ad_tracking: Some(true), att_status: Some(AttStatus::Denied), ..Privacy::default() };
    let refused = Privacy { consent: [("ad_sharing".to_owned(), false)].into(), ..Privacy::default() };
    let allowed = Privacy {
        limit_ad_tracking: Some(false),
        consent: [("ad_sharing".to_owned(), true)].into(),
        ..Privacy::default()
    };
    // a server-side payment later says nothing of privacy: the device's word stands
    let mut later = pay(Event::new("p-lat", "game", "d-lat", Kind::Payment, T + 60_000), "1.00", "USD", "t1");
    later.device = device.clone();
    let stream =
        [limited("i-lat", "d-lat", lat), later, limited("i-ref", "d-ref", refused), limited("i-ok", "d-ok", allowed)];
    let full = "ifa=IDFA-1&gaid=gaid-1&ip=203.0.113.7&ua=UA%2F1&country=de";
    let stripped = "ifa=&gaid=&ip=&ua=&country=de";
    let got: Vec<(String, String, String)> = jobs(&config, &stream)
        .into_iter()
        .map(|j| (j.event_id, j.partner_id, j.url.split_once('?').unwrap().1.to_owned()))
        .collect();
    let row = |e: &str, p: &str, q: String| (e.to_owned(), p.to_owned(), q);
    assert_eq!(
        got,
        vec![
            row("i-lat", "open", format!("{full}&lat=1&att=denied&ads=")),
            row("i-lat", "careful", format!("{stripped}&lat=1&att=denied&ads=")),
            row("p-lat", "open", format!("{full}&lat=1&att=denied&ads=")),
            row("p-lat", "careful", format!("{stripped}&lat=1&att=denied&ads=")),
            row("i-ref", "open", format!("{full}&lat=&att=&ads=0")),
            row("i-ref", "careful", format!("{stripped}&lat=&att=&ads=0")),
            row("i-ok", "open", format!("{full}&lat=0&att=&ads=1")),
            row("i-ok", "careful", format!("{full}&lat=0&att=&ads=1")),
            row("i-ok", "strict", format!("{full}&lat=0&att=&ads=1")),
        ]
    );
    // a partner that needs opt-in: unknown consent counts as refused
    let opt_in = load(&format!(
        "{APPS}[[partners]]\nid = \"eu\"\n[partners.privacy]\npolicy = \"suppress\"\nrequire_consent = true\n\
         [[postbacks]]\nname = \"eu | installs\"\npartner = \"eu\"\nevent = \"install\"\nsending = \"all\"\nurl = \"https://p.example/i\"\n"
    ));
    let unknown = limited("i-u", "d-u", Privacy::default());
    let given =
        limited("i-g", "d-g", Privacy { consent: [("ad_sharing".to_owned(), true)].into(), ..Privacy::default() });
    let ids: Vec<String> = jobs(&opt_in, &[unknown, given]).into_iter().map(|j| j.event_id).collect();
    assert_eq!(ids, vec!["i-g"]);
}

/// `postback test` and `inspect` say which privacy policy applied and why.
#[test]
fn postback_test_and_inspect_say_which_privacy_policy_applied() {
    let config = load(&format!(
        "{APPS}[[partners]]\nid = \"careful\"\n[partners.privacy]\npolicy = \"strip\"\n\
         [[partners]]\nid = \"strict\"\n[partners.privacy]\npolicy = \"suppress\"\n\
         [[postbacks]]\nname = \"careful | installs\"\npartner = \"careful\"\nevent = \"install\"\nsending = \"all\"\nurl = \"https://c.example/i?ip={{ip}}\"\n\
         [[postbacks]]\nname = \"strict | payments\"\npartner = \"strict\"\nevent = \"payment\"\nsending = \"all\"\nurl = \"https://s.example/p\"\n"
    ));
    let events = concat!(
        r#"{"event_id":"i1","app_id":"game","device_id":"d1","kind":"install","timestamp_ms":1767225600000,"device":{"ip":"203.0.113.7","att_status":"denied"}}"#,
        "\n"
    );
    let report = postback::trial::run(&config, events, None, false, T + 60_000).unwrap();
    assert_eq!(
        report,
        "line 1: install i1 of app game, device d1\n\
         \x20 privacy, partner careful: device identifiers, IP and user agent stripped: ATT status is denied\n\
         \x20 privacy, partner strict: suppressed by the partner's privacy policy: ATT status is denied\n\
         \x20 careful | installs (careful-installs): GET https://c.example/i?ip=\n"
    );
    // inspect: the next payment of that device would not reach `strict`
    let mut engine = Engine::new(Arc::clone(&config.rules));
    let install = postback::codec::decode_event(events.trim().as_bytes()).unwrap();
    engine.process(&install, T + 60_000).unwrap();
    let state = &engine.devices[&postback::domain::engine::state_key("game", "d1")];
    let lines = postback::domain::explain::explain_device(
        &config.rules,
        config.rules.app("game").unwrap(),
        "d1",
        Some(state),
        T + 60_000,
    );
    let strict = lines.iter().find(|l| l.postback_id == "strict-payments").unwrap();
    assert_eq!(
        (strict.fires, strict.why.as_str()),
        (false, "suppressed by the partner's privacy policy: ATT status is denied")
    );
}
