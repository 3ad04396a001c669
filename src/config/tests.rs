use super::*;

const BASE: &str = r#"
[[apps]]
id = "game"
platform = "mobile"

[[apps]]
id = "site"
platform = "web"

[[partners]]
id = "acme"

[[postbacks]]
name = "Acme | install"
partner = "acme"
event = "install"
url = "https://pb.acme.example/i?c={click_id}"
"#;

fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_str(text, Path::new("pb.toml"), Vec::<(String, String)>::new())
}

fn errors(text: &str) -> Vec<String> {
    load(text).unwrap_err().0.iter().map(ToString::to_string).collect()
}

fn one_error(extra: &str) -> String {
    let errs = errors(&format!("{BASE}\n{extra}"));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.into_iter().next().unwrap()
}

fn postback(body: &str) -> String {
    one_error(&format!("[[postbacks]]\nname = \"X | y\"\npartner = \"acme\"\n{body}"))
}

#[test]
fn the_base_config_loads_with_defaults() {
    let c = load(BASE).unwrap();
    assert_eq!(c.kafka.bootstrap_servers, "localhost:9092");
    assert_eq!(c.topics.events, "tracker.events");
    assert_eq!(c.process.commit_interval.0, std::time::Duration::from_millis(100));
    assert_eq!(c.send.retry_delays.len(), 6);
    let pb = &c.rules.postbacks()[0];
    assert_eq!(pb.id, "acme-install");
    // the default app list leaves out the web app, where installs are invalid
    assert_eq!(pb.apps, vec!["game".to_string()]);
    assert_eq!(c.retry_topics(), (1..=6).map(|n| format!("postback.jobs.retry-{n}")).collect::<Vec<_>>());
}

#[test]
fn the_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/postback.toml");
    let c = super::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.partners.len(), 3);
    assert_eq!(c.rules.apps().count(), 2);
    let events: std::collections::BTreeSet<&str> = c.rules.postbacks().iter().map(|p| p.event_name()).collect();
    assert_eq!(events.len(), 13, "every event kind is in the example: {events:?}");
}

#[test]
fn syntax_errors_name_line_and_column() {
    assert_eq!(errors("[kafka\nx=1"), vec!["pb.toml: line 1, column 7: unclosed table, expected `]`"]);
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    assert_eq!(
        one_error("[kafka]\nbootstrap_server = \"x\""),
        "pb.toml: kafka.bootstrap_server: unknown field `bootstrap_server`, expected one of `bootstrap_servers`, `group_id`, `sender_group_id`, `instance_id`, `static_membership`, `client`, `consumer`, `producer`"
    );
    assert!(
        postback("event = \"install\"\nurl = \"https://x.example/\"\nmethd = \"GET\"")
            .starts_with("pb.toml: postbacks[1].methd: unknown field `methd`")
    );
}

#[test]
fn bad_values_name_their_key() {
    assert_eq!(
        one_error("[process]\ncommit_interval = \"100\""),
        "pb.toml: process.commit_interval: invalid duration '100': write a number and a unit (ms, s, m, h, d), e.g. \"30d\" or \"250ms\""
    );
    assert_eq!(
        errors(&BASE.replace("id = \"acme\"", "id = \"acme\"\nrate_limit = \"fast\"")),
        vec![
            "pb.toml: partners[0].rate_limit: invalid rate 'fast': write a count per unit, e.g. \"500/s\", \"3000/m\" or \"100000/h\""
        ]
    );
    assert_eq!(
        errors(&BASE.replace("platform = \"web\"", "platform = \"tv\"")),
        vec!["pb.toml: apps[1].platform: unknown variant `tv`, expected `mobile` or `web`"]
    );
}

#[test]
fn env_overrides_apply_and_are_named_in_errors() {
    let vars = vec![("POSTBACK__KAFKA__BOOTSTRAP_SERVERS".to_string(), "k:1".to_string())];
    let c = load_str(BASE, Path::new("pb.toml"), vars).unwrap();
    assert_eq!(c.kafka.bootstrap_servers, "k:1");
    let vars = vec![("POSTBACK__PROCESS__COMMIT_INTERVAL".to_string(), "soon".to_string())];
    let e = load_str(BASE, Path::new("pb.toml"), vars).unwrap_err().to_string();
    assert_eq!(
        e,
        "pb.toml: process.commit_interval: invalid duration 'soon': write a number and a unit (ms, s, m, h, d), e.g. \"30d\" or \"250ms\" (set by POSTBACK__PROCESS__COMMIT_INTERVAL)"
    );
}

