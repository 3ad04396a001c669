//! `postback demo --bootstrap` against the real broker, plain and over
//! SASL_SSL with `-X` client settings.

use crate::support::demo::check_demo;

#[test]
fn the_demo_runs_against_a_real_broker_too() {
    let bootstrap = crate::support::kafka::bootstrap();
    let stdout = check_demo(&["--bootstrap", bootstrap]);
    assert!(stdout.contains(&format!("Kafka at {bootstrap}")), "{stdout}");
    // a second run meets none of the first run's records
    check_demo(&["--bootstrap", bootstrap]);
}

#[test]
fn the_demo_runs_over_sasl_ssl_with_its_client_settings() {
    let s = crate::support::secure::secure();
    let settings = [
        "security.protocol=SASL_SSL".to_owned(),
        "sasl.mechanism=SCRAM-SHA-256".to_owned(),
        format!("sasl.username={}", s.scram_user),
        format!("sasl.password={}", s.scram_password),
        format!("ssl.ca.location={}", s.ca.display()),
    ];
    let mut args = vec!["--bootstrap", s.sasl_ssl.as_str()];
    for x in &settings {
        args.extend(["-X", x.as_str()]);
    }
    let stdout = check_demo(&args);
    assert!(stdout.contains(&format!("Kafka at {}", s.sasl_ssl)), "{stdout}");
}