#[test]
fn references_must_exist() {
    assert_eq!(
        one_error(
            "[[postbacks]]\nname = \"Z | install\"\npartner = \"zeta\"\nevent = \"install\"\nurl = \"https://x.example/\""
        ),
        "pb.toml: postbacks[1].partner: unknown partner 'zeta': not in [[partners]]"
    );
    assert_eq!(
        postback("event = \"install\"\napps = [\"nope\"]\nurl = \"https://x.example/\""),
        "pb.toml: postbacks[1].apps[0]: unknown app 'nope': not in [[apps]]"
    );
}

#[test]
fn ids_must_be_unique() {
    assert_eq!(
        one_error("[[apps]]\nid = \"game\"\nplatform = \"mobile\""),
        "pb.toml: apps[2].id: app id 'game' is used twice"
    );
    assert_eq!(one_error("[[partners]]\nid = \"acme\""), "pb.toml: partners[1].id: partner id 'acme' is used twice");
    assert_eq!(
        one_error(
            "[[postbacks]]\nname = \"Acme | Install\"\npartner = \"acme\"\nevent = \"install\"\nurl = \"https://x.example/\""
        ),
        "pb.toml: postbacks[1].name: postback id 'acme-install' is used twice (set a distinct `id`)"
    );
    assert_eq!(
        one_error("[[apps]]\nid = \"a:b\"\nplatform = \"mobile\""),
        "pb.toml: apps[2].id: app id 'a:b' must be 1-128 characters of letters, digits, '.', '_' or '-'"
    );
}

#[test]
fn web_apps_refuse_mobile_only_events() {
    assert_eq!(
        postback("event = \"payment\"\napps = [\"site\"]\nurl = \"https://x.example/\""),
        "pb.toml: postbacks[1].apps[0]: app 'site' is a web app: only new_user, reengagement, registration, login, custom payment and custom event postbacks are valid there, not 'payment'"
    );
    let only_web = BASE.replace("id = \"game\"\nplatform = \"mobile\"", "id = \"game\"\nplatform = \"web\"");
    assert_eq!(
        errors(&only_web),
        vec![
            "pb.toml: postbacks[0].event: no configured app can send 'install' (web apps only take new_user, reengagement, registration, login, custom payment and custom event postbacks)"
        ]
    );
    // valid web events default to every app, custom events included
    let c = load(&format!("{BASE}\n[[postbacks]]\nname = \"A | login\"\npartner = \"acme\"\nevent = \"login\"\nurl = \"https://x.example/\"")).unwrap();
    assert_eq!(c.rules.postbacks()[1].apps.len(), 2);
    let custom = "[[postbacks]]\nname = \"A | cart\"\npartner = \"acme\"\nevent = \"custom_event\"\ncustom_event = \"add_to_cart\"\nattribution = \"ca\"\napps = [\"site\"]\nurl = \"https://x.example/\"";
    let c = load(&format!("{BASE}\n{custom}")).unwrap();
    assert_eq!(c.rules.postbacks()[1].apps, vec!["site".to_string()]);
}

#[test]
fn event_keys_are_checked() {
    assert!(
        postback("event = \"purchase\"\nurl = \"https://x.example/\"")
            .starts_with("pb.toml: postbacks[1].event: unknown event 'purchase' (one of: install,")
    );
    assert_eq!(
        postback("event = \"install\"\nattribution = \"ca\"\nurl = \"https://x.example/\""),
        "pb.toml: postbacks[1].attribution: event 'install' has fixed routing and takes no `attribution`"
    );
    assert_eq!(
        postback("event = \"payment\"\nby = \"user\"\nurl = \"https://x.example/\""),
        "pb.toml: postbacks[1].by: event 'payment' takes no `by` (only reengagement, first_payment, first_custom_payment)"
    );
    assert_eq!(
        postback("event = \"custom_event\"\nurl = \"https://x.example/\""),
        "pb.toml: postbacks[1].custom_event: event 'custom_event' needs the app's event name in `custom_event`"
    );
    assert_eq!(
        postback("event = \"login\"\ncustom_event = \"x\"\nurl = \"https://x.example/\""),
        "pb.toml: postbacks[1].custom_event: only event 'custom_event' takes `custom_event`, not 'login'"
    );
    assert_eq!(
        postback("event = \"login\"\nverified_only = true\nurl = \"https://x.example/\""),
        "pb.toml: postbacks[1].verified_only: only payment events take `verified_only`, not 'login'"
    );
    assert_eq!(
        postback("event = \"install\"\nsending = \"all\"\ncampaigns = [\"c1\"]\nurl = \"https://x.example/\""),
        "pb.toml: postbacks[1].campaigns: a campaign-only postback must use sending = \"attributed\""
    );
}

#[test]
fn template_errors_name_key_template_column_and_reason() {
    assert_eq!(
        postback("event = \"install\"\nurl = \"https://x.example/?a={nope}\""),
        "pb.toml: postbacks[1].url: template \"https://x.example/?a={nope}\": column 23: unknown macro 'nope'"
    );
    assert_eq!(
        postback("event = \"install\"\nmethod = \"POST\"\nurl = \"https://x.example/\"\nbody = '{\"a\":1}'"),
        "pb.toml: postbacks[1].body: template \"{\"a\":1}\": column 2: unknown macro '\"a\":1'"
    );
    assert_eq!(
        postback("event = \"install\"\nurl = \"https://x.example/\"\nbody = 'x'"),
        "pb.toml: postbacks[1].body: a GET postback has no body; use method = \"POST\" or \"PUT\""
    );
    assert_eq!(
        postback("event = \"install\"\nurl = \"https://x.example/\"\nheaders = { \"Bad Header\" = \"x\" }"),
        "pb.toml: postbacks[1].headers.Bad Header: 'Bad Header' is not a valid header name"
    );
}

#[test]
fn section_values_are_checked() {
    assert_eq!(one_error("[send]\nretry_delays = []"), "pb.toml: send.retry_delays: needs at least one tier");
    assert_eq!(one_error("[send]\nretry_jitter = 1.5"), "pb.toml: send.retry_jitter: must be in [0, 1)");
    assert_eq!(
        one_error("[send]\nallow_networks = [\"10.0.0.0/33\"]"),
        "pb.toml: send.allow_networks[0]: '10.0.0.0/33' is not a CIDR such as 10.0.0.0/8"
    );
    assert_eq!(
        one_error("[topics]\njobs = \"tracker.events\""),
        "pb.toml: topics.jobs: topic 'tracker.events' is used twice"
    );
    assert_eq!(one_error("[process]\nthreads = 0"), "pb.toml: process.threads: must be between 1 and 256");
    assert_eq!(one_error("[process]\nthreads = 1000"), "pb.toml: process.threads: must be between 1 and 256");
    assert_eq!(
        one_error("[admin]\nlisten = \"9464\""),
        "pb.toml: admin.listen: '9464' is not an address such as 0.0.0.0:9464"
    );
    assert_eq!(
        errors(&BASE.replace("id = \"acme\"", "id = \"acme\"\nmax_concurrency = 0")),
        vec!["pb.toml: partners[0].max_concurrency: must be at least 1"]
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = format!("{BASE}\n[[postbacks]]\nname = \"a\"\npartner = \"nope\"\nevent = \"nope\"\nurl = \"x\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(errs[0], "pb.toml: postbacks[1].partner: unknown partner 'nope': not in [[partners]]");
    assert!(errs[1].starts_with("pb.toml: postbacks[1].event: unknown event 'nope'"));
}

#[test]
fn slugs() {
    assert_eq!(validate::slug("Acme Ads | install"), "acme-ads-install");
    assert_eq!(validate::slug("  Zeta | first payment CA "), "zeta-first-payment-ca");
}

#[test]
fn durations_out_of_range_are_refused_by_key() {
    assert_eq!(
        one_error("[process]\njob_ttl = \"106751991160d\""),
        "pb.toml: process.job_ttl: 106751991160d is out of range: must be between 1s and 30d"
    );
    assert_eq!(
        one_error("[process]\ncommit_interval = \"0ms\""),
        "pb.toml: process.commit_interval: 0ms is out of range: must be between 1ms and 1m"
    );
    assert_eq!(
        one_error("[send]\nretry_delays = [\"10s\", \"30d\"]"),
        "pb.toml: send.retry_delays[1]: 30d is out of range: must be between 1ms and 7d"
    );
    let errs = errors(&BASE.replace("platform = \"web\"", "platform = \"web\"\ninactivity_window = \"4000d\""));
    assert_eq!(errs, vec!["pb.toml: apps[1].inactivity_window: 4000d is out of range: must be between 1ms and 3650d"]);
    assert_eq!(
        one_error("[partners.campaign_params]\n[[partners]]\nid = \"zeta\"\ntimeout = \"1h\""),
        "pb.toml: partners[1].timeout: 1h is out of range: must be between 1ms and 15m"
    );
    assert_eq!(
        one_error("[send]\nretry_after_factor = 1000000"),
        "pb.toml: send.retry_after_factor: must be between 1 and 100"
    );
}

#[test]
fn input_limits_are_checked() {
    let c = load(BASE).unwrap();
    assert_eq!((c.input.max_record_bytes, c.input.max_field_bytes), (65_536, 8192));
    assert_eq!(c.input.format, crate::codec::InputFormat::Auto);
    assert_eq!(
        one_error("[input]\nmax_record_bytes = 1048576"),
        "pb.toml: input.max_record_bytes: 1048576 is out of range: must be between 1024 and 131072 (state records carry up to 6 copies of an event's attribution and must stay under Kafka's 1 MB record limit)"
    );
    assert_eq!(
        one_error("[input]\nmax_field_bytes = 100000"),
        "pb.toml: input.max_field_bytes: 100000 is out of range: must be between 16 and input.max_record_bytes"
    );
    assert_eq!(
        one_error("[input]\nformat = \"xml\""),
        "pb.toml: input.format: unknown variant `xml`, expected one of `auto`, `json`, `avro`"
    );
}

#[test]
fn an_empty_or_appless_file_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pb.toml");
    std::fs::write(&path, "").unwrap();
    let err = super::load(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: (file): no [[apps]]: every event would go to the DLQ; an empty or half-written file is refused (pass --allow-empty to run without apps)",
            path.display()
        )
    );
    let c = load_with(&path, LoadOptions { allow_empty: true, ..Default::default() }).unwrap();
    assert!(c.allow_empty && c.rules.postbacks().is_empty());
    std::fs::write(&path, BASE).unwrap();
    assert!(!super::load(&path).unwrap().allow_empty);
}

#[test]
fn a_sender_needs_partners_not_apps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pb.toml");
    let sender = LoadOptions { needs: Needs::Partners, ..Default::default() };
    std::fs::write(&path, "[[partners]]\nid = \"acme\"\n").unwrap();
    let c = load_with(&path, sender).unwrap();
    assert_eq!(c.partners.len(), 1);
    assert_eq!(c.needs, Needs::Partners);
    std::fs::write(&path, "[[apps]]\nid = \"game\"\nplatform = \"mobile\"\n").unwrap();
    assert_eq!(
        load_with(&path, sender).unwrap_err().to_string(),
        format!(
            "{}: (file): no [[partners]]: every job would go to the DLQ as for an unknown partner; an empty or half-written file is refused (pass --allow-empty to run without partners)",
            path.display()
        )
    );
}

#[test]
fn inspect_on_a_network_address_needs_a_token() {
    assert_eq!(
        one_error("[admin]\ninspect = true"),
        "pb.toml: admin.inspect: /inspect shows stored device identifiers, IPs and user ids: on 0.0.0.0:9464, reachable from the network, it needs admin.inspect_token (or admin.listen on 127.0.0.1)"
    );
    assert!(load(&format!("{BASE}\n[admin]\ninspect = true\nlisten = \"127.0.0.1:9464\"")).is_ok());
    assert!(load(&format!("{BASE}\n[admin]\ninspect = true\ninspect_token = \"0123456789abcdef0\"")).is_ok());
}

#[test]
fn mapping_and_registry_are_checked_at_load() {
    let c = load(&format!(
        "{BASE}\n[input.mapping]\nevent_id = \"/meta/id\"\nkind = {{ field = \"/type\", values = {{ purchase = \"payment\" }} }}\n\
         [schema_registry]\nurl = \"http://127.0.0.1:8081/apis/ccompat/v7\"\n[topics]\njobs_format = \"avro\"\n"
    ))
    .unwrap();
    assert!(c.mapping.is_some() && c.decode_options().mapping.is_some());
    let r = c.schema_registry.as_ref().unwrap();
    assert_eq!((r.timeout.0, r.max_schemas), (std::time::Duration::from_secs(5), 1000));
    assert_eq!(c.topics.jobs_format, crate::codec::JobFormat::Avro);
    assert_eq!(
        one_error("[input.mapping]\nkind = { field = \"/type\", values = { buy = \"purchase\" } }"),
        "pb.toml: input.mapping.kind.values.buy: 'purchase' is not an event kind: one of install, launch, visit, impression, registration, login, payment, custom_payment, custom_event"
    );
    assert_eq!(
        one_error("[input.mapping]\nuser_id = \"\""),
        "pb.toml: input.mapping.user_id: '' is not a path: write a JSON pointer such as \"/meta/id\" or a field path such as \"meta.id\""
    );
    assert_eq!(
        one_error("[input.mapping.revenue]\nprice = \"/p\""),
        "pb.toml: input.mapping.revenue.price: not a field of ours; revenue has amount, currency, transaction_id, verified"
    );
    assert_eq!(
        one_error("[schema_registry]\nurl = \"registry:8081\""),
        "pb.toml: schema_registry.url: 'registry:8081' is not an http(s) URL"
    );
    assert_eq!(
        one_error("[schema_registry]\nurl = \"http://r:8081\"\npassword = \"p\""),
        "pb.toml: schema_registry.password: a password needs a username"
    );
    assert_eq!(
        one_error("[schema_registry]\nurl = \"http://r:8081\"\nca_file = \"/nonexistent/ca.pem\""),
        "pb.toml: schema_registry.ca_file: cannot read '/nonexistent/ca.pem': No such file or directory (os error 2)"
    );
    assert_eq!(
        one_error("[topics]\njobs_format = \"xml\""),
        "pb.toml: topics.jobs_format: unknown variant `xml`, expected `json` or `avro`"
    );
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const TWO_PARTNERS: &str = r#"
[[apps]]
id = "game"
platform = "mobile"

[[partners]]
id = "acme"

[[partners]]
id = "zeta-ads"

[[postbacks]]
name = "Acme | install"
partner = "acme"
event = "install"
url = "https://pb.acme.example/i?key={partner_param:key}"
"#;

#[test]
fn env_values_take_the_type_of_their_key_and_address_entries_by_id() {
    let env = vars(&[
        ("POSTBACK__PARTNERS__ZETA_ADS__SIGNING_SECRET", "3141592653589793"),
        ("POSTBACK__PARTNERS__ACME__SIGNING_SECRET", "acme-secret-0123456789"),
        ("POSTBACK__PARTNERS__ACME__MAX_CONCURRENCY", "7"),
        ("POSTBACK__SEND__RETRY_DELAYS", "[\"1s\", \"2s\"]"),
        ("POSTBACK__PROCESS__MAX_BATCH", "10"),
    ]);
    let c = load_str(TWO_PARTNERS, Path::new("pb.toml"), env.clone()).unwrap();
    let secret = |id: &str| c.partner(id).unwrap().signing_secret.clone().unwrap();
    // a numeric secret stays a string
    assert_eq!(secret("zeta-ads"), "3141592653589793");
    assert_eq!(secret("acme"), "acme-secret-0123456789");
    assert_eq!(c.partner("acme").unwrap().max_concurrency, 7);
    assert_eq!(c.send.retry_delays.len(), 2);
    assert_eq!(c.process.max_batch, 10);
    // reordering the file moves nothing
    let reordered = TWO_PARTNERS
        .replace("id = \"acme\"", "id = \"TMP\"")
        .replace("id = \"zeta-ads\"", "id = \"acme\"")
        .replace("id = \"TMP\"", "id = \"zeta-ads\"");
    let c = load_str(&reordered, Path::new("pb.toml"), env).unwrap();
    assert_eq!(c.partners[0].id, "zeta-ads");
    assert_eq!(c.partner("zeta-ads").unwrap().signing_secret.as_deref(), Some("3141592653589793"));
    assert_eq!(c.partner("acme").unwrap().signing_secret.as_deref(), Some("acme-secret-0123456789"));
}

#[test]
fn an_index_in_a_variable_is_refused() {
    let e = load_str(TWO_PARTNERS, Path::new("pb.toml"), vars(&[("POSTBACK__PARTNERS__1__SIGNING_SECRET", "x")]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "pb.toml: POSTBACK__PARTNERS__1__SIGNING_SECRET: '1' is a position in partners: address an entry by its id \
         (POSTBACK__PARTNERS__<ID>__...), so that reordering the file cannot move this value to another entry"
    );
}

#[test]
fn a_bad_value_from_the_environment_is_named_not_printed() {
    let e =
        load_str(TWO_PARTNERS, Path::new("pb.toml"), vars(&[("POSTBACK__PARTNERS__ACME__SIGNING_SECRET", "short")]))
            .unwrap_err()
            .to_string();
    assert_eq!(e, "pb.toml: partners[0].signing_secret: must be at least 16 characters");
    let e = load_str(
        TWO_PARTNERS,
        Path::new("pb.toml"),
        vars(&[("POSTBACK__PARTNERS__ACME__MAX_CONCURRENCY", "lots-of-them")]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "pb.toml: partners[0].max_concurrency: invalid type: string \"***\", expected usize (set by POSTBACK__PARTNERS__ACME__MAX_CONCURRENCY)"
    );
}

#[test]
fn secrets_by_reference_are_resolved_and_masked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme-key");
    std::fs::write(&file, "file-key-4242\n").unwrap();
    let text = format!(
        "{TWO_PARTNERS}\n[partners.campaign_params]\n\"cmp\" = {{ key = \"${{file:{}}}\" }}\n[schema_registry]\nurl = \"http://r\"\nusername = \"u\"\npassword = \"${{env:REGISTRY_PW}}\"\n",
        file.display()
    )
    .replace("[[partners]]\nid = \"zeta-ads\"", "[[partners]]\nid = \"zeta-ads\"\nsigning_secret = \"${env:ZETA_SECRET}\"");
    let c = load_str(
        &text,
        Path::new("pb.toml"),
        vars(&[("REGISTRY_PW", "registry-pw-1"), ("ZETA_SECRET", "zeta-secret-0123456789")]),
    )
    .unwrap();
    assert_eq!(c.schema_registry.as_ref().unwrap().password.as_deref(), Some("registry-pw-1"));
    assert_eq!(c.partner("zeta-ads").unwrap().signing_secret.as_deref(), Some("zeta-secret-0123456789"));
    assert_eq!(c.partner("zeta-ads").unwrap().campaign_params["cmp"]["key"], "file-key-4242");
    assert_eq!(c.secret_files, vec![file.clone()]);
    assert_eq!(
        c.secrets.redact("registry-pw-1 zeta-secret-0123456789 https://pb.acme.example/i?key=file-key-4242"),
        "*** *** https://pb.acme.example/i?key=***"
    );
    // a missing variable is an error naming the key, not the value
    let e = load_str(&text, Path::new("pb.toml"), vars(&[("ZETA_SECRET", "zeta-secret-0123456789")]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "pb.toml: schema_registry.password: ${env:REGISTRY_PW}: the environment variable REGISTRY_PW is not set"
    );
}

#[test]
fn client_settings_that_exactly_once_depends_on_are_refused() {
    for g in guard::GUARDED {
        let e = one_error(&format!("[kafka.consumer]\n\"{}\" = \"x\"", g.key));
        assert_eq!(e, format!("pb.toml: kafka.consumer.\"{}\": may not be set: {}", g.key, g.why));
    }
    let e = one_error("[kafka.client]\n\"isolation.level\" = \"read_uncommitted\"");
    assert_eq!(
        e,
        "pb.toml: kafka.client.\"isolation.level\": may not be set: postback reads with read_committed; read_uncommitted would read the jobs, state and user activity of aborted transactions"
    );
    // everything else passes through
    let c = load(&format!(
        "{BASE}\n[kafka.client]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n[kafka.producer]\n\"compression.type\" = \"zstd\"\n"
    ))
    .unwrap();
    assert_eq!(c.kafka.client["security.protocol"], "SASL_SSL");
}

#[test]
fn tls_files_are_read_at_load() {
    let e = one_error(
        "[schema_registry]\nurl = \"https://r\"\ncert_file = \"/nonexistent/c.pem\"\nkey_file = \"/nonexistent/k.pem\"",
    );
    assert_eq!(
        e,
        "pb.toml: schema_registry.cert_file: cannot read '/nonexistent/k.pem': No such file or directory (os error 2)"
    );
    let e = one_error("[[partners]]\nid = \"p2\"\ncert_file = \"/nonexistent/c.pem\"");
    assert_eq!(e, "pb.toml: partners[1].cert_file: a client certificate needs its private key (key_file)");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let e = one_error(&format!("[[partners]]\nid = \"p2\"\nca_file = \"{}\"", bad.display()));
    assert_eq!(e, format!("pb.toml: partners[1].ca_file: '{}' holds no PEM certificate", bad.display()));
}
